"""DarkRank: Plackett-Luce hard and soft transfer against explicit permutation enumeration."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from mentor.batch import Batch, Outputs
from mentor.errors import MentorError
from mentor.knowledge import create
from mentor.losses import Context

ALPHA, BETA = 2.0, 1.5


def context(student: torch.Tensor, teacher: torch.Tensor) -> Context:
    batch = Batch(torch.zeros(len(student), 1), torch.zeros(len(student), dtype=torch.long))
    logits = torch.zeros(len(student), 3)
    return Context(batch, Outputs(logits, {"flatten": student}), Outputs(logits, {"flatten": teacher}))


def unit(point: list[float]) -> list[float]:
    length = math.sqrt(sum(v * v for v in point))
    return [v / length for v in point]


def score(points: list[list[float]], q: int, j: int) -> float:
    """S = −α ‖x̂_q − x̂_j‖^β on L2-normalized embeddings."""
    distance = math.sqrt(sum((a - b) ** 2 for a, b in zip(unit(points[q]), unit(points[j]), strict=True)))
    return -ALPHA * distance**BETA


def plackett_luce(scores: list[float]) -> float:
    """P(π | S) for the ranking that lists ``scores`` in order, as an explicit product."""
    probability = 1.0
    for r in range(len(scores)):
        probability *= math.exp(scores[r]) / sum(math.exp(s) for s in scores[r:])
    return probability


def reference(student: list[list[float]], teacher: list[list[float]], k: int, variant: str) -> float:
    total = 0.0
    for q in range(len(student)):
        others = sorted((j for j in range(len(student)) if j != q), key=lambda j: -score(teacher, q, j))[:k]
        if variant == "hard":
            total += -math.log(plackett_luce([score(student, q, j) for j in others]))
            continue
        for ranking in itertools.permutations(others):
            p_teacher = plackett_luce([score(teacher, q, j) for j in ranking])
            p_student = plackett_luce([score(student, q, j) for j in ranking])
            total += p_teacher * math.log(p_teacher / p_student)
    return total / len(student)


@pytest.mark.parametrize(("variant", "k"), [("soft", 3), ("soft", 4), ("hard", 3), ("hard", None)])
def test_values_match_enumerated_rankings(variant: str, k: int | None) -> None:
    generator = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(5, 2, generator=generator), torch.randn(5, 3, generator=generator)
    objective = create("darkrank", variant=variant, list_size=k, alpha=ALPHA, beta=BETA, weight=2.0, ce_weight=0.0)
    value = float(objective(context(student, teacher)).parts["darkrank"])
    expected = reference(student.tolist(), teacher.tolist(), k or 4, variant)
    assert value == pytest.approx(2.0 * expected, rel=1e-4)
    assert expected > 0


def test_soft_transfer_vanishes_for_the_teachers_embeddings_at_any_scale() -> None:
    generator = torch.Generator().manual_seed(1)
    teacher = torch.randn(6, 3, generator=generator)
    soft = create("darkrank", variant="soft", list_size=3, ce_weight=0.0)
    assert float(soft(context(teacher * 7, teacher)).total) == pytest.approx(0.0, abs=1e-6)
    hard = create("darkrank", variant="hard", list_size=3, ce_weight=0.0)
    other = torch.randn(6, 3, generator=generator)
    assert float(hard(context(other * 5, teacher)).total) == pytest.approx(float(hard(context(other, teacher)).total))
    assert float(hard(context(teacher, teacher)).total) < float(hard(context(other, teacher)).total)


@pytest.mark.parametrize(("variant", "value", "gradient"), [
    ("soft", 2.054652, [[0.0, -7.815640], [-10.722840, 8.042130], [5.086838, 0.0], [-2.292883, -2.292883]]),
    ("hard", 2.056788, [[0.0, -7.818150], [-10.726388, 8.044791], [5.088650, 0.0], [-2.293733, -2.293733]]),
])
def test_defaults_score_normalized_embeddings_as_the_released_code(variant: str, value: float,
                                                                   gradient: list[list[float]]) -> None:
    # S = −12.25 ‖x̂_q − x̂_j‖⁴ (unit vectors scaled to squared norm 3.5, score −(d²)²), lists of the teacher's 2
    # nearest: q0 -> (1, 3), q1 -> (0, 2), q2 -> (3, 1), q3 -> (2, 0); weight 2; values and gradients by hand
    student = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 2.0], [-1.0, 1.0]], dtype=torch.float64, requires_grad=True)
    teacher = torch.tensor([[2.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [0.2, 0.0, 3.0]], dtype=torch.float64)
    objective = create("darkrank", variant=variant, list_size=2, ce_weight=0.0)
    total = objective(context(student, teacher)).total
    assert float(total.detach()) == pytest.approx(2.0 * value, rel=1e-6)
    total.backward()
    torch.testing.assert_close(student.grad, 2.0 * torch.tensor(gradient, dtype=torch.float64), atol=1e-5, rtol=0)


@pytest.mark.parametrize("variant", ["soft", "hard"])
def test_gradients_match_finite_differences(variant: str) -> None:
    generator = torch.Generator().manual_seed(2)
    teacher = torch.randn(5, 3, generator=generator, dtype=torch.float64)
    student = torch.randn(5, 2, generator=generator, dtype=torch.float64, requires_grad=True)
    objective = create("darkrank", variant=variant, list_size=3, ce_weight=0.0)
    assert torch.autograd.gradcheck(lambda s: objective(context(s, teacher)).total, (student,))


@pytest.mark.parametrize("params", [
    {"variant": "soft", "list_size": 9}, {"variant": "soft", "list_size": None}, {"list_size": 1},
    {"variant": "medium"}, {"alpha": 0.0}, {"beta": -1.0}, {"weight": -1.0},
])
def test_bad_parameters_raise(params: dict) -> None:
    with pytest.raises(MentorError):
        create("darkrank", **params)


def test_a_list_longer_than_the_batch_raises() -> None:
    objective = create("darkrank", variant="hard", list_size=5, ce_weight=0.0)
    with pytest.raises(MentorError, match="list_size"):
        objective(context(torch.randn(4, 2), torch.randn(4, 3)))
