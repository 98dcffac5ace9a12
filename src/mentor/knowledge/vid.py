"""VID: variational information distillation.

Ahn, Hu, Damianou, Lawrence & Dai (2019), "Variational Information Distillation for Knowledge
Transfer", CVPR, arXiv:1904.05835.

The student maximizes a variational lower bound of the mutual information I(t; s) between a teacher
layer t and a student layer s, i.e. minimizes −log q(t | s) for a Gaussian q whose mean μ(s) is a small
trainable network on the student feature and whose variance is one learned value per teacher channel:

    μ(s)   = conv1x1 → ReLU → conv1x1 → ReLU → conv1x1 (s)      (linear layers for flat features)
    σ_c²   = log(1 + exp(α_c)) + ε                               α: ``(C_T,)``, ε = 1e-5
    L_VID  = mean over samples, channels and positions of [ log σ_c + (t_c − μ_c(s))² / (2σ_c²) ]
    L      = w_CE · CE + λ Σ_{(l, l')} L_VID

Shapes: t ``(B, C_T, H, W)`` and s ``(B, C_S, H, W)`` (same H×W), or flat ``(B, C_T)`` and ``(B, C_S)``.
The constant ½ log 2π per channel is dropped. α starts where σ² equals ``initial_variance`` (5).

Scale: the paper sums the negative log-likelihood over channels; the implementation RepDistiller and
mdistiller credit to the authors' code averages it over channels as well (λ = 1 beside CE of weight 1),
and so does this one, with the same λ, ε and initial variance. The sum would multiply the term by C_T
(64 to 128 on a Fashion-MNIST CNN pair). With the mean the term starts at ~1/150 of CE's gradient there;
it grows as the learned variances shrink.
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from mentor.batch import Outputs
from mentor.errors import MentorError
from mentor.knowledge.base import check_pairs, register
from mentor.losses import CE, Context, Objective, Term

EPSILON = 1e-5


class GaussianRegressor(nn.Module):
    """q(t | s): the mean network μ(s) and the per-channel variance parameters α."""

    def __init__(self, student_channels: int, teacher_channels: int, spatial: bool, initial_variance: float) -> None:
        super().__init__()
        layer = (lambda i, o: nn.Conv2d(i, o, 1)) if spatial else nn.Linear
        self.mean = nn.Sequential(layer(student_channels, teacher_channels), nn.ReLU(),
                                  layer(teacher_channels, teacher_channels), nn.ReLU(),
                                  layer(teacher_channels, teacher_channels))
        start = math.log(math.expm1(max(initial_variance - EPSILON, 1e-6)))  # softplus⁻¹
        self.alpha = nn.Parameter(torch.full((teacher_channels,), start))

    def negative_log_likelihood(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """½ log σ_c² + (t − μ)² / (2σ_c²), averaged over samples, channels and positions."""
        variance = F.softplus(self.alpha) + EPSILON
        variance = variance.view(1, -1, *([1] * (teacher.ndim - 2)))
        per_element = 0.5 * variance.log() + (teacher - self.mean(student)).pow(2) / (2 * variance)
        return per_element.mean()


class VariationalInformation(Term):
    """Σ over layer pairs of −log q(t | s); one Gaussian regressor per pair, built in :meth:`bind`."""

    def __init__(self, student_layers: list[str], teacher_layers: list[str], initial_variance: float,
                 weight: float) -> None:
        super().__init__("vid", weight)
        self.pairs = list(zip(student_layers, teacher_layers, strict=True))
        self.initial_variance = initial_variance
        self.student_taps = tuple(dict.fromkeys(p for p in student_layers if p != "logits"))
        self.teacher_taps = tuple(dict.fromkeys(p for p in teacher_layers if p != "logits"))
        self.regressors = nn.ModuleList()

    def bind(self, student: Outputs, teacher: Outputs | None) -> None:
        if teacher is None:
            return
        self.regressors = nn.ModuleList()
        for student_layer, teacher_layer in self.pairs:
            left, right = student.get(student_layer), teacher.get(teacher_layer)
            spatial = left.ndim == 4 and right.ndim == 4 and left.shape[2:] == right.shape[2:]
            if not spatial and not (left.ndim == 2 and right.ndim == 2):
                raise MentorError(
                    f"vid pairs feature maps (B, C, H, W) of the same H x W or flat features (B, C); student "
                    f"{student_layer!r} gives {tuple(left.shape[1:])} and teacher {teacher_layer!r} gives "
                    f"{tuple(right.shape[1:])}. Pick layers of matching kinds and spatial sizes."
                )
            self.regressors.append(GaussianRegressor(left.shape[1], right.shape[1], spatial, self.initial_variance))

    def loss(self, context: Context) -> torch.Tensor:
        teacher = context.require_teacher(self.name)
        if len(self.regressors) != len(self.pairs):
            raise MentorError("vid's regressors are built from sample outputs: call objective.bind(student, teacher) "
                              "(a scheme's setup does) before computing the loss")
        total = context.student.logits.new_zeros(())
        for regressor, (student_layer, teacher_layer) in zip(self.regressors, self.pairs, strict=True):
            student_feature = context.student.get(student_layer)
            total = total + regressor.negative_log_likelihood(student_feature, teacher.get(teacher_layer))
        return total


@register("vid", "Ahn et al. 2019, Variational Information Distillation for Knowledge Transfer (CVPR)")
def vid(
    student_layers: Annotated[list[str], Field(min_length=1)],
    teacher_layers: Annotated[list[str], Field(min_length=1)],
    weight: Annotated[float, Field(ge=0)] = 1.0,
    initial_variance: Annotated[float, Field(gt=0)] = 5.0,
    ce_weight: Annotated[float, Field(ge=0)] = 1.0,
) -> Objective:
    """Hard-label CE plus λ · Σ −log q(t | s) over the paired layers (``student_layers[i]`` ↔ ``teacher_layers[i]``)."""
    check_pairs("vid", student_layers, teacher_layers, ("student_layers", "teacher_layers"))
    return Objective(CE(weight=ce_weight), VariationalInformation(student_layers, teacher_layers, initial_variance,
                                                                   weight))
