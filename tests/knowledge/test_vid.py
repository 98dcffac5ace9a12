"""VID: Gaussian negative log-likelihood with per-channel variance against explicit loops."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mentor.batch import Batch, Outputs
from mentor.errors import MentorError
from mentor.knowledge import create
from mentor.losses import Context


def outputs(features: dict[str, torch.Tensor]) -> Outputs:
    return Outputs(torch.zeros(len(next(iter(features.values()))), 3), features)


def context(student: dict[str, torch.Tensor], teacher: dict[str, torch.Tensor]) -> Context:
    size = len(next(iter(student.values())))
    return Context(Batch(torch.zeros(size, 1), torch.zeros(size, dtype=torch.long)), outputs(student), outputs(teacher))


def reference_nll(teacher: torch.Tensor, mean: torch.Tensor, alpha: torch.Tensor) -> float:
    """mean over samples, channels and positions of log σ_c + (t − μ)² / (2σ_c²), σ_c² = log(1 + e^α_c) + 1e-5."""
    teacher, mean = teacher.reshape(*teacher.shape[:2], -1), mean.reshape(*mean.shape[:2], -1)
    variances = [math.log(1 + math.exp(a)) + 1e-5 for a in alpha.tolist()]
    total, count = 0.0, 0
    for b in range(teacher.shape[0]):
        for position in range(teacher.shape[2]):
            for c, variance in enumerate(variances):
                gap = float(teacher[b, c, position] - mean[b, c, position])
                total += 0.5 * math.log(variance) + gap * gap / (2 * variance)
                count += 1
    return total / count


def test_value_matches_loops_for_feature_maps_and_flat_features() -> None:
    generator = torch.Generator().manual_seed(0)
    student = {"a": torch.randn(3, 2, 2, 2, generator=generator), "b": torch.randn(3, 4, generator=generator)}
    teacher = {"x": torch.randn(3, 5, 2, 2, generator=generator), "y": torch.randn(3, 6, generator=generator)}
    objective = create("vid", student_layers=["a", "b"], teacher_layers=["x", "y"], weight=0.5, ce_weight=0.0)
    objective.bind(outputs(student), outputs(teacher))
    first, second = objective.terms["vid"].regressors
    assert isinstance(first.mean[0], nn.Conv2d) and isinstance(second.mean[0], nn.Linear)
    with torch.no_grad():
        first.alpha.copy_(torch.linspace(-1.0, 2.0, 5))  # heteroscedastic: one variance per channel
        expected = (reference_nll(teacher["x"], first.mean(student["a"]), first.alpha)
                    + reference_nll(teacher["y"], second.mean(student["b"]), second.alpha))
        value = objective(context(student, teacher)).parts["vid"]
    assert float(value) == pytest.approx(0.5 * expected, rel=1e-5)


def test_default_scale_is_the_element_mean_in_value_and_gradient() -> None:
    # σ² = 2 on both channels, μ(s) = s (the mean network replaced by the identity), one sample, one position:
    # t = (1, 3), s = (0, 1): L = (2 · ½ ln 2 + 1²/4 + 2²/4) / 2 channels = ½ ln 2 + 0.625 = 0.971574 (λ = 1)
    # dL/ds_c = −(t_c − s_c) / σ² / 2 channels = (−0.25, −0.5); a sum over channels would double both
    teacher = {"t": torch.tensor([[[[1.0]], [[3.0]]]])}
    student = torch.tensor([[[[0.0]], [[1.0]]]], requires_grad=True)
    objective = create("vid", student_layers=["s"], teacher_layers=["t"], initial_variance=2.0, ce_weight=0.0)
    objective.bind(outputs({"s": student.detach()}), outputs(teacher))
    objective.terms["vid"].regressors[0].mean = nn.Identity()
    value = objective(context({"s": student}, teacher)).total
    assert float(value.detach()) == pytest.approx(0.5 * math.log(2) + 0.625, rel=1e-5)
    value.backward()
    assert torch.allclose(student.grad.flatten(), torch.tensor([-0.25, -0.5]), atol=1e-5)


def test_variance_starts_at_the_initial_value_and_training_lowers_the_loss() -> None:
    generator = torch.Generator().manual_seed(1)
    student = {"s": torch.randn(8, 3, 2, 2, generator=generator)}
    teacher = {"t": torch.randn(8, 4, 2, 2, generator=generator)}
    torch.manual_seed(0)
    objective = create("vid", student_layers=["s"], teacher_layers=["t"], initial_variance=3.0, ce_weight=0.0)
    objective.bind(outputs(student), outputs(teacher))
    regressor = objective.terms["vid"].regressors[0]
    assert torch.allclose(nn.functional.softplus(regressor.alpha) + 1e-5, torch.full((4,), 3.0))
    optimizer = torch.optim.Adam(objective.parameters(), lr=0.05)
    first = float(objective(context(student, teacher)).total.detach())
    for _ in range(30):
        optimizer.zero_grad()
        objective(context(student, teacher)).total.backward()
        optimizer.step()
    assert float(objective(context(student, teacher)).total.detach()) < first - 0.1


def test_gradients_reach_student_regressor_and_variances_and_match_finite_differences() -> None:
    generator = torch.Generator().manual_seed(2)
    teacher = {"t": torch.randn(2, 3, 2, 2, generator=generator, dtype=torch.float64)}
    student = torch.randn(2, 2, 2, 2, generator=generator, dtype=torch.float64, requires_grad=True)
    objective = create("vid", student_layers=["s"], teacher_layers=["t"], ce_weight=0.0)
    objective.bind(outputs({"s": student.detach()}), outputs(teacher))
    objective.double()
    assert torch.autograd.gradcheck(lambda s: objective(context({"s": s}, teacher)).total, (student,))
    objective(context({"s": student}, teacher)).total.backward()
    regressor = objective.terms["vid"].regressors[0]
    assert regressor.alpha.grad.abs().sum() > 0 and regressor.mean[0].weight.grad.abs().sum() > 0


def test_mismatched_layers_are_refused_at_bind() -> None:
    objective = create("vid", student_layers=["s"], teacher_layers=["t"])
    with pytest.raises(MentorError, match="spatial"):
        objective.bind(outputs({"s": torch.randn(2, 3, 4, 4)}), outputs({"t": torch.randn(2, 3, 2, 2)}))
    with pytest.raises(MentorError):
        objective.bind(outputs({"s": torch.randn(2, 3, 2, 2)}), outputs({"t": torch.randn(2, 3)}))


@pytest.mark.parametrize("params", [
    {"student_layers": ["a", "b"], "teacher_layers": ["x"]}, {"student_layers": [], "teacher_layers": []},
    {"student_layers": ["a"], "teacher_layers": ["x"], "initial_variance": 0.0},
    {"student_layers": ["a"], "teacher_layers": ["x"], "weight": -1.0},
])
def test_bad_parameters_raise(params: dict) -> None:
    with pytest.raises(MentorError):
        create("vid", **params)


def test_loss_before_bind_raises() -> None:
    objective = create("vid", student_layers=["s"], teacher_layers=["t"], ce_weight=0.0)
    student, teacher = {"s": torch.randn(2, 3, 2, 2)}, {"t": torch.randn(2, 3, 2, 2)}
    with pytest.raises(MentorError, match="bind"):
        objective(context(student, teacher))
