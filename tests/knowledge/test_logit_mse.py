"""Logit regression (Ba & Caruana 2014; Tang et al. 2019) against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from mentor.batch import Batch, Outputs
from mentor.errors import MentorError
from mentor.knowledge import create
from mentor.losses import Context

STUDENT = [[0.0, 1.0, 2.0], [1.0, 1.0, 1.0]]
TEACHER = [[1.0, 0.0, 2.0], [0.0, 0.0, 0.0]]
TARGETS = [2, 0]


def context(student: torch.Tensor, teacher: torch.Tensor) -> Context:
    return Context(Batch(torch.zeros(2, 1), torch.tensor(TARGETS)), Outputs(student), Outputs(teacher))


def test_value_is_alpha_ce_plus_one_minus_alpha_squared_l2() -> None:
    objective = create("logit_mse", alpha=0.3)
    objective.bind(Outputs(torch.tensor(STUDENT)), Outputs(torch.tensor(TEACHER)))
    out = objective(context(torch.tensor(STUDENT), torch.tensor(TEACHER)))
    rows = zip(STUDENT, TEACHER, strict=True)
    squared = [sum((s - t) ** 2 for s, t in zip(row_s, row_t, strict=True)) for row_s, row_t in rows]
    assert squared == [2.0, 3.0]
    ce = 0.0
    for row, target in zip(STUDENT, TARGETS, strict=True):
        ce -= math.log(math.exp(row[target]) / sum(math.exp(v) for v in row)) / len(STUDENT)
    assert out.parts["logit_mse"].item() == pytest.approx(0.7 * (2.0 + 3.0) / 2, rel=1e-6)
    assert out.parts["ce"].item() == pytest.approx(0.3 * ce, rel=1e-6)
    assert out.total.item() == pytest.approx(0.7 * 2.5 + 0.3 * ce, rel=1e-6)


def test_default_is_pure_logit_regression_with_gradient_two_times_difference() -> None:
    objective = create("logit_mse")
    student = torch.tensor(STUDENT, requires_grad=True)
    out = objective(context(student, torch.tensor(TEACHER)))
    assert out.parts["ce"].item() == 0.0
    out.total.backward()
    # d/dz_S of mean_b ‖z_T − z_S‖² = 2 (z_S − z_T) / B
    expected = [[2 * (s - t) / 2 for s, t in zip(rs, rt, strict=True)] for rs, rt in zip(STUDENT, TEACHER, strict=True)]
    assert torch.allclose(student.grad, torch.tensor(expected))


def test_identical_logits_give_zero() -> None:
    out = create("logit_mse", alpha=0.0)(context(torch.tensor(TEACHER), torch.tensor(TEACHER)))
    assert out.total.item() == 0.0


def test_bad_parameters_and_shapes() -> None:
    with pytest.raises(MentorError, match="'alpha' parameter of logit_mse"):
        create("logit_mse", alpha=1.5)
    with pytest.raises(MentorError, match="'alpha' parameter of logit_mse"):
        create("logit_mse", alpha="high")
    with pytest.raises(MentorError, match="nearest: alpha"):
        create("logit_mse", alpah=0.1)
    with pytest.raises(MentorError, match="cannot compare student shape"):
        create("logit_mse").bind(Outputs(torch.zeros(2, 3)), Outputs(torch.zeros(2, 4)))
