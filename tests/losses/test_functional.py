"""Loss functions against values computed by hand on tiny tensors."""

from __future__ import annotations

import math

import pytest
import torch

from mentor.losses import functional as F

STUDENT = torch.tensor([[1.0, 2.0, 0.0], [0.5, -1.0, 1.5]])
TEACHER = torch.tensor([[2.0, 1.0, 0.0], [0.0, 0.0, 3.0]])


def softmax_row(row: list[float], tau: float) -> list[float]:
    exps = [math.exp(v / tau) for v in row]
    return [e / sum(exps) for e in exps]


def kl_by_hand(student: torch.Tensor, teacher: torch.Tensor, tau: float) -> float:
    total = 0.0
    for s_row, t_row in zip(student.tolist(), teacher.tolist(), strict=True):
        p_s, p_t = softmax_row(s_row, tau), softmax_row(t_row, tau)
        total += sum(t * math.log(t / s) for s, t in zip(p_s, p_t, strict=True))
    return tau**2 * total / len(student)


@pytest.mark.parametrize("tau", [1.0, 2.0, 4.0])
def test_kl_with_temperature_matches_hand_value_including_tau_squared(tau: float) -> None:
    value = F.kl_with_temperature(STUDENT, TEACHER, tau)
    assert value.item() == pytest.approx(kl_by_hand(STUDENT, TEACHER, tau), rel=1e-5)


def test_kl_gradient_is_tau_times_probability_difference_over_batch() -> None:
    tau = 3.0
    student = STUDENT.clone().requires_grad_(True)
    F.kl_with_temperature(student, TEACHER, tau).backward()
    p_s = torch.tensor([softmax_row(r, tau) for r in STUDENT.tolist()])
    p_t = torch.tensor([softmax_row(r, tau) for r in TEACHER.tolist()])
    # d/dz_S of tau^2 * KL(p_T || softmax(z_S / tau)) = tau * (p_S - p_T), averaged over the batch of 2
    assert torch.allclose(student.grad, tau * (p_s - p_t) / 2, atol=1e-6)


@pytest.mark.parametrize("tau", [1.0, 4.0])
def test_kl_gradients_match_finite_differences_for_both_sides(tau: float) -> None:
    """Online schemes may let the soft target's gradient reach the teacher side: it must be right there too."""
    student = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    teacher = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s, t: F.kl_with_temperature(s, t, tau), (student, teacher))


def test_kl_is_zero_for_identical_logits() -> None:
    assert F.kl_with_temperature(TEACHER, TEACHER, 4.0).item() == pytest.approx(0.0, abs=1e-7)


def test_soft_cross_entropy_hand_value() -> None:
    targets = torch.tensor([[0.2, 0.8, 0.0], [1.0, 0.0, 0.0]])
    expected = 0.0
    for row, target in zip(STUDENT.tolist(), targets.tolist(), strict=True):
        probs = softmax_row(row, 1.0)
        expected -= sum(q * math.log(p) for q, p in zip(target, probs, strict=True))
    assert F.soft_cross_entropy(STUDENT, targets).item() == pytest.approx(expected / 2, rel=1e-6)


def test_lp_distance_norms_powers_and_reductions() -> None:
    left = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    right = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    # per-sample L2 norms: sqrt(5), 5; L1 norms: 3, 7
    assert F.lp_distance(left, right, 2, 2, "batchmean").item() == pytest.approx((5 + 25) / 2)
    assert F.lp_distance(left, right, 2, 2, "mean").item() == pytest.approx((5 + 25) / 4)  # = MSE
    assert F.lp_distance(left, right, 1, 1, "sum").item() == pytest.approx(3 + 7)
    assert F.lp_distance(left, right, 2, 1, "batchmean").item() == pytest.approx((math.sqrt(5) + 5) / 2)
    assert F.lp_distance(left, right, 1, 3, "none").tolist() == pytest.approx([27.0, 343.0])
    assert torch.allclose(F.lp_distance(left, right, 2, 2, "mean"), torch.nn.functional.mse_loss(left, right))


def test_lp_distance_flattens_feature_maps_per_sample() -> None:
    left, right = torch.ones(2, 3, 2, 2), torch.zeros(2, 3, 2, 2)
    assert F.lp_distance(left, right, 2, 2, "batchmean").item() == pytest.approx(12.0)
    assert F.lp_distance(left, right, 1, 1, "batchmean").item() == pytest.approx(12.0)


def test_cosine_distance_hand_values() -> None:
    left = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    right = torch.tensor([[0.0, 2.0], [2.0, 2.0]])
    # orthogonal -> 1, parallel -> 0
    assert F.cosine_distance(left, right, "none").tolist() == pytest.approx([1.0, 0.0], abs=1e-6)
    assert F.cosine_distance(left, right).item() == pytest.approx(0.5, abs=1e-6)
