"""Decoupled Knowledge Distillation (DKD).

Zhao, Cui, Song, Qiu & Liang (2022), "Decoupled Knowledge Distillation", CVPR, arXiv:2203.08679.

With p = softmax(z / τ) over K classes and t the ground-truth class of a sample:

    b = [p_t, 1 − p_t]                          binary target / non-target distribution, (B, 2)
    p̂_i = exp(z_i/τ) / Σ_{j≠t} exp(z_j/τ)       distribution among the K − 1 non-target classes, (B, K−1)
    TCKD = τ² · KL(b^T ‖ b^S)       NCKD = τ² · KL(p̂^T ‖ p̂^S)          (each averaged over the batch)

Classical KD decomposes per sample as KD = TCKD + (1 − p_t^T) · NCKD, which couples NCKD to the
teacher's confidence. DKD weights the two parts freely:

    L = CE(y, z_S) + w(e) · (α · TCKD + β · NCKD),      w(e) = min(1, e / warmup)

where w is the paper's linear warm-up of the distillation weight over the first epochs. Shapes:
student and teacher logits ``(B, K)`` with K >= 2, labels ``(B,)`` (int64 class indices).

Defaults α = 1, β = 8, τ = 4, a 20-epoch warm-up and CE weight 1, with the batch-mean τ²·KL of each part,
are the authors' released CIFAR-100 settings (megvii-research/mdistiller). At full weight NCKD starts at
~14 times CE's gradient on a Fashion-MNIST CNN pair: that is β = 8 as released.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from mentor.batch import Outputs
from mentor.errors import MentorError
from mentor.knowledge.base import register
from mentor.losses import CE, Context, Objective, Schedule, Term


def _kl_from_log_probs(student_log_probs: torch.Tensor, teacher_log_probs: torch.Tensor) -> torch.Tensor:
    """KL(p_T ‖ p_S) = Σ_k p_T,k (log p_T,k − log p_S,k), batch mean; inputs ``(B, N)``."""
    return (teacher_log_probs.exp() * (teacher_log_probs - student_log_probs)).sum(dim=1).mean()


def _binary_log_probs(scaled_logits: torch.Tensor, target_mask: torch.Tensor) -> torch.Tensor:
    """log [p_t, 1 − p_t] ``(B, 2)`` from logits / τ ``(B, K)``, computed with log-sum-exp for stability."""
    log_total = scaled_logits.logsumexp(dim=1)
    log_target = scaled_logits[target_mask] - log_total
    log_rest = scaled_logits.masked_fill(target_mask, float("-inf")).logsumexp(dim=1) - log_total
    return torch.stack([log_target, log_rest], dim=1)


def _non_target_log_probs(scaled_logits: torch.Tensor, target_mask: torch.Tensor) -> torch.Tensor:
    """log p̂ ``(B, K − 1)``: the softmax over the non-target classes only."""
    batch, classes = scaled_logits.shape
    return F.log_softmax(scaled_logits[~target_mask].view(batch, classes - 1), dim=1)


def decoupled_kl(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(TCKD, NCKD), each τ² · KL averaged over the batch.

    Args:
        student_logits: ``(B, K)``.
        teacher_logits: ``(B, K)``.
        targets: ``(B,)`` class indices in ``[0, K)``.
        temperature: τ > 0.
    """
    mask = F.one_hot(targets, student_logits.shape[1]).bool()
    student, teacher = student_logits / temperature, teacher_logits / temperature
    tckd = _kl_from_log_probs(_binary_log_probs(student, mask), _binary_log_probs(teacher, mask))
    nckd = _kl_from_log_probs(_non_target_log_probs(student, mask), _non_target_log_probs(teacher, mask))
    return tckd * temperature**2, nckd * temperature**2


class DecoupledKL(Term):
    """One part of DKD: ``"tckd"`` (target-class) or ``"nckd"`` (non-target-class) knowledge distillation."""

    def __init__(self, part: Literal["tckd", "nckd"], temperature: float, weight: float, schedule: Schedule) -> None:
        super().__init__(part, weight, schedule)
        self.part, self.temperature = part, temperature

    def bind(self, student: Outputs, teacher: Outputs | None) -> None:
        if teacher is None:
            raise MentorError(f"loss term {self.name!r} needs a teacher, but this scheme has none")
        if student.logits.ndim != 2 or student.logits.shape != teacher.logits.shape or student.logits.shape[1] < 2:
            raise MentorError(
                f"dkd needs student and teacher logits of the same shape (B, K) with K >= 2 classes; got student "
                f"{tuple(student.logits.shape)} and teacher {tuple(teacher.logits.shape)}"
            )

    def loss(self, context: Context) -> torch.Tensor:
        teacher = context.require_teacher(self.name)
        targets, classes = context.batch.targets, context.student.logits.shape[1]
        if targets.dtype != torch.long or targets.ndim != 1:
            raise MentorError(
                f"dkd needs class-index targets (B,) of dtype int64; got {targets.dtype} {tuple(targets.shape)}"
            )
        if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= classes):
            raise MentorError(f"dkd targets must be class indices in [0, {classes}); got values outside that range")
        tckd, nckd = decoupled_kl(context.student.logits, teacher.logits, targets, self.temperature)
        return tckd if self.part == "tckd" else nckd


@register("dkd", "Zhao et al. 2022, Decoupled Knowledge Distillation (CVPR)")
def dkd(
    alpha: Annotated[float, Field(ge=0)] = 1.0,
    beta: Annotated[float, Field(ge=0)] = 8.0,
    temperature: Annotated[float, Field(gt=0)] = 4.0,
    warmup: Annotated[float, Field(ge=0)] = 20.0,
    ce_weight: Annotated[float, Field(ge=0)] = 1.0,
) -> Objective:
    """CE + α·TCKD + β·NCKD, the DKD weight rising linearly from 0 over the first ``warmup`` epochs."""
    schedule = Schedule(warmup=warmup)
    return Objective(
        CE(weight=ce_weight),
        DecoupledKL("tckd", temperature, alpha, schedule),
        DecoupledKL("nckd", temperature, beta, schedule),
    )
