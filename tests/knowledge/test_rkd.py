"""RKD: distance- and angle-wise potentials against explicit loops over pairs and triplets."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from mentor.batch import Batch, Outputs
from mentor.errors import MentorError
from mentor.knowledge import create
from mentor.losses import Context


def context(student: torch.Tensor, teacher: torch.Tensor) -> Context:
    batch = Batch(torch.zeros(len(student), 1), torch.zeros(len(student), dtype=torch.long))
    logits = torch.zeros(len(student), 3)
    return Context(batch, Outputs(logits, {"flatten": student}), Outputs(logits, {"flatten": teacher}))


def huber(x: float, y: float) -> float:
    gap = abs(x - y)
    return 0.5 * gap * gap if gap <= 1 else gap - 0.5


def norm(vector: list[float]) -> float:
    return math.sqrt(sum(v * v for v in vector))


def reference_distance(student: list[list[float]], teacher: list[list[float]]) -> float:
    pairs = [(i, j) for i in range(len(student)) for j in range(len(student)) if i != j]

    def potentials(points: list[list[float]]) -> dict[tuple[int, int], float]:
        distance = {(i, j): norm([a - b for a, b in zip(points[i], points[j], strict=True)]) for i, j in pairs}
        mean = sum(distance.values()) / len(distance)
        return {pair: value / mean for pair, value in distance.items()}

    ps, pt = potentials(student), potentials(teacher)
    return sum(huber(ps[p], pt[p]) for p in pairs) / len(pairs)


def reference_angle(student: list[list[float]], teacher: list[list[float]]) -> float:
    def cosine(points: list[list[float]], i: int, j: int, k: int) -> float:
        u = [a - b for a, b in zip(points[i], points[j], strict=True)]
        v = [a - b for a, b in zip(points[k], points[j], strict=True)]
        return sum(a * b for a, b in zip(u, v, strict=True)) / (norm(u) * norm(v))

    triplets = list(itertools.permutations(range(len(student)), 3))
    total = sum(huber(cosine(student, i, j, k), cosine(teacher, i, j, k)) for i, j, k in triplets)
    return total / len(triplets)


def test_values_match_loops_over_pairs_and_triplets() -> None:
    generator = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(5, 2, generator=generator), torch.randn(5, 3, generator=generator) * 3
    objective = create("rkd", distance_weight=25.0, angle_weight=50.0, ce_weight=0.0)
    parts = objective(context(student, teacher)).parts
    expected_distance = reference_distance(student.tolist(), teacher.tolist())
    expected_angle = reference_angle(student.tolist(), teacher.tolist())
    assert float(parts["rkd_distance"]) == pytest.approx(25.0 * expected_distance, rel=1e-5)
    assert float(parts["rkd_angle"]) == pytest.approx(50.0 * expected_angle, rel=1e-5)
    assert expected_distance > 0 and expected_angle > 0


def test_potentials_are_invariant_to_scale_and_translation_of_the_student() -> None:
    generator = torch.Generator().manual_seed(1)
    student, teacher = torch.randn(6, 4, generator=generator), torch.randn(6, 7, generator=generator)
    objective = create("rkd", ce_weight=0.0)
    base = objective(context(student, teacher)).parts
    moved = objective(context(student * 7.5 + 2.0, teacher)).parts
    for name in ("rkd_distance", "rkd_angle"):
        assert float(moved[name]) == pytest.approx(float(base[name]), rel=1e-4)


def test_gradients_match_finite_differences_and_stay_finite_for_duplicates() -> None:
    generator = torch.Generator().manual_seed(2)
    teacher = torch.randn(4, 3, generator=generator, dtype=torch.float64)
    objective = create("rkd", ce_weight=0.0)
    student = torch.randn(4, 2, generator=generator, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: objective(context(s, teacher)).total, (student,))
    duplicated = torch.tensor([[1.0, 2.0], [1.0, 2.0], [0.0, 1.0], [3.0, -1.0]], requires_grad=True)
    objective(context(duplicated, teacher.float())).total.backward()
    assert torch.isfinite(duplicated.grad).all() and duplicated.grad.abs().sum() > 0


@pytest.mark.parametrize("params", [{"distance_weight": -1.0}, {"angle_weight": "heavy"}, {"ce_weight": -0.5},
                                    {"lambda_d": 25.0}])
def test_bad_parameters_raise(params: dict) -> None:
    with pytest.raises(MentorError):
        create("rkd", **params)
