"""Pure loss functions of the survey's generalized objective (§3.2, eq. 1-2). No state, no modules.

Shapes: ``B`` is the batch size, ``K`` the number of classes; feature tensors may have any trailing
shape and are compared sample by sample after flattening.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

Reduction = Literal["batchmean", "mean", "sum", "none"]


def _reduce(per_sample: torch.Tensor, reduction: Reduction, elements: int = 1) -> torch.Tensor:
    """Reduce a ``(B,)`` tensor of per-sample losses."""
    if reduction == "none":
        return per_sample
    if reduction == "sum":
        return per_sample.sum()
    if reduction == "batchmean":
        return per_sample.mean()
    if reduction == "mean":
        return per_sample.mean() / elements
    raise ValueError(f"unknown reduction {reduction!r}; use batchmean, mean, sum or none")


def kl_divergence(student_log_probs: torch.Tensor, teacher_probs: torch.Tensor) -> torch.Tensor:
    """KL(p_T || p_S) = Σ_k p_T,k (log p_T,k − log p_S,k), averaged over the batch.

    Args:
        student_log_probs: ``(B, K)`` log-probabilities of the student.
        teacher_probs: ``(B, K)`` probabilities of the teacher (rows sum to 1).
    """
    per_sample = torch.special.xlogy(teacher_probs, teacher_probs) - teacher_probs * student_log_probs
    return per_sample.sum(dim=1).mean()


def kl_with_temperature(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Hinton et al. (2015) soft-target loss: τ² · KL(softmax(z_T/τ) || softmax(z_S/τ)), batch mean.

    The τ² factor keeps the gradient magnitude independent of τ (the soft gradients scale as 1/τ²).

    Args:
        student_logits: ``(B, K)``.
        teacher_logits: ``(B, K)``.
        temperature: τ > 0.
    """
    student_log_probs = F.log_softmax(student_logits / temperature, dim=1)
    teacher_log_probs = F.log_softmax(teacher_logits / temperature, dim=1)
    # Σ_k p_T,k (log p_T,k − log p_S,k) summed over the batch ÷ B, in one kernel instead of five elementwise ops
    kl = F.kl_div(student_log_probs, teacher_log_probs, reduction="batchmean", log_target=True)
    return kl * temperature**2


def soft_cross_entropy(student_logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with soft targets: −Σ_k q_k log softmax(z_S)_k, batch mean.

    Args:
        student_logits: ``(B, K)``.
        target_probs: ``(B, K)`` target distribution (rows sum to 1).
    """
    return -(target_probs * F.log_softmax(student_logits, dim=1)).sum(dim=1).mean()


def lp_distance(
    left: torch.Tensor, right: torch.Tensor, norm: float = 2.0, power: float = 2.0, reduction: Reduction = "mean"
) -> torch.Tensor:
    """The survey's distance term L_D = ‖d_l − d_r‖_N^P (eq. 2), computed per sample.

    Args:
        left: ``(B, ...)`` e.g. the (adapted) student feature.
        right: ``(B, ...)`` e.g. the teacher feature, same shape as ``left``.
        norm: N >= 1, the L_N norm of the flattened difference of each sample.
        power: P > 0, the power the norm is raised to.
        reduction: ``batchmean`` averages the per-sample values; ``mean`` also divides by the number of
            elements per sample (so N = P = 2 equals the mean squared error); ``sum``; ``none`` -> ``(B,)``.
    """
    difference = (left - right).flatten(1)
    if norm == 2 and power == 2:
        per_sample = difference.pow(2).sum(dim=1)  # exact and smooth at zero
    else:
        per_sample = torch.linalg.vector_norm(difference, ord=norm, dim=1).pow(power)
    return _reduce(per_sample, reduction, difference.shape[1])


def cosine_distance(left: torch.Tensor, right: torch.Tensor, reduction: Reduction = "batchmean") -> torch.Tensor:
    """1 − cos(d_l, d_r) per sample on flattened tensors ``(B, ...)``, batch mean by default."""
    per_sample = 1.0 - F.cosine_similarity(left.flatten(1), right.flatten(1), dim=1, eps=1e-8)
    return _reduce(per_sample, reduction)
