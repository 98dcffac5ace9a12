"""Terms, adapters, schedules and the Objective."""

from __future__ import annotations

import pytest
import torch

from mentor.batch import Batch, Outputs
from mentor.errors import MentorError
from mentor.losses import CE, KL, Context, Cosine, Distance, Objective, Schedule
from mentor.losses import functional as F


def context(student: Outputs, teacher: Outputs | None, epoch: float = 0.0, epochs: int = 10) -> Context:
    return Context(Batch(torch.zeros(2, 1), torch.tensor([0, 2])), student, teacher, epoch, epochs)


LOGITS_S = torch.tensor([[1.0, 2.0, 0.0], [0.5, -1.0, 1.5]])
LOGITS_T = torch.tensor([[2.0, 1.0, 0.0], [0.0, 0.0, 3.0]])


def test_objective_total_is_weighted_sum_and_parts_are_named() -> None:
    objective = Objective(CE(weight=0.25), KL(temperature=2.0, weight=0.75))
    out = objective(context(Outputs(LOGITS_S), Outputs(LOGITS_T)))
    ce = torch.nn.functional.cross_entropy(LOGITS_S, torch.tensor([0, 2]))
    kl = F.kl_with_temperature(LOGITS_S, LOGITS_T, 2.0)
    assert set(out.parts) == {"ce", "kl"}
    assert out.parts["ce"].item() == pytest.approx(0.25 * ce.item())
    assert out.total.item() == pytest.approx(0.25 * ce.item() + 0.75 * kl.item())


def test_schedule_warmup_and_rampdown() -> None:
    schedule = Schedule(warmup=2.0, rampdown_from=6.0)
    assert [schedule(e, 10) for e in (0.0, 1.0, 2.0, 6.0, 8.0, 10.0)] == pytest.approx([0, 0.5, 1, 1, 0.5, 0])
    objective = Objective(KL(temperature=1.0, weight=2.0, schedule=Schedule(warmup=4.0)))
    early = objective(context(Outputs(LOGITS_S), Outputs(LOGITS_T), epoch=1.0))
    full = objective(context(Outputs(LOGITS_S), Outputs(LOGITS_T), epoch=5.0))
    assert early.total.item() == pytest.approx(full.total.item() / 4)


def test_distance_with_adapter_builds_and_learns() -> None:
    student = Outputs(LOGITS_S, {"feat": torch.randn(2, 4, 3, 3)})
    teacher = Outputs(LOGITS_T, {"feat": torch.randn(2, 8, 2, 2)})
    term = Distance("feat", "feat", adapter="conv1x1")
    term.bind(student, teacher)
    value = term.loss(context(student, teacher))
    value.backward()
    assert all(p.grad is not None for p in term.parameters())


def test_shape_mismatch_without_adapter_suggests_one() -> None:
    student = Outputs(LOGITS_S, {"feat": torch.randn(2, 4, 3, 3)})
    teacher = Outputs(LOGITS_T, {"feat": torch.randn(2, 8, 3, 3)})
    with pytest.raises(MentorError, match=r"cannot compare student shape \(4, 3, 3\).*adapter: conv1x1"):
        Distance("feat", "feat").bind(student, teacher)
    with pytest.raises(MentorError, match="adapter: linear"):
        Cosine(None, None).bind(Outputs(LOGITS_S), Outputs(torch.zeros(2, 5)))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: KL(temperature=0), "'temperature' parameter of kl must be a float > 0 and <= 1e\\+06. Got 0"),
        (lambda: Distance(norm=0.5), "'norm' parameter \\(N\\) of distance must be a number >= 1"),
        (lambda: Distance(power=0), "'power' parameter \\(P\\) of distance must be a number > 0"),
        (lambda: CE(weight=-1), "'weight' parameter of ce must be a float >= 0. Got -1"),
        (lambda: Objective(CE(), CE()), "two terms are named 'ce'"),
        (lambda: Objective(), "at least one term"),
    ],
)
def test_bad_parameters_are_named(build, message: str) -> None:  # noqa: ANN001
    with pytest.raises(MentorError, match=message):
        build()


def test_taps_of_an_objective_are_the_union_of_its_terms() -> None:
    objective = Objective(CE(), Distance("a", "x"), Cosine("b", "x", name="cos"))
    assert objective.student_taps == ("a", "b")
    assert objective.teacher_taps == ("x",)
    assert objective.needs_teacher and not Objective(CE()).needs_teacher
