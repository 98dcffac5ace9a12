"""SP: row-normalized batch similarity matrices against explicit loops."""

from __future__ import annotations

import math

import pytest
import torch

from mentor.batch import Batch, Outputs
from mentor.errors import MentorError
from mentor.knowledge import create
from mentor.knowledge.sp import similarity_matrix
from mentor.losses import Context


def context(student: dict[str, torch.Tensor], teacher: dict[str, torch.Tensor]) -> Context:
    size = len(next(iter(student.values())))
    batch = Batch(torch.zeros(size, 1), torch.zeros(size, dtype=torch.long))
    return Context(batch, Outputs(torch.zeros(size, 3), student), Outputs(torch.zeros(size, 3), teacher))


def similarity(activations: torch.Tensor) -> list[list[float]]:
    flat = [row.flatten().tolist() for row in activations]
    raw = [[sum(a * b for a, b in zip(x, y, strict=True)) for y in flat] for x in flat]
    return [[value / math.sqrt(sum(v * v for v in row)) for value in row] for row in raw]


def layer_loss(student: torch.Tensor, teacher: torch.Tensor) -> float:
    gs, gt = similarity(student), similarity(teacher)
    b = len(gs)
    return sum((gt[i][j] - gs[i][j]) ** 2 for i in range(b) for j in range(b)) / b**2


def test_value_matches_loops_summed_over_layer_pairs() -> None:
    generator = torch.Generator().manual_seed(0)
    student = {"a": torch.randn(4, 2, 3, 3, generator=generator), "b": torch.randn(4, 5, generator=generator)}
    teacher = {"x": torch.randn(4, 3, 2, 2, generator=generator), "y": torch.randn(4, 7, generator=generator)}
    objective = create("sp", student_layers=["a", "b"], teacher_layers=["x", "y"], gamma=10.0, ce_weight=0.0)
    expected = layer_loss(student["a"], teacher["x"]) + layer_loss(student["b"], teacher["y"])
    assert float(objective(context(student, teacher)).parts["sp"]) == pytest.approx(10.0 * expected, rel=1e-5)
    assert expected > 0


def test_each_similarity_row_has_unit_norm_and_scaling_a_sample_changes_nothing() -> None:
    activations = torch.rand(5, 2, 2, 2, generator=torch.Generator().manual_seed(1))
    rows = similarity_matrix(activations)
    assert torch.allclose(rows.norm(dim=1), torch.ones(5))
    teacher = torch.rand(5, 6, generator=torch.Generator().manual_seed(2))
    objective = create("sp", student_layers=["s"], teacher_layers=["t"], ce_weight=0.0)
    base = float(objective(context({"s": activations}, {"t": teacher})).total)
    scaled = float(objective(context({"s": activations * 4.0}, {"t": teacher})).total)
    assert scaled == pytest.approx(base, rel=1e-5)


def test_gradients_match_finite_differences() -> None:
    generator = torch.Generator().manual_seed(3)
    teacher = torch.randn(4, 6, generator=generator, dtype=torch.float64)
    student = torch.randn(4, 2, 2, 2, generator=generator, dtype=torch.float64, requires_grad=True)
    objective = create("sp", student_layers=["s"], teacher_layers=["t"], ce_weight=0.0)
    assert torch.autograd.gradcheck(lambda s: objective(context({"s": s}, {"t": teacher})).total, (student,))


@pytest.mark.parametrize("params", [
    {"student_layers": ["a", "b"], "teacher_layers": ["x"]},
    {"student_layers": [], "teacher_layers": []},
    {"student_layers": ["a"], "teacher_layers": ["x"], "gamma": -1.0},
    {"student_layers": "a", "teacher_layers": ["x"]},
    {"teacher_layers": ["x"]},
])
def test_bad_parameters_raise(params: dict) -> None:
    with pytest.raises(MentorError):
        create("sp", **params)
