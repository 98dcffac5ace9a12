"""SP: similarity-preserving knowledge distillation.

Tung & Mori (2019), "Similarity-Preserving Knowledge Distillation", ICCV, arXiv:1907.09682.

Inputs that produce similar activations in the teacher should produce similar activations in the
student. For a layer pair (l, l'), with A the activations flattened per sample (``(B, C·H·W)``; the
teacher's and student's widths may differ) and b the batch size:

    G̃ = A · Aᵀ                                  ``(B, B)``
    G  = G̃ with each row L2-normalized: G_[i,:] = G̃_[i,:] / ‖G̃_[i,:]‖₂
    L_SP = 1/b² ‖G_T^(l) − G_S^(l')‖²_F
    L = w_CE · CE + γ Σ_{(l, l')} L_SP

The paper's CIFAR-10 setting is γ = 3000 on the last block of each group of layers; RepDistiller's
implementation (checked with the authors) uses the same loss and γ = 3000 on its last stage.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field

from mentor.knowledge.base import check_pairs, register
from mentor.losses import CE, Context, Objective, Term


def similarity_matrix(activations: torch.Tensor) -> torch.Tensor:
    """Row-normalized batch similarity G: ``(B, ...)`` -> ``(B, B)``."""
    flat = activations.flatten(1)
    return F.normalize(flat @ flat.T, p=2, dim=1)


class SimilarityPreserving(Term):
    """Σ over layer pairs of 1/b² ‖G_T − G_S‖²_F."""

    def __init__(self, student_layers: list[str], teacher_layers: list[str], weight: float) -> None:
        super().__init__("sp", weight)
        self.pairs = list(zip(student_layers, teacher_layers, strict=True))
        self.student_taps = tuple(dict.fromkeys(p for p in student_layers if p != "logits"))
        self.teacher_taps = tuple(dict.fromkeys(p for p in teacher_layers if p != "logits"))

    def loss(self, context: Context) -> torch.Tensor:
        teacher = context.require_teacher(self.name)
        total = context.student.logits.new_zeros(())
        for student_layer, teacher_layer in self.pairs:
            student_g = similarity_matrix(context.student.get(student_layer))
            teacher_g = similarity_matrix(teacher.get(teacher_layer))
            total = total + (teacher_g - student_g).pow(2).sum() / len(student_g) ** 2
        return total


@register("sp", "Tung & Mori 2019, Similarity-Preserving Knowledge Distillation (ICCV)")
def sp(
    student_layers: Annotated[list[str], Field(min_length=1)],
    teacher_layers: Annotated[list[str], Field(min_length=1)],
    gamma: Annotated[float, Field(ge=0)] = 3000.0,
    ce_weight: Annotated[float, Field(ge=0)] = 1.0,
) -> Objective:
    """Hard-label CE plus γ · L_SP summed over the paired layers (``student_layers[i]`` ↔ ``teacher_layers[i]``)."""
    check_pairs("sp", student_layers, teacher_layers, ("student_layers", "teacher_layers"))
    return Objective(CE(weight=ce_weight), SimilarityPreserving(student_layers, teacher_layers, gamma))
