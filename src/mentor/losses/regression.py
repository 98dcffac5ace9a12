"""Regression targets: the squared error to the ground truth, and the objective a model trains on alone.

Shapes: predictions and targets ``(B, D)`` (D outputs; floating-point targets). The loss of one sample is
the squared L2 distance ‖ŷ − y‖²₂ over its D outputs; a batch's loss is its mean over the B samples (for
D = 1 this is the mean squared error that evaluation reports).
"""

from __future__ import annotations

import torch

from mentor.errors import MentorError
from mentor.losses.objective import Objective
from mentor.losses.terms import CE, Context, Schedule, Term


def squared_error(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """‖ŷ_i − y_i‖²₂ per sample: ``(B, D)`` and ``(B, D)`` -> ``(B,)``."""
    return (predictions - targets).pow(2).reshape(predictions.shape[0], -1).sum(dim=1)


def check_regression(predictions: torch.Tensor, targets: torch.Tensor, who: str) -> None:
    """Float targets of the predictions' shape: a one-line :class:`MentorError` otherwise."""
    if not targets.is_floating_point():
        raise MentorError(f"{who} regresses floating-point targets, but the data has class labels ({targets.dtype}); "
                          "use a regression dataset (e.g. data.name: diabetes) or a classification method (kd)")
    if predictions.shape != targets.shape:
        raise MentorError(f"{who}: the model outputs {tuple(predictions.shape[1:])} per sample but the targets are "
                          f"{tuple(targets.shape[1:])}; give the model num_classes equal to the number of targets")


class TargetMSE(Term):
    """Squared error to the ground truth, batch mean: (1/B) Σ_i ‖ŷ_i − y_i‖²₂ (the regression counterpart of CE)."""

    needs_teacher = False

    def __init__(self, weight: float = 1.0, schedule: Schedule | None = None) -> None:
        super().__init__("mse", weight, schedule)

    def loss(self, context: Context) -> torch.Tensor:
        predictions, targets = context.student.logits, context.batch.targets
        check_regression(predictions, targets, "the 'mse' term")
        return squared_error(predictions, targets).mean()


def supervised_objective(targets: torch.Tensor) -> Objective:
    """What a model trains on alone: cross-entropy for class labels, :class:`TargetMSE` for float targets."""
    return Objective(TargetMSE()) if targets.is_floating_point() else Objective(CE())
