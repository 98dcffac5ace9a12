"""Teacher outlier rejection: regression distillation that ignores the samples the teacher gets badly wrong.

Takamoto, Morishita & Imaoka (2020), "An Efficient Method of Training Small Models for Regression
Problems with Knowledge Distillation", IEEE MIPR (arXiv:2002.12597). For regression the teacher's
prediction is a target like the label, and where it is far from the ground truth it teaches an error;
such samples are rejected from the distillation term. With student predictions s_i, the student's
teacher-regressing output h_i (s_i itself, or a second head, below), teacher predictions t_i and
targets y_i, all ``(B, D)``:

    e_i = ‖t_i − y_i‖²₂                                   the teacher's squared error on sample i
    m_i = 1[e_i ≤ δ²],  δ = k · sqrt((1/B) Σ_j e_j)       inlier: within k times the teacher's RMS error
    L   = w_GT · (1/B) Σ_i ‖s_i − y_i‖²₂ + w_KD · (1/B) Σ_i m_i ‖h_i − t_i‖²₂

The rejected samples still count in the mean (1/B, not 1/Σm), so a batch with outliers weighs
distillation less rather than re-weighting the rest. The rule above (a threshold on the teacher's error) is
our reading of the paper's abstract; its exact threshold was not checked against the full text. A fixed δ is
given with ``absolute_threshold`` (in target units). By default δ is
relative, k = ``threshold`` = 2 (two RMS errors: about 5% of Gaussian errors are rejected), so that one
default fits targets of any scale; ``threshold: null`` rejects nothing (plain regression distillation,
the baseline the paper compares with).

Multi-task student (the paper's second proposal): a student with two outputs, one regressing the
ground truth (s, its forward output, used at inference) and one regressing the teacher (h, read at
the module path ``teacher_head``), sharing its feature extractor. :class:`mentor.models.TwoHeadRegressor`
builds one over any body; ``teacher_head: teacher_head`` names its head. Without ``teacher_head`` both
terms act on the one output. Weights w_GT = w_KD = 1 (the two losses summed; unchecked against the paper's text).
"""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field

from mentor.errors import MentorError
from mentor.knowledge.base import register
from mentor.losses import Objective
from mentor.losses.regression import TargetMSE, check_regression, squared_error
from mentor.losses.terms import Context, Term


def teacher_inliers(teacher_predictions: torch.Tensor, targets: torch.Tensor, threshold: float | None,
                    absolute_threshold: float | None = None) -> torch.Tensor:
    """m ``(B,)``: 1 where the teacher's error ‖t_i − y_i‖₂ is within δ (see the module docstring), else 0."""
    errors = squared_error(teacher_predictions, targets)
    if absolute_threshold is not None:
        return (errors <= absolute_threshold**2).to(errors.dtype)
    if threshold is None:
        return torch.ones_like(errors)
    return (errors <= threshold**2 * errors.mean()).to(errors.dtype)


def rejected_distillation(student_predictions: torch.Tensor, teacher_predictions: torch.Tensor,
                          inliers: torch.Tensor) -> torch.Tensor:
    """(1/B) Σ_i m_i ‖h_i − t_i‖²₂ with the teacher detached: ``(B, D)``, ``(B, D)``, ``(B,)`` -> scalar."""
    return (inliers * squared_error(student_predictions, teacher_predictions.detach())).mean()


class OutlierRejectedDistillation(Term):
    """The w_KD term: the student's teacher-regressing output matches the teacher on the teacher's inliers."""

    def __init__(self, threshold: float | None, absolute_threshold: float | None, teacher_head: str | None,
                 weight: float = 1.0) -> None:
        super().__init__("tor", weight)
        self.threshold, self.absolute_threshold, self.teacher_head = threshold, absolute_threshold, teacher_head
        self.student_taps = (teacher_head,) if teacher_head else ()

    def loss(self, context: Context) -> torch.Tensor:
        teacher, targets = context.require_teacher(self.name).logits, context.batch.targets
        head = context.student.get(self.teacher_head)
        check_regression(teacher, targets, "outlier-rejection (the teacher's output)")
        if head.shape != teacher.shape:
            where = f"the student's '{self.teacher_head}'" if self.teacher_head else "the student"
            raise MentorError(f"outlier-rejection: {where} outputs {tuple(head.shape[1:])} per sample, the teacher "
                              f"{tuple(teacher.shape[1:])}; give both the same num_classes (number of targets)")
        inliers = teacher_inliers(teacher, targets, self.threshold, self.absolute_threshold)
        return rejected_distillation(head, teacher, inliers)


@register("outlier-rejection", "Takamoto et al. 2020, KD for regression: teacher outlier rejection (IEEE MIPR)")
def outlier_rejection(
    threshold: Annotated[float | None, Field(gt=0)] = 2.0,
    absolute_threshold: Annotated[float | None, Field(gt=0)] = None,
    gt_weight: Annotated[float, Field(ge=0)] = 1.0,
    kd_weight: Annotated[float, Field(ge=0)] = 1.0,
    teacher_head: str | None = None,
) -> Objective:
    """w_GT · ‖s − y‖² + w_KD · m ‖h − t‖² (batch means); ``threshold: null`` is plain regression distillation."""
    distillation = OutlierRejectedDistillation(threshold, absolute_threshold, teacher_head, weight=kd_weight)
    return Objective(TargetMSE(weight=gt_weight), distillation)
