"""NST: neuron selectivity transfer by maximum mean discrepancy.

Huang & Wang (2017), "Like What You Like: Knowledge Distill via Neuron Selectivity Transfer",
arXiv:1707.01219.

Each channel's spatial activation map is one sample of the distribution of "neuron selectivity
patterns" of a layer. For one input, F_T ``(C_T, H·W)`` and F_S ``(C_S, H·W)`` hold the flattened maps
of the teacher's and student's layers (same H×W, channel counts may differ), each map L2-normalized:
f^k ← f^k / ‖f^k‖₂. The squared MMD between the two sets of maps under the kernel k is

    MMD² = 1/C_T² Σ_{i,i'} k(f_T^i, f_T^i') + 1/C_S² Σ_{j,j'} k(f_S^j, f_S^j') − 2/(C_T C_S) Σ_{i,j} k(f_T^i, f_S^j)

with the polynomial kernel k(x, y) = (xᵀy + c)^d (the paper's choice: d = 2, c = 0). Averaged over the
batch,

    L = w_CE · CE + λ · L_MMD²(F_T, F_S)

The paper writes λ/2 · L_MMD²; the authors' released code (TuSimple/neuron-selectivity-transfer, MXNet:
``mmd_poly`` scaled by λ = 50 on the last block's maps, beside CE) and RepDistiller (β = 50) both apply λ
to L_MMD² itself, without the ½; so does this implementation, with the same λ = 50.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field

from mentor.batch import Outputs
from mentor.errors import MentorError
from mentor.knowledge.base import register
from mentor.losses import CE, Context, Objective, Term


def selectivity_maps(features: torch.Tensor) -> torch.Tensor:
    """Per-channel L2-normalized spatial maps: ``(B, C, H, W)`` -> ``(B, C, H·W)``."""
    return F.normalize(features.flatten(2), dim=2)


def polynomial_mmd(teacher_maps: torch.Tensor, student_maps: torch.Tensor, degree: int, offset: float) -> torch.Tensor:
    """Squared MMD per sample with k(x, y) = (xᵀy + c)^d: ``(B, C_T, N)``, ``(B, C_S, N)`` -> ``(B,)``."""

    def mean_kernel(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        return (left @ right.transpose(1, 2) + offset).pow(degree).mean(dim=(1, 2))

    return (mean_kernel(teacher_maps, teacher_maps) + mean_kernel(student_maps, student_maps)
            - 2 * mean_kernel(teacher_maps, student_maps))


class NeuronSelectivityTransfer(Term):
    """Batch mean of MMD² between the teacher's and student's normalized channel maps."""

    def __init__(self, student_layer: str, teacher_layer: str, degree: int, offset: float, weight: float) -> None:
        super().__init__("nst", weight)
        self.degree, self.offset = degree, offset
        self.student_layer, self.teacher_layer = student_layer, teacher_layer
        self.student_taps, self.teacher_taps = (student_layer,), (teacher_layer,)

    def bind(self, student: Outputs, teacher: Outputs | None) -> None:
        if teacher is None:
            return
        left, right = student.get(self.student_layer), teacher.get(self.teacher_layer)
        if left.ndim != 4 or right.ndim != 4 or left.shape[2:] != right.shape[2:]:
            raise MentorError(
                f"nst compares feature maps (B, C, H, W) of the same H x W; student {self.student_layer!r} gives "
                f"{tuple(left.shape[1:])} and teacher {self.teacher_layer!r} gives {tuple(right.shape[1:])}. "
                "Pick student_layer and teacher_layer with the same spatial size."
            )

    def loss(self, context: Context) -> torch.Tensor:
        teacher = selectivity_maps(context.require_teacher(self.name).get(self.teacher_layer))
        student = selectivity_maps(context.student.get(self.student_layer))
        return polynomial_mmd(teacher, student, self.degree, self.offset).mean()


@register("nst", "Huang & Wang 2017, Like What You Like: Neuron Selectivity Transfer (arXiv:1707.01219)")
def nst(
    student_layer: str,
    teacher_layer: str,
    degree: Annotated[int, Field(ge=1)] = 2,
    offset: Annotated[float, Field(ge=0)] = 0.0,
    weight: Annotated[float, Field(ge=0)] = 50.0,
    ce_weight: Annotated[float, Field(ge=0)] = 1.0,
) -> Objective:
    """Hard-label CE plus λ · MMD² with the polynomial kernel (``weight`` is λ)."""
    selectivity = NeuronSelectivityTransfer(student_layer, teacher_layer, degree, offset, weight)
    return Objective(CE(weight=ce_weight), selectivity)
