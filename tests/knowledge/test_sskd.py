"""SSKD: rotations, rank filtering, both stages' values by hand, who learns in which stage, errors."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from mentor.data import ArrayDataset
from mentor.engine import FitSettings, fit
from mentor.errors import MentorError
from mentor.knowledge import create
from mentor.knowledge.sskd import keep_mask, rotations, true_rank
from mentor.schemes import Offline
from tests.knowledge.conftest import sample_batch, student_model, teacher_model


def rotated_by_hand(x: torch.Tensor) -> torch.Tensor:
    """Counter-clockwise turns by 90, 180, 270 degrees of square images, written with explicit indices."""
    size = x.shape[-1]
    i, j = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    turns = [x[:, :, j, size - 1 - i], x[:, :, size - 1 - i, size - 1 - j], x[:, :, size - 1 - j, i]]
    return torch.cat(turns)


def test_rotations_turn_the_batch_three_times() -> None:
    image = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    turned = rotations(image)
    assert turned[:, 0].tolist() == [[[2.0, 4.0], [1.0, 3.0]], [[4.0, 3.0], [2.0, 1.0]], [[3.0, 1.0], [4.0, 2.0]]]
    batch = torch.randn(3, 2, 4, 4)
    assert torch.equal(rotations(batch), rotated_by_hand(batch))


def test_rank_of_the_right_answer_and_the_kept_rows() -> None:
    scores = torch.tensor([[3.0, 1.0, 2.0], [0.0, 5.0, 1.0], [1.0, 2.0, 3.0], [4.0, 0.0, 1.0]])
    rank = true_rank(scores, torch.tensor([0, 0, 1, 2]))
    assert rank.tolist() == [0, 2, 1, 1]
    assert keep_mask(rank, 1.0).tolist() == [True, True, True, True]
    assert keep_mask(rank, 0.0).tolist() == [True, False, False, False]
    # three wrong rows, keep int(3 * 0.5) = 1: the best rank (1), the first of the tie
    assert keep_mask(rank, 0.5).tolist() == [True, False, True, False]


def head_by_hand(head: torch.nn.Module, embedding: torch.Tensor) -> torch.Tensor:
    first, _, second = head.mlp
    hidden = (embedding @ first.weight.T + first.bias).clamp(min=0)
    return hidden @ second.weight.T + second.bias


def embedding_by_hand(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model.stage2(model.stage1(x)).mean(dim=(2, 3))


def cosine_rows(transformed: torch.Tensor, normal: torch.Tensor) -> list[list[float]]:
    rows = []
    for a in transformed:
        rows.append([float((a * b).sum() / (a.pow(2).sum().sqrt() * b.pow(2).sum().sqrt())) for b in normal])
    return rows


def kept_rows(scores: list[list[float]], right: list[int], keep_wrong: float) -> list[int]:
    ranks = [sum(v > row[r] for v in row) for row, r in zip(scores, right, strict=True)]
    wrong = sorted((rank, index) for index, rank in enumerate(ranks) if rank > 0)
    right_rows = [index for index, rank in enumerate(ranks) if rank == 0]
    return sorted(right_rows + [index for _, index in wrong[: int(len(wrong) * keep_wrong)]])


def kl_rows(student: list[list[float]], teacher: list[list[float]], rows: list[int], temperature: float) -> float:
    total = 0.0
    for j in rows:
        p = [math.exp(v / temperature) / sum(math.exp(u / temperature) for u in teacher[j]) for v in teacher[j]]
        q = [math.exp(v / temperature) / sum(math.exp(u / temperature) for u in student[j]) for v in student[j]]
        total += sum(a * math.log(a / b) for a, b in zip(p, q, strict=True))
    return temperature**2 * total / len(rows)


def schemes(**params: float) -> tuple[Offline, Offline]:
    head, distill = create("sskd", **params)
    first = Offline(student_model(), head.objective, teacher_model())
    first.setup(sample_batch())
    second = Offline(student_model(), distill.objective, teacher_model())
    second.setup(sample_batch())
    return first, second


def test_stage_one_value_is_the_contrastive_loss_of_the_teacher_head() -> None:
    torch.manual_seed(0)
    first, _ = schemes(head_temperature=0.7)
    batch = sample_batch()
    teacher = first.teacher.model
    head = first.objective.terms["ss_head"].head
    with torch.no_grad():
        normal = head_by_hand(head, embedding_by_hand(teacher, batch.inputs))
        transformed = head_by_hand(head, embedding_by_hand(teacher, rotated_by_hand(batch.inputs)))
    similarity = cosine_rows(transformed, normal)
    expected = 0.0
    for j, row in enumerate(similarity):
        expected -= row[j % 8] / 0.7 - math.log(sum(math.exp(v / 0.7) for v in row))
    assert float(first.loss(batch, 0.0, 1).parts["ss_head"]) == pytest.approx(expected / 24, rel=1e-5)


def test_stage_two_values_by_hand_with_noise_filtering() -> None:
    torch.manual_seed(0)
    _, second = schemes(keep_wrong_transformed=0.5, keep_wrong_ss=0.5, transformed_temperature=3.0, ss_temperature=0.5)
    second.double()  # float64: the similarity rows are close together, keep the comparison exact
    second.student.eval()  # the same normalization in the scheme and in the reference
    batch = sample_batch()
    batch.inputs = batch.inputs.double()
    student, teacher = second.student, second.teacher.model
    ss = second.objective.terms["ss"]
    with torch.no_grad():  # spread the heads' outputs so that the similarity rows differ more
        for head in (ss.student_head, ss.teacher_head):
            for name, parameter in head.named_parameters():
                if name.endswith("weight"):
                    parameter.normal_(0.0, 1.0)
                else:
                    parameter.zero_()
    x, x_turned = batch.inputs, rotated_by_hand(batch.inputs)
    with torch.no_grad():
        s_logits, t_logits = student(x_turned).tolist(), teacher(x_turned).tolist()
        s_sim = cosine_rows(head_by_hand(ss.student_head, embedding_by_hand(student, x_turned)),
                            head_by_hand(ss.student_head, embedding_by_hand(student, x)))
        t_sim = cosine_rows(head_by_hand(ss.teacher_head, embedding_by_hand(teacher, x_turned)),
                            head_by_hand(ss.teacher_head, embedding_by_hand(teacher, x)))
    labels = batch.targets.tolist() * 3
    transformed_rows = kept_rows(t_logits, labels, 0.5)
    ss_rows = kept_rows(t_sim, [j % 8 for j in range(24)], 0.5)
    assert 0 < len(ss_rows) < 24 and len(transformed_rows) < 24  # the filter really drops rows here
    parts = second.loss(batch, 0.0, 1).parts
    assert float(parts["transformed"]) == pytest.approx(2.7 * kl_rows(s_logits, t_logits, transformed_rows, 3.0),
                                                        rel=1e-9)
    assert float(parts["ss"]) == pytest.approx(10.0 * kl_rows(s_sim, t_sim, ss_rows, 0.5), rel=1e-9)


def test_stage_one_trains_only_the_teacher_head_and_stage_two_never_touches_it() -> None:
    first, second = schemes()
    teacher_head = first.objective.terms["ss_head"].head
    assert second.objective.terms["ss"].teacher_head is teacher_head
    first.train()
    first.loss(sample_batch(), 0.0, 1).total.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in teacher_head.parameters())
    assert all(p.grad is None for p in first.student.parameters())
    teacher_head.zero_grad(set_to_none=True)
    second.train()
    second.loss(sample_batch(), 0.0, 1).total.backward()
    assert all(p.grad is None for p in teacher_head.parameters())
    assert all(p.grad is not None for p in second.objective.terms["ss"].student_head.parameters())
    assert second.student.stage1.conv1.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in second.teacher.parameters())


def test_training_moves_the_teacher_head_in_stage_one_only() -> None:
    generator = torch.Generator().manual_seed(3)
    data = ArrayDataset(torch.randn(16, 1, 8, 8, generator=generator), torch.randint(0, 5, (16,), generator=generator))
    head, distill = create("sskd", head_epochs=1)
    teacher = teacher_model()
    settings = FitSettings(epochs=1, batch_size=8, progress=False)
    fit(Offline(student_model(), head.objective, teacher), data, None, settings)
    teacher_head = head.objective.terms["ss_head"].head
    trained = [p.detach().clone() for p in teacher_head.parameters()]
    fit(Offline(student_model(), distill.objective, teacher), data, None, settings)
    assert all(torch.equal(p, q) for p, q in zip(teacher_head.parameters(), trained, strict=True))


def test_each_model_runs_the_rotated_batch_once_per_step() -> None:
    _, second = schemes()
    calls = []
    second.student.register_forward_hook(lambda *args: calls.append(1))
    second.loss(sample_batch(), 0.0, 1)
    assert len(calls) == 2  # the normal batch and the rotated batch, shared by the two terms


def test_a_plan_copied_after_a_step_gets_its_own_empty_rotated_pass() -> None:
    _, second = schemes()
    second.loss(sample_batch(), 0.0, 1)
    copied = copy.deepcopy(second.objective)
    rotated = copied.terms["ss"].rotated
    assert rotated is copied.terms["transformed"].rotated and rotated is not second.objective.terms["ss"].rotated
    assert not rotated._cache


@pytest.mark.parametrize(
    ("params", "name"),
    [({"head_epochs": 0}, "head_epochs"), ({"keep_wrong_ss": 1.5}, "keep_wrong_ss"),
     ({"ss_temperature": 0}, "ss_temperature"), ({"transformed_weight": -1}, "transformed_weight"),
     ({"ss_temprature": 1}, "ss_temperature")],
)
def test_bad_parameters_raise(params: dict, name: str) -> None:
    with pytest.raises(MentorError, match=name):
        create("sskd", **params)


def test_inputs_must_be_images_and_paths_must_exist() -> None:
    with pytest.raises(MentorError, match="image batches"):
        rotations(torch.zeros(4, 3))
    head, _ = create("sskd", teacher_embedding="flaten")
    with pytest.raises(MentorError, match="flatten"):
        Offline(student_model(), head.objective, teacher_model()).setup(sample_batch())
