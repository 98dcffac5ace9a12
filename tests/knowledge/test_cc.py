"""CC: Taylor-approximated RBF correlation congruence against explicit loops."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mentor.batch import Batch, Outputs
from mentor.errors import MentorError
from mentor.knowledge import create
from mentor.knowledge.cc import taylor_rbf_correlation
from mentor.losses import Context


def outputs(embeddings: torch.Tensor) -> Outputs:
    return Outputs(torch.zeros(len(embeddings), 3), {"flatten": embeddings})


def context(student: torch.Tensor, teacher: torch.Tensor) -> Context:
    batch = Batch(torch.zeros(len(student), 1), torch.zeros(len(student), dtype=torch.long))
    return Context(batch, outputs(student), outputs(teacher))


def unit(vector: list[float]) -> list[float]:
    length = math.sqrt(sum(v * v for v in vector))
    return [v / length for v in vector]


def correlation(points: list[list[float]], gamma: float, order: int) -> list[list[float]]:
    rows = [unit(p) for p in points]
    matrix = []
    for a in rows:
        dots = [sum(x * y for x, y in zip(a, b, strict=True)) for b in rows]
        matrix.append([sum(math.exp(-2 * gamma) * (2 * gamma) ** p / math.factorial(p) * d**p for p in range(order + 1))
                       for d in dots])
    return matrix


def reference(student: list[list[float]], teacher: list[list[float]], gamma: float, order: int) -> float:
    s, t = correlation(student, gamma, order), correlation(teacher, gamma, order)
    n = len(student)
    return sum((t[i][j] - s[i][j]) ** 2 for i in range(n) for j in range(n)) / n**2


def test_value_matches_loops_with_the_same_width() -> None:
    generator = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(5, 3, generator=generator), torch.randn(5, 3, generator=generator)
    objective = create("cc", gamma=0.4, order=2, cc_weight=3.0, ce_weight=0.0, kd_weight=0.0)
    objective.bind(outputs(student), outputs(teacher))
    assert isinstance(objective.terms["cc"].embedding, nn.Identity)
    value = float(objective(context(student, teacher)).parts["cc"])
    assert value == pytest.approx(3.0 * reference(student.tolist(), teacher.tolist(), 0.4, 2), rel=1e-5)


def test_student_goes_through_a_trained_linear_embedding_when_widths_differ() -> None:
    generator = torch.Generator().manual_seed(1)
    student, teacher = torch.randn(4, 2, generator=generator), torch.randn(4, 5, generator=generator)
    objective = create("cc", order=3, ce_weight=0.0, kd_weight=0.0)
    objective.bind(outputs(student), outputs(teacher))
    embedding = objective.terms["cc"].embedding
    assert isinstance(embedding, nn.Linear) and embedding.weight.shape == (5, 2)
    total = objective(context(student, teacher)).total
    projected = (student @ embedding.weight.T + embedding.bias).tolist()
    assert float(total.detach()) == pytest.approx(100.0 * reference(projected, teacher.tolist(), 0.4, 3), rel=1e-5)
    total.backward()
    assert embedding.weight.grad is not None and embedding.weight.grad.abs().sum() > 0


def test_default_weight_value_and_gradient_by_hand() -> None:
    # ψ(c) = e^{-0.8} (1 + 0.8 c + 0.32 c²) for γ = 0.4, P = 2; the diagonals (c = 1) agree
    # teacher (1, 0), (0, 1): c = 0, ψ = e^{-0.8}; student at 0° and 60°: c = ½, ψ = 1.48 e^{-0.8}
    # L_CC = 2 (0.48 e^{-0.8})² / 2² = 0.1152 e^{-1.6} = 0.0232585; β = 100 -> 2.32585
    # dL/dc = 2 · 2 (0.48 e^{-0.8}) / 2² · ψ'(½) = 0.48 e^{-0.8} · 1.12 e^{-0.8} = 0.10854; for the unit s_1,
    # dc/ds_1 = s_2 − (s_1·s_2) s_1 = (0, sin 60°) -> dL/ds_1 = (0, 0.0939998); β = 100 -> (0, 9.39998)
    teacher = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    student = torch.tensor([[1.0, 0.0], [0.5, math.sqrt(3) / 2]], requires_grad=True)
    objective = create("cc", ce_weight=0.0, kd_weight=0.0)
    objective.bind(outputs(student.detach()), outputs(teacher))
    value = objective(context(student, teacher)).total
    assert float(value.detach()) == pytest.approx(2.32585, rel=1e-4)
    value.backward()
    assert torch.allclose(student.grad[0], torch.tensor([0.0, 9.39998]), atol=1e-4)


def test_high_order_expansion_approaches_the_gaussian_kernel() -> None:
    points = torch.nn.functional.normalize(torch.randn(4, 3, generator=torch.Generator().manual_seed(2)), dim=1)
    exact = torch.exp(-0.4 * torch.cdist(points, points).pow(2))
    assert torch.allclose(taylor_rbf_correlation(points, 0.4, 10), exact, atol=1e-6)
    assert not torch.allclose(taylor_rbf_correlation(points, 0.4, 1), exact, atol=1e-3)


def test_gradients_match_finite_differences() -> None:
    generator = torch.Generator().manual_seed(3)
    teacher = torch.randn(4, 3, generator=generator, dtype=torch.float64)
    student = torch.randn(4, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    objective = create("cc", ce_weight=0.0, kd_weight=0.0)
    assert torch.autograd.gradcheck(lambda s: objective(context(s, teacher)).total, (student,))


@pytest.mark.parametrize("params", [{"gamma": 0.0}, {"order": -1}, {"order": 11}, {"cc_weight": -1.0},
                                    {"temperature": 0.0}, {"kd_weight": -0.1}])
def test_bad_parameters_raise(params: dict) -> None:
    with pytest.raises(MentorError):
        create("cc", **params)
