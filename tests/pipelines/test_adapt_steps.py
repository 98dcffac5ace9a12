"""The steps of knowledge adaptation checked on tiny tensors against values computed by hand: the losses of
each scheme, where their gradients go, the curriculum's choices, the domain-weighted mixture, the renderings."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mentor.batch import Batch
from mentor.data import ArrayDataset, Splits
from mentor.errors import MentorError
from mentor.pipelines.adapt_curriculum import OnlineCurriculum
from mentor.pipelines.adapt_data import align, confidence_tasks, rendered
from mentor.pipelines.adapt_schemes import (
    Mixture,
    OutputAdversarial,
    SelfEnsembling,
    TeacherStudent,
    masked_consistency,
)
from mentor.schemes.online.peers import Distortion


class Scores(nn.Module):
    """Logits ``(B, K)`` that are one learnable row for every sample (whatever the inputs)."""

    def __init__(self, row: list[float]) -> None:
        super().__init__()
        self.row = nn.Parameter(torch.tensor(row))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.row.expand(inputs.shape[0], -1) + 0.0 * inputs.flatten(1)[:, :1]


def batch_of(size: int) -> Batch:
    return Batch(torch.zeros(size, 1, 2, 2), torch.full((size,), -1), torch.arange(size), size)


def test_teacher_student_loss_is_the_kl_from_the_teachers_posteriors() -> None:
    teacher = Scores([math.log(3.0), 0.0])  # posteriors (0.75, 0.25)
    student = Scores([0.0, 0.0])  # (0.5, 0.5)
    scheme = TeacherStudent(student, teacher, seed=0)
    output = scheme.loss(batch_of(3), 0.0, 1)
    # 0.75 ln(0.75 / 0.5) + 0.25 ln(0.25 / 0.5)
    assert output.total.item() == pytest.approx(0.130812, abs=1e-6)
    output.total.backward()
    assert student.row.grad is not None and teacher.row.grad is None


def test_self_ensembling_terms_match_hand_values() -> None:
    student = torch.tensor([[0.5, 0.5], [0.9, 0.1]])
    teacher = torch.tensor([[0.98, 0.02], [0.6, 0.4]])  # only the first is confident (>= 0.968)
    consistency, balance = masked_consistency(student, teacher, 0.968)
    assert consistency.item() == pytest.approx(0.5 * (0.48**2 + 0.48**2), abs=1e-6)  # 0.2304
    # mean prediction (0.7, 0.3) against 1/2 for each class, times the confident share 1/2
    assert balance.item() == pytest.approx(0.5 * -(math.log(0.7) + math.log(0.3)), abs=1e-5)  # 0.780324


def test_self_ensembling_trains_the_student_and_only_averages_the_teacher() -> None:
    source = ArrayDataset(torch.zeros(4, 1, 2, 2), torch.tensor([0, 1, 0, 1]))
    student = Scores([2.0, 0.0])
    scheme = SelfEnsembling(student, source, 0, weight=3.0, threshold=0.5, class_balance=0.005, decay=0.99,
                            distortion=Distortion())
    output = scheme.loss(batch_of(4), 0.0, 1)
    output.total.backward()
    assert student.row.grad is not None
    assert all(p.grad is None and not p.requires_grad for p in scheme.mean_teacher.parameters())
    # ce of (2, 0) on labels half 0 half 1: ½(ln(1 + e^-2) + ln(1 + e^2)); consistency 0 (teacher = student)
    ce = 0.5 * (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(2)))
    assert output.parts["ce"].item() == pytest.approx(ce, abs=1e-6)
    assert output.parts["consistency"].item() == pytest.approx(0.0, abs=1e-7)


def test_adversarial_losses_reach_only_their_own_network() -> None:
    source = ArrayDataset(torch.zeros(4, 1, 2, 2), torch.tensor([0, 1, 0, 1]))
    student = Scores([0.0, 0.0])
    scheme = OutputAdversarial(student, source, 0, classes=2, weight=0.5, discriminator_lr=1e-4)
    last = scheme.discriminator.layers[-1]
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)  # D says ½ everywhere: every BCE is ln 2
    output = scheme.loss(batch_of(4), 0.0, 1)
    assert output.parts["discriminator"].item() == pytest.approx(math.log(2), abs=1e-6)
    assert output.parts["adversarial"].item() == pytest.approx(0.5 * math.log(2), abs=1e-6)
    assert output.parts["ce"].item() == pytest.approx(math.log(2), abs=1e-6)
    output.total.backward()
    # D's gradient is that of L_D alone: with the fooling term it would differ (it pushes D the other way)
    expected = torch.autograd.grad(
        0.5 * (nn.functional.binary_cross_entropy_with_logits(scheme.discriminator(torch.full((4, 2), 0.5)),
                                                               torch.zeros(4))
               + nn.functional.binary_cross_entropy_with_logits(scheme.discriminator(torch.full((4, 2), 0.5)),
                                                                torch.ones(4))), last.bias)[0]
    assert torch.allclose(last.bias.grad, expected)
    assert student.row.grad is not None
    assert list(scheme.optimized()) == ["main"] and len(scheme.optimized()["main"]) == 1
    scheme.after_step()  # D steps with its own Adam (the paper's lr and betas); its gradient is cleared
    assert last.bias.grad is None
    settings = scheme.discriminator_optimizer.param_groups[0]
    assert settings["lr"] == 1e-4 and settings["betas"] == (0.9, 0.99)


def test_the_curriculum_follows_the_largest_absolute_progress() -> None:
    chooser = OnlineCurriculum(3, alpha=0.5, epsilon=0.0)
    chooser.start([0.5, 0.5, 0.5])
    chooser.q.copy_(torch.tensor([0.1, -0.3, 0.2]))
    assert chooser.choose() == 1  # |−0.3|: a task being forgotten comes first
    assert chooser.observe(0.6) == pytest.approx(0.1)  # q1 = ½·0.1 + ½·(−0.3) = −0.1
    assert chooser.choose() == 2  # |q| = (0.1, 0.1, 0.2)
    chooser.observe(0.5)  # no progress: q2 = ½·0 + ½·0.2 = 0.1
    assert torch.allclose(chooser.q, torch.tensor([0.1, -0.1, 0.1]))
    assert chooser.choose() == 0  # a tie goes to the first task
    assert chooser.chosen.tolist() == [1, 1, 1]


def test_the_curriculum_explores_with_probability_epsilon() -> None:
    chooser = OnlineCurriculum(4, epsilon=1.0, seed=3)
    chooser.start([0.0] * 4)
    for _ in range(200):
        chooser.choose()
    assert (chooser.chosen > 20).all()
    greedy = OnlineCurriculum(4, epsilon=0.0)
    greedy.start([0.0] * 4)
    assert [greedy.choose() for _ in range(5)] == [0] * 5


@pytest.mark.parametrize(("arguments", "message"), [
    ({"tasks": 1}, r"'tasks' parameter of the curriculum must be an int >= 2"),
    ({"tasks": 3, "epsilon": 1.5}, r"'epsilon' parameter of the curriculum must be in \[0, 1\]"),
])
def test_bad_curriculum_settings_are_one_line_errors(arguments: dict, message: str) -> None:
    with pytest.raises(MentorError, match=message):
        OnlineCurriculum(**arguments)


def test_curriculum_batches_come_from_the_chosen_task() -> None:
    inputs = torch.arange(8, dtype=torch.float32).view(8, 1, 1, 1)
    tasks = [torch.tensor([0, 1, 2, 3]), torch.tensor([4, 5, 6, 7])]
    chooser = OnlineCurriculum(2, epsilon=0.0)
    scheme = TeacherStudent(Scores([0.0, 0.0]), Scores([1.0, 0.0]), 0, chooser, tasks,
                            ArrayDataset(inputs, torch.zeros(8, dtype=torch.long)), interval=2, probe=2)
    drawn = scheme.curriculum_inputs(16)
    assert chooser.started and int(chooser.current) == 0 and drawn.max() <= 3
    chooser.q.copy_(torch.tensor([0.0, 0.5]))
    scheme.curriculum_inputs(4)  # step 1 of the interval: still task 0
    assert int(chooser.current) == 0
    assert scheme.curriculum_inputs(16).min() >= 4  # step 2: measured, then the larger |Q| wins


def test_confidence_tasks_put_the_teachers_surest_samples_first() -> None:
    teacher = nn.Linear(1, 2, bias=False)
    with torch.no_grad():
        teacher.weight.copy_(torch.tensor([[1.0], [-1.0]]))  # confidence grows with |x|
    inputs = torch.tensor([[0.1], [3.0], [-2.0], [0.5]])
    assert [t.tolist() for t in confidence_tasks(teacher, inputs, 2)] == [[1, 2], [3, 0]]


def test_the_mixture_weights_the_teachers_probabilities() -> None:
    mixture = Mixture([Scores([0.0, 0.0]), Scores([math.log(3.0), 0.0])], torch.tensor([0.25, 0.75]))
    probabilities = mixture(torch.zeros(2, 1)).exp()
    # 0.25·(0.5, 0.5) + 0.75·(0.75, 0.25)
    assert torch.allclose(probabilities, torch.tensor([[0.6875, 0.3125]] * 2))


def splits(values: list[float], mean: float | None, std: float | None) -> Splits:
    part = ArrayDataset(torch.tensor(values).view(-1, 1, 1, 1), torch.zeros(len(values), dtype=torch.long))
    stats = (torch.tensor([mean]), torch.tensor([std])) if mean is not None and std is not None else (None, None)
    return Splits("toy", part, None, part, 1, (1, 1, 1), *stats)


def test_the_target_is_standardized_with_its_own_or_the_sources_statistics() -> None:
    source = splits([0.0], 1.5, 0.5)
    target = splits([0.5], 1.0, 2.0)  # the raw value 2.0, standardized with its own mean 1 and std 2
    assert align(source, target, "own") is target
    moved = align(source, target, "source")
    assert moved.train.inputs.item() == pytest.approx((2.0 - 1.5) / 0.5)
    assert moved.mean is source.mean
    with pytest.raises(MentorError, match="adapt.normalize 'source' re-standardizes the target"):
        align(source, splits([0.5], None, None), "source")


def test_a_rendering_works_on_pixels_and_keeps_the_sources_statistics() -> None:
    source = splits([0.5], 0.2, 0.5)  # pixel 0.45
    inverted = rendered(source, "inverted")
    assert inverted.train.inputs.item() == pytest.approx((0.55 - 0.2) / 0.5)
    assert rendered(source, "none") is source
