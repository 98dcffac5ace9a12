"""Decoupled KD (Zhao et al. 2022) against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from mentor.batch import Batch, Outputs
from mentor.errors import MentorError
from mentor.knowledge import create
from mentor.knowledge.dkd import decoupled_kl
from mentor.losses import Context

STUDENT = [[1.0, 0.5, -1.0, 2.0], [0.0, 3.0, 1.0, -0.5]]
TEACHER = [[2.0, -1.0, 0.5, 1.0], [0.5, 1.0, 2.5, 0.0]]
TARGETS = [3, 1]
TAU = 2.0


def softmax(values: list[float]) -> list[float]:
    exps = [math.exp(v) for v in values]
    return [e / sum(exps) for e in exps]


def kl(p: list[float], q: list[float]) -> float:
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))


def reference(student: list[float], teacher: list[float], target: int) -> tuple[float, float, float]:
    """(TCKD, NCKD, KD) of one sample, τ² included, written out from the paper's definitions."""
    p_s, p_t = softmax([v / TAU for v in student]), softmax([v / TAU for v in teacher])
    b_s, b_t = [p_s[target], 1 - p_s[target]], [p_t[target], 1 - p_t[target]]
    rest = [i for i in range(len(student)) if i != target]
    hat_s, hat_t = softmax([student[i] / TAU for i in rest]), softmax([teacher[i] / TAU for i in rest])
    return TAU**2 * kl(b_t, b_s), TAU**2 * kl(hat_t, hat_s), TAU**2 * kl(p_t, p_s)


def test_tckd_and_nckd_match_the_definitions() -> None:
    tckd, nckd = decoupled_kl(torch.tensor(STUDENT), torch.tensor(TEACHER), torch.tensor(TARGETS), TAU)
    refs = [reference(s, t, y) for s, t, y in zip(STUDENT, TEACHER, TARGETS, strict=True)]
    assert tckd.item() == pytest.approx(sum(r[0] for r in refs) / 2, rel=1e-5)
    assert nckd.item() == pytest.approx(sum(r[1] for r in refs) / 2, rel=1e-5)


def test_classical_kd_decomposes_as_tckd_plus_weighted_nckd() -> None:
    for student, teacher, target in zip(STUDENT, TEACHER, TARGETS, strict=True):
        tckd, nckd = decoupled_kl(torch.tensor([student]), torch.tensor([teacher]), torch.tensor([target]), TAU)
        kd = reference(student, teacher, target)[2]
        p_target = softmax([v / TAU for v in teacher])[target]
        assert kd == pytest.approx(tckd.item() + (1 - p_target) * nckd.item(), rel=1e-5)


def test_objective_weights_parts_and_warms_up_linearly() -> None:
    objective = create("dkd", alpha=0.5, beta=3.0, temperature=TAU, warmup=4.0, ce_weight=1.0)
    student, teacher = Outputs(torch.tensor(STUDENT)), Outputs(torch.tensor(TEACHER))
    objective.bind(student, teacher)
    batch = Batch(torch.zeros(2, 1), torch.tensor(TARGETS))
    refs = [reference(s, t, y) for s, t, y in zip(STUDENT, TEACHER, TARGETS, strict=True)]
    tckd, nckd = sum(r[0] for r in refs) / 2, sum(r[1] for r in refs) / 2
    for epoch, factor in ((0.0, 0.0), (1.0, 0.25), (3.0, 0.75), (10.0, 1.0)):
        out = objective(Context(batch, student, teacher, epoch=epoch, epochs=20))
        assert out.parts["tckd"].item() == pytest.approx(factor * 0.5 * tckd, rel=1e-5, abs=1e-9)
        assert out.parts["nckd"].item() == pytest.approx(factor * 3.0 * nckd, rel=1e-5, abs=1e-9)
    assert set(out.parts) == {"ce", "tckd", "nckd"}


def test_gradients_match_finite_differences_and_vanish_at_the_teacher() -> None:
    student = torch.tensor(STUDENT, dtype=torch.float64, requires_grad=True)
    teacher, targets = torch.tensor(TEACHER, dtype=torch.float64), torch.tensor(TARGETS)
    assert torch.autograd.gradcheck(lambda s: decoupled_kl(s, teacher, targets, TAU), (student,))
    same = teacher.clone().requires_grad_(True)
    tckd, nckd = decoupled_kl(same, teacher, targets, TAU)
    (tckd + nckd).backward()
    assert abs(tckd.item()) < 1e-12 and abs(nckd.item()) < 1e-12
    assert same.grad.abs().max().item() < 1e-12


def test_bad_parameters_and_inputs() -> None:
    with pytest.raises(MentorError, match="'temperature' parameter of dkd"):
        create("dkd", temperature=0)
    with pytest.raises(MentorError, match="'beta' parameter of dkd"):
        create("dkd", beta=-1)
    with pytest.raises(MentorError, match="'warmup' parameter of dkd"):
        create("dkd", warmup=-2)
    objective = create("dkd", warmup=0, ce_weight=0.0)
    with pytest.raises(MentorError, match="K >= 2"):
        objective.bind(Outputs(torch.zeros(2, 1)), Outputs(torch.zeros(2, 1)))
    student, teacher = Outputs(torch.tensor(STUDENT)), Outputs(torch.tensor(TEACHER))
    with pytest.raises(MentorError, match="class-index targets"):
        objective(Context(Batch(torch.zeros(2, 1), torch.rand(2)), student, teacher))
    with pytest.raises(MentorError, match=r"class indices in \[0, 4\)"):
        objective(Context(Batch(torch.zeros(2, 1), torch.tensor([0, 7])), student, teacher))
