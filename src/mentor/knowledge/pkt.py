"""PKT: probabilistic knowledge transfer.

Passalis & Tefas (2018), "Learning Deep Representations with Probabilistic Knowledge Transfer",
ECCV, arXiv:1803.10837.

The student matches the teacher's conditional probability of picking sample i as the neighbour of
sample j, estimated in each representation space with the cosine-similarity kernel (no bandwidth to
tune, and the two widths may differ). With a the embeddings flattened per sample, ``(B, D)``:

    K(a, b)  = ½ (aᵀb / (‖a‖₂ ‖b‖₂) + 1)                          in [0, 1]
    p_{i|j}  = K(a_i, a_j) / Σ_{k ≠ j} K(a_k, a_j)                 ``(B, B)`` with p_{j|j} = 0
    L_PKT    = 1/B Σ_j Σ_{i ≠ j} p^T_{i|j} log(p^T_{i|j} / p^S_{i|j})     = mean_j KL(P^T_{·|j} || P^S_{·|j})
    L        = w_CE · CE + w_PKT · L_PKT

Scale, against the authors' released code (passalis/probabilistic_kt, reused unchanged by RepDistiller
and mdistiller): that code averages p^T log(p^T / p^S) over all B² entries, the diagonal included (each
row normalized with K(a_j, a_j) = 1 in it), and RepDistiller and mdistiller weight it 30000 beside CE
(weight 1) at batch size 64. Its mean over B² entries is 1/B of the mean over rows used here (the
diagonal changes a row by O(1/B)), so its weight acts as 30000/B on L_PKT. Averaging rows keeps the
weight independent of the batch size; the default w_PKT = 30000/64 = 468.75 is the reference's scale at
the batch size it was tuned for (w_PKT = 1 would give the term ~1/130 of CE's gradient on a
Fashion-MNIST CNN pair: no effect). ε = 1e-7 guards the logarithms.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field

from mentor.knowledge.base import register
from mentor.losses import CE, Context, Objective, Term

EPSILON = 1e-7
REFERENCE_WEIGHT = 30000 / 64  # RepDistiller's β = 30000 on a mean over B² entries, at batch size 64


def conditional_probabilities(embeddings: torch.Tensor) -> torch.Tensor:
    """Row j holds p_{·|j} from the cosine kernel: ``(B, D)`` -> ``(B, B)``, zero diagonal, rows sum to 1."""
    unit = F.normalize(embeddings.flatten(1), dim=1)
    kernel = 0.5 * (unit @ unit.T + 1.0)
    kernel = kernel.masked_fill(torch.eye(len(kernel), dtype=torch.bool, device=kernel.device), 0.0)
    return kernel / kernel.sum(dim=1, keepdim=True).clamp_min(EPSILON)


class ProbabilisticTransfer(Term):
    """Mean over the batch of KL(P^T_{·|j} || P^S_{·|j})."""

    def __init__(self, student_layer: str, teacher_layer: str, weight: float) -> None:
        super().__init__("pkt", weight)
        self.student_layer, self.teacher_layer = student_layer, teacher_layer
        self.student_taps = () if student_layer == "logits" else (student_layer,)
        self.teacher_taps = () if teacher_layer == "logits" else (teacher_layer,)

    def loss(self, context: Context) -> torch.Tensor:
        teacher = conditional_probabilities(context.require_teacher(self.name).get(self.teacher_layer))
        student = conditional_probabilities(context.student.get(self.student_layer))
        off_diagonal = ~torch.eye(len(teacher), dtype=torch.bool, device=teacher.device)
        divergence = teacher * ((teacher + EPSILON).log() - (student + EPSILON).log())
        return (divergence * off_diagonal).sum(dim=1).mean()


@register("pkt", "Passalis & Tefas 2018, Learning Deep Representations with Probabilistic Knowledge Transfer")
def pkt(
    student_layer: str = "flatten",
    teacher_layer: str = "flatten",
    weight: Annotated[float, Field(ge=0)] = REFERENCE_WEIGHT,
    ce_weight: Annotated[float, Field(ge=0)] = 1.0,
) -> Objective:
    """Hard-label CE plus w_PKT times the PKT divergence between the teacher's and student's neighbour probabilities."""
    return Objective(CE(weight=ce_weight), ProbabilisticTransfer(student_layer, teacher_layer, weight))
