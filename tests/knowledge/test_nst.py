"""NST: MMD² of normalized channel maps with the polynomial kernel against explicit loops."""

from __future__ import annotations

import math

import pytest
import torch

from mentor.batch import Batch, Outputs
from mentor.errors import MentorError
from mentor.knowledge import create
from mentor.losses import Context


def outputs(features: torch.Tensor, path: str) -> Outputs:
    return Outputs(torch.zeros(len(features), 3), {path: features})


def context(student: torch.Tensor, teacher: torch.Tensor) -> Context:
    batch = Batch(torch.zeros(len(student), 1), torch.zeros(len(student), dtype=torch.long))
    return Context(batch, outputs(student, "s"), outputs(teacher, "t"))


def maps(sample: torch.Tensor) -> list[list[float]]:
    channels = [channel.flatten().tolist() for channel in sample]
    return [[v / math.sqrt(sum(x * x for x in c)) for v in c] for c in channels]


def mmd(teacher: list[list[float]], student: list[list[float]], degree: int, offset: float) -> float:
    def k(x: list[float], y: list[float]) -> float:
        return (sum(a * b for a, b in zip(x, y, strict=True)) + offset) ** degree

    tt = sum(k(a, b) for a in teacher for b in teacher) / len(teacher) ** 2
    ss = sum(k(a, b) for a in student for b in student) / len(student) ** 2
    ts = sum(k(a, b) for a in teacher for b in student) / (len(teacher) * len(student))
    return tt + ss - 2 * ts


@pytest.mark.parametrize(("degree", "offset"), [(2, 0.0), (3, 1.0)])
def test_value_matches_loops_over_channel_pairs(degree: int, offset: float) -> None:
    generator = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(3, 2, 2, 3, generator=generator), torch.randn(3, 4, 2, 3, generator=generator)
    objective = create("nst", student_layer="s", teacher_layer="t", degree=degree, offset=offset, weight=50.0,
                       ce_weight=0.0)
    objective.bind(outputs(student, "s"), outputs(teacher, "t"))
    expected = sum(mmd(maps(t), maps(s), degree, offset) for s, t in zip(student, teacher, strict=True)) / len(student)
    assert float(objective(context(student, teacher)).parts["nst"]) == pytest.approx(50.0 * expected, rel=1e-5)
    assert expected > 0


def test_linear_kernel_gives_the_squared_distance_of_the_mean_maps() -> None:
    generator = torch.Generator().manual_seed(1)
    student, teacher = torch.rand(2, 3, 2, 2, generator=generator), torch.rand(2, 5, 2, 2, generator=generator)
    objective = create("nst", student_layer="s", teacher_layer="t", degree=1, weight=2.0, ce_weight=0.0)
    unit_s = student.flatten(2) / student.flatten(2).norm(dim=2, keepdim=True)
    unit_t = teacher.flatten(2) / teacher.flatten(2).norm(dim=2, keepdim=True)
    expected = (unit_t.mean(dim=1) - unit_s.mean(dim=1)).pow(2).sum(dim=1).mean()
    assert float(objective(context(student, teacher)).total) == pytest.approx(2.0 * float(expected), rel=1e-5)


def test_default_weight_applies_to_the_whole_mmd_in_value_and_gradient() -> None:
    # one channel each, maps t = (1, 0) and s = (1, 1): t̂·ŝ = 1/√2, MMD² = 1 + 1 − 2 (t̂·ŝ)² = 1; λ = 50 -> 50
    # dMMD²/ds = −4 (t̂·ŝ) (t̂ − (t̂·ŝ) ŝ) / ‖s‖ = −4/√2 · (½, −½) / √2 = (−1, 1); λ = 50 -> (−50, 50)
    teacher = torch.tensor([[[[1.0, 0.0]]]])
    student = torch.tensor([[[[1.0, 1.0]]]], requires_grad=True)
    value = create("nst", student_layer="s", teacher_layer="t", ce_weight=0.0)(context(student, teacher)).total
    assert float(value.detach()) == pytest.approx(50.0, rel=1e-5)
    value.backward()
    assert torch.allclose(student.grad.flatten(), torch.tensor([-50.0, 50.0]), atol=1e-4)


def test_gradients_match_finite_differences() -> None:
    generator = torch.Generator().manual_seed(2)
    teacher = torch.randn(2, 3, 2, 2, generator=generator, dtype=torch.float64)
    student = torch.randn(2, 2, 2, 2, generator=generator, dtype=torch.float64, requires_grad=True)
    objective = create("nst", student_layer="s", teacher_layer="t", ce_weight=0.0)
    assert torch.autograd.gradcheck(lambda s: objective(context(s, teacher)).total, (student,))


def test_maps_of_different_spatial_size_are_refused_at_bind() -> None:
    objective = create("nst", student_layer="s", teacher_layer="t")
    with pytest.raises(MentorError, match="same spatial size"):
        objective.bind(outputs(torch.randn(2, 3, 4, 4), "s"), outputs(torch.randn(2, 3, 2, 2), "t"))


@pytest.mark.parametrize("params", [{"degree": 0}, {"offset": -1.0}, {"weight": -1.0}, {"student_layer": "s"}])
def test_bad_parameters_raise(params: dict) -> None:
    params = {"student_layer": "s", "teacher_layer": "t", **params} if "student_layer" not in params else params
    with pytest.raises(MentorError):
        create("nst", **params)
