"""PKT: cosine-kernel conditional probabilities and their divergence against explicit loops."""

from __future__ import annotations

import math

import pytest
import torch

from mentor.batch import Batch, Outputs
from mentor.errors import MentorError
from mentor.knowledge import create
from mentor.knowledge.pkt import conditional_probabilities
from mentor.losses import Context


def context(student: torch.Tensor, teacher: torch.Tensor) -> Context:
    batch = Batch(torch.zeros(len(student), 1), torch.zeros(len(student), dtype=torch.long))
    logits = torch.zeros(len(student), 3)
    return Context(batch, Outputs(logits, {"flatten": student}), Outputs(logits, {"flatten": teacher}))


def conditionals(points: list[list[float]]) -> list[list[float]]:
    """rows[j][i] = p_{i|j} = K(a_i, a_j) / Σ_{k≠j} K(a_k, a_j) with the cosine kernel."""

    def kernel(a: list[float], b: list[float]) -> float:
        dot = sum(x * y for x, y in zip(a, b, strict=True))
        cosine = dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
        return 0.5 * (cosine + 1.0)

    n = len(points)
    rows = []
    for j in range(n):
        denominator = sum(kernel(points[k], points[j]) for k in range(n) if k != j)
        rows.append([0.0 if i == j else kernel(points[i], points[j]) / denominator for i in range(n)])
    return rows


def reference(student: list[list[float]], teacher: list[list[float]]) -> float:
    p, q = conditionals(teacher), conditionals(student)
    n = len(p)
    return sum(p[j][i] * math.log(p[j][i] / q[j][i]) for j in range(n) for i in range(n) if i != j) / n


def test_value_matches_loops() -> None:
    generator = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(5, 3, generator=generator), torch.randn(5, 4, generator=generator)
    objective = create("pkt", weight=2.0, ce_weight=0.0)
    expected = reference(student.tolist(), teacher.tolist())
    assert float(objective(context(student, teacher)).parts["pkt"]) == pytest.approx(2.0 * expected, rel=1e-4)
    assert expected > 0


def unit(degrees: float) -> list[float]:
    return [math.cos(math.radians(degrees)), math.sin(math.radians(degrees))]


def test_default_weight_gives_the_reference_scale_in_value_and_gradient() -> None:
    # teacher at 0°, 60°, 120°: K12 = K23 = ¾, K13 = ¼ -> rows p_{·|1} = (¾, ¼), p_{·|2} = (½, ½), p_{·|3} = (¼, ¾)
    # student at 0°, 120°, 240°: every K = ¼ -> every row (½, ½)
    # L_PKT = (2 (¾ ln 1.5 + ¼ ln 0.5) + 0) / 3 = 0.0872081; weight 30000/64 = 468.75 -> 40.8788
    # dL/dK^S_{ij} = −(1/B)(p_{ij}/K_{ij} − 1/Σ_l K_{lj}) = ∓1/3 on rows 1 and 3, 0 on row 2; so
    # dL/dcos_12 = −1/6, dL/dcos_13 = 1/3 and, s_1 a unit vector, dL/ds_1 = (0, −sin 120°/6 − sin 120°/3)
    # = (0, −√3/4); times 468.75 -> (0, −202.9747)
    teacher = torch.tensor([unit(0), unit(60), unit(120)])
    student = torch.tensor([unit(0), unit(120), unit(240)], requires_grad=True)
    objective = create("pkt", ce_weight=0.0)
    value = objective(context(student, teacher)).total
    assert float(value.detach()) == pytest.approx(40.8788, rel=1e-4)
    value.backward()
    assert torch.allclose(student.grad[0], torch.tensor([0.0, -202.9747]), atol=1e-3)


def test_default_weight_matches_the_released_code_at_its_batch_size() -> None:
    """The authors' code: mean over all B x B entries, diagonal kept, weighted 30000 at batch size 64."""

    def released(student: torch.Tensor, teacher: torch.Tensor) -> float:
        def rows(points: torch.Tensor) -> torch.Tensor:
            unit = points / points.norm(dim=1, keepdim=True)
            kernel = (unit @ unit.T + 1.0) / 2.0
            return kernel / kernel.sum(dim=1, keepdim=True)

        p, q = rows(teacher), rows(student)
        return float((p * ((p + 1e-7) / (q + 1e-7)).log()).mean())

    generator = torch.Generator().manual_seed(3)
    teacher, student = torch.randn(64, 16, generator=generator).relu(), torch.randn(64, 8, generator=generator).relu()
    value = float(create("pkt", ce_weight=0.0)(context(student, teacher)).total)
    assert value == pytest.approx(30000 * released(student, teacher), rel=0.05)  # the diagonal: O(1/B)


def test_conditional_rows_are_distributions_and_scale_does_not_matter() -> None:
    embeddings = torch.randn(6, 3, generator=torch.Generator().manual_seed(1))
    rows = conditional_probabilities(embeddings)
    assert torch.allclose(rows.sum(dim=1), torch.ones(6)) and torch.all(rows.diagonal() == 0)
    assert torch.allclose(conditional_probabilities(embeddings * 5.0), rows, atol=1e-6)


def test_gradients_match_finite_differences() -> None:
    generator = torch.Generator().manual_seed(2)
    teacher = torch.randn(4, 3, generator=generator, dtype=torch.float64)
    student = torch.randn(4, 2, generator=generator, dtype=torch.float64, requires_grad=True)
    objective = create("pkt", ce_weight=0.0)
    assert torch.autograd.gradcheck(lambda s: objective(context(s, teacher)).total, (student,))


@pytest.mark.parametrize("params", [{"weight": -1.0}, {"ce_weight": -1.0}, {"student_layer": 3}, {"kernel": "rbf"}])
def test_bad_parameters_raise(params: dict) -> None:
    with pytest.raises(MentorError):
        create("pkt", **params)
