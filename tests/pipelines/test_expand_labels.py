"""Knowledge expansion's pieces against references computed by hand: the pseudo-label selection and class balance,
the curriculum's ranks and shares, the labeled draw, the training rows and the noisy student's loss."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mentor.batch import Batch
from mentor.data import ArrayDataset
from mentor.errors import MentorError
from mentor.pipelines.expand_labels import (
    Curriculum,
    PseudoLabeling,
    balanced_labels,
    ranks,
    repeat_to,
    select,
    student_data,
    targets_of,
)
from mentor.pipelines.expand_steps import NoisyStudentStep, teacher_probabilities

# confidences 0.9 (class 0), 0.6 (class 0), 0.8 (class 1), 0.55 (class 1)
PROBABILITIES = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.45, 0.55]])


def test_the_threshold_keeps_confident_images_most_confident_first() -> None:
    chosen = select(PROBABILITIES, PseudoLabeling(threshold=0.58, balance=False))
    assert chosen.tolist() == [0, 2, 1]  # 0.55 < 0.58 is left out


@pytest.mark.parametrize(("per_class", "expected"), [
    (None, [0, 1, 2, 2]),  # round(3 kept / 2 classes) = 2: class 1's single image is duplicated
    (1, [0, 2]),  # the most confident of each class
    (3, [0, 1, 0, 2, 2, 2]),  # class 0's two images cycled in confidence order
])
def test_class_balance_duplicates_rare_classes_and_keeps_the_most_confident(per_class: int | None,
                                                                           expected: list[int]) -> None:
    chosen = select(PROBABILITIES, PseudoLabeling(threshold=0.58, balance=True, per_class=per_class))
    assert chosen.tolist() == expected


def test_hard_targets_are_the_one_hot_argmax_and_soft_ones_the_probabilities() -> None:
    assert targets_of(PROBABILITIES, soft=False).tolist() == [[1, 0], [1, 0], [0, 1], [0, 1]]
    assert torch.equal(targets_of(PROBABILITIES, soft=True), PROBABILITIES)


def test_ranks_follow_decreasing_confidence_ties_in_order() -> None:
    assert ranks(torch.tensor([0.2, 0.9, 0.5, 0.9])).tolist() == [0.75, 0.0, 0.5, 0.25]


@pytest.mark.parametrize(("epoch", "share"), [(0.0, 0.4), (1.99, 0.4), (2.5, 0.7), (5.99, 1.0), (6.0, 1.0)])
def test_the_curriculum_share_grows_by_phase(epoch: float, share: float) -> None:
    assert Curriculum(phases=3, start=0.4).share(epoch, 6) == pytest.approx(share)


def test_the_labeled_draw_takes_the_same_number_of_every_class() -> None:
    targets = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2])
    chosen = balanced_labels(targets, 6, 3, seed=0)
    assert torch.bincount(targets[chosen]).tolist() == [2, 2, 2]
    assert torch.equal(chosen, balanced_labels(targets, 6, 3, seed=0))  # the same seed draws the same samples
    with pytest.raises(MentorError, match=r"'labels' parameter of expand must be a multiple of the 3 classes"):
        balanced_labels(targets, 4, 3, seed=0)
    with pytest.raises(MentorError, match=r"asks 3 labeled samples per class but class 1 has 2"):
        balanced_labels(targets, 9, 3, seed=0)


@pytest.mark.parametrize(("ratio", "repeats"), [(1.5, 1), (0.5, 3)])
def test_labeled_rows_are_repeated_to_the_unlabeled_ratio(ratio: float, repeats: int) -> None:
    labeled = ArrayDataset(torch.zeros(2, 3), torch.tensor([0, 1]))
    unlabeled = ArrayDataset(torch.arange(4.0)[:, None].repeat(1, 3), torch.full((4,), -1))
    data = student_data(labeled, unlabeled, PROBABILITIES, PseudoLabeling(threshold=0.58, balance=False), ratio, 2)
    assert len(data.dataset) == 2 * repeats + 3 and data.pseudo == 3  # 3 / (ratio * 2) rounded
    assert data.ranks.tolist() == pytest.approx([-1.0] * (2 * repeats) + [0.0, 1 / 3, 2 / 3])
    assert data.dataset.inputs[2 * repeats:, 0].tolist() == [0.0, 2.0, 1.0]  # pool images 0, 2, 1
    assert torch.equal(data.targets[2 * repeats:], PROBABILITIES[[0, 2, 1]])  # soft targets
    assert data.targets[:2].tolist() == [[1.0, 0.0], [0.0, 1.0]]


def identity_student() -> nn.Linear:
    """Logits = inputs, so that the losses below are log-softmax values computed by hand."""
    student = nn.Linear(2, 2)
    with torch.no_grad():
        student.weight.copy_(torch.eye(2))
        student.bias.zero_()
    return student


# row 0 labeled (class 0), row 1 pseudo soft (0.5, 0.5) rank 0.2, row 2 pseudo hard (class 1) rank 0.8
INPUTS = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0], [0.0, 0.0]])
TARGETS = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
RANKS = torch.tensor([-1.0, 0.2, 0.8])
LN2, ROW1 = math.log(2.0), -(0.5 * math.log(0.75) + 0.5 * math.log(0.25))  # 0.693147, 0.836988


@pytest.mark.parametrize(("curriculum", "labeled", "pseudo"), [
    (None, LN2 / 3, (ROW1 + LN2) / 3),  # every row learned
    (Curriculum(phases=2, start=0.5), LN2 / 2, ROW1 / 2),  # first phase: row 2 (rank 0.8) waits
])
def test_the_loss_is_one_mean_over_the_rows_learned(curriculum: Curriculum | None, labeled: float,
                                                     pseudo: float) -> None:
    step = NoisyStudentStep(identity_student(), TARGETS, RANKS, curriculum)
    output = step.loss(Batch(INPUTS, torch.zeros(3, dtype=torch.long), torch.arange(3), 3), 0.0, 2)
    assert output.parts["labeled"].item() == pytest.approx(labeled, abs=1e-6)
    assert output.parts["pseudo"].item() == pytest.approx(pseudo, abs=1e-6)
    assert output.total.item() == pytest.approx(labeled + pseudo, abs=1e-6)


def test_gradients_reach_the_student_only_and_a_waiting_row_adds_none() -> None:
    student = identity_student()
    step = NoisyStudentStep(student, TARGETS, RANKS, Curriculum(phases=2, start=0.5))
    assert set(step.trained()) == {"student"} and not any(b.requires_grad for b in step.buffers())
    inputs = INPUTS.clone().requires_grad_(True)
    step.loss(Batch(inputs, torch.zeros(3, dtype=torch.long), torch.arange(3), 3), 0.0, 2).total.backward()
    assert student.weight.grad is not None and student.weight.grad.abs().sum() > 0
    assert inputs.grad[2].abs().sum() == 0 and inputs.grad[:2].abs().sum() > 0


def test_the_teacher_predicts_unnoised_in_eval_mode_and_keeps_its_mode() -> None:
    teacher = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.5), nn.Linear(8, 2)).train()
    pool = ArrayDataset(torch.randn(20, 3), torch.full((20,), -1))
    first = teacher_probabilities(teacher, pool, batch_size=7)
    assert torch.equal(first, teacher_probabilities(teacher, pool, batch_size=7))  # no dropout noise
    with torch.no_grad():
        assert torch.allclose(first, torch.softmax(teacher.eval()(pool.inputs), dim=1))
    assert first.shape == (20, 2) and teacher.training is False  # eval() above; the call restores what it found
    teacher.train()
    teacher_probabilities(teacher, pool, batch_size=7)
    assert teacher.training


def test_the_baseline_repeats_the_labeled_set_to_the_last_students_rows() -> None:
    labeled = ArrayDataset(torch.arange(2.0)[:, None], torch.tensor([0, 1]))
    assert repeat_to(labeled, 7).inputs[:, 0].tolist() == [0.0, 1.0] * 4  # round(7 / 2) = 4 repeats
    assert len(repeat_to(labeled, 1)) == 2  # at least once
