"""CC (CCKD): correlation congruence between the instances of a batch.

Peng, Jin, Liu, Zhou, Wu, Liu, Li & Zhang (2019), "Correlation Congruence for Knowledge
Distillation", ICCV, arXiv:1904.01802.

Besides instance-level KD, the student matches the teacher's correlation matrix of the batch. With
F the L2-normalized embeddings ``(B, D)`` (the student's first mapped by a trainable linear embedding
to the teacher's width D when the widths differ), the Gaussian RBF correlation
k(F_i, F_j) = exp(−γ ‖F_i − F_j‖²) = exp(−2γ) exp(2γ F_i·F_j) is approximated by its P-order Taylor
expansion:

    ψ(F)_ij = Σ_{p=0..P} exp(−2γ) (2γ)^p / p! · (F_i · F_j)^p                ``(B, B)``
    L_CC    = 1/B² ‖ψ(F_T) − ψ(F_S)‖²₂
    L       = w_CE · CE + w_KD · τ² KL(p_T^τ || p_S^τ) + β · L_CC

The paper writes the mixture as α·CE + (1 − α)·KD + β·L_CC, i.e. w_CE = α and w_KD = 1 − α (defaults here
0.1 / 0.9 as in ``kd``; β = ``cc_weight``, γ = 0.4, P = 2).

The authors released no code for this loss. β = 100 is the weight of the one public implementation of
this exact formula (Knowledge-Distillation-Zoo, AberHu: unit embeddings, the P = 2 expansion with γ = 0.4,
the mean squared difference of the two B x B matrices, beside CE). Other public weights belong to other
losses: RepDistiller's β = 0.02 multiplies a different correlation loss (products of neighbouring
samples' absolute differences), and torchdistill's 0.003 multiplies the unsquared norm of unnormalized
128-wide embeddings. On a Fashion-MNIST CNN pair β = 0.02 would give this term ~1/800 of CE's gradient
(no effect); β = 100 gives it ~6 times CE's.
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from mentor.batch import Outputs
from mentor.knowledge.base import register
from mentor.losses import CE, KL, Context, Objective, Term


def taylor_rbf_correlation(embeddings: torch.Tensor, gamma: float, order: int) -> torch.Tensor:
    """ψ(F): the P-order Taylor approximation of the RBF kernel on unit vectors, ``(B, D)`` -> ``(B, B)``."""
    dots = embeddings @ embeddings.T
    coefficients = [math.exp(-2 * gamma) * (2 * gamma) ** p / math.factorial(p) for p in range(order + 1)]
    return sum(coefficient * dots.pow(p) for p, coefficient in enumerate(coefficients))


class CorrelationCongruence(Term):
    """β · 1/B² ‖ψ(F_T) − ψ(F_S)‖²; holds the student's linear embedding when the widths differ."""

    def __init__(self, student_layer: str, teacher_layer: str, gamma: float, order: int, weight: float) -> None:
        super().__init__("cc", weight)
        self.gamma, self.order = gamma, order
        self.student_layer, self.teacher_layer = student_layer, teacher_layer
        self.student_taps = () if student_layer == "logits" else (student_layer,)
        self.teacher_taps = () if teacher_layer == "logits" else (teacher_layer,)
        self.embedding: nn.Module = nn.Identity()

    def bind(self, student: Outputs, teacher: Outputs | None) -> None:
        if teacher is None:
            return
        student_width = student.get(self.student_layer).flatten(1).shape[1]
        teacher_width = teacher.get(self.teacher_layer).flatten(1).shape[1]
        if student_width != teacher_width:
            self.embedding = nn.Linear(student_width, teacher_width)

    def loss(self, context: Context) -> torch.Tensor:
        teacher = F.normalize(context.require_teacher(self.name).get(self.teacher_layer).flatten(1), dim=1)
        student = F.normalize(self.embedding(context.student.get(self.student_layer).flatten(1)), dim=1)
        difference = taylor_rbf_correlation(teacher, self.gamma, self.order) - taylor_rbf_correlation(
            student, self.gamma, self.order)
        return difference.pow(2).sum() / len(student) ** 2


@register("cc", "Peng et al. 2019, Correlation Congruence for Knowledge Distillation (ICCV)")
def cc(
    student_layer: str = "flatten",
    teacher_layer: str = "flatten",
    gamma: Annotated[float, Field(gt=0)] = 0.4,
    order: Annotated[int, Field(ge=0, le=10)] = 2,
    cc_weight: Annotated[float, Field(ge=0)] = 100.0,
    ce_weight: Annotated[float, Field(ge=0)] = 0.1,
    kd_weight: Annotated[float, Field(ge=0)] = 0.9,
    temperature: Annotated[float, Field(gt=0)] = 4.0,
) -> Objective:
    """Hard-label CE, soft-target KD at τ and β · L_CC on the embeddings tapped at the given paths."""
    return Objective(
        CE(weight=ce_weight),
        KL(temperature=temperature, weight=kd_weight),
        CorrelationCongruence(student_layer, teacher_layer, gamma, order, cc_weight),
    )
