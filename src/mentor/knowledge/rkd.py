"""RKD: relational knowledge distillation (distance-wise and angle-wise potentials).

Park, Kim, Lu & Cho (2019), "Relational Knowledge Distillation", CVPR, arXiv:1904.05068.

The student reproduces the *structure* of the teacher's embedding space rather than the embeddings
themselves, so the two embeddings may have different widths. With t_i the teacher's and s_i the
student's embedding of sample i (the tapped tensor flattened, ``(B, D_t)`` and ``(B, D_s)``):

    ψ_D(t_i, t_j)      = ‖t_i − t_j‖₂ / μ,     μ = mean of ‖t_i − t_j‖₂ over the pairs i ≠ j of the batch
    ψ_A(t_i, t_j, t_k) = ⟨e_ij, e_kj⟩,         e_ij = (t_i − t_j) / ‖t_i − t_j‖₂   (cosine of the angle at t_j)

    L_RKD-D = mean over ordered pairs i ≠ j of l_δ(ψ_D(t_i, t_j), ψ_D(s_i, s_j))
    L_RKD-A = mean over triplets of distinct i, j, k of l_δ(ψ_A(t_i, t_j, t_k), ψ_A(s_i, s_j, s_k))
    L = w_CE · CE + λ_D · L_RKD-D + λ_A · L_RKD-A

l_δ is the Huber loss with δ = 1 (``smooth_l1``). The paper sums over pairs/triplets; the mean used here
only rescales λ and is what the paper's defaults λ_D = 25, λ_A = 50 were tuned with. The reference code
(RepDistiller, from the authors') averages over all B² pairs and B³ triplets, the degenerate ones included
(they agree in both spaces and add zeros): a factor 1 + O(1/B) from the means over distinct ones here.
The potentials cost O(B² D) and O(B³ + B² D) memory.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field

from mentor.knowledge.base import register
from mentor.losses import CE, Context, Objective, Term


def distance_potential(embeddings: torch.Tensor) -> torch.Tensor:
    """ψ_D for every ordered pair: ``(B, D)`` -> ``(B, B)`` distances divided by their off-diagonal mean."""
    squared = (embeddings[:, None, :] - embeddings[None, :, :]).pow(2).sum(dim=2)
    off_diagonal = ~torch.eye(len(embeddings), dtype=torch.bool, device=embeddings.device)
    # clamp before sqrt: the diagonal (and duplicates) would give an infinite gradient at 0
    distances = torch.where(off_diagonal, squared.clamp_min(1e-12).sqrt(), torch.zeros_like(squared))
    return distances / distances[off_diagonal].mean().clamp_min(1e-12)


def angle_potential(embeddings: torch.Tensor) -> torch.Tensor:
    """ψ_A as ``(B, B, B)``: entry ``[j, i, k]`` is the cosine of the angle at t_j between t_i and t_k."""
    directions = F.normalize(embeddings[None, :, :] - embeddings[:, None, :], dim=2)  # [j, i] = e_ij
    return torch.bmm(directions, directions.transpose(1, 2))


def distinct_triplets(size: int, device: torch.device) -> torch.Tensor:
    """Mask ``(B, B, B)`` of index triplets ``[j, i, k]`` whose three indices differ."""
    index = torch.arange(size, device=device)
    j, i, k = index[:, None, None], index[None, :, None], index[None, None, :]
    return (i != j) & (k != j) & (i != k)


class RelationTerm(Term):
    """One RKD potential (``"distance"`` or ``"angle"``) compared with the Huber loss."""

    def __init__(self, potential: str, student_layer: str, teacher_layer: str, weight: float) -> None:
        super().__init__(f"rkd_{potential}", weight)
        self.potential = potential
        self.student_layer, self.teacher_layer = student_layer, teacher_layer
        self.student_taps = () if student_layer == "logits" else (student_layer,)
        self.teacher_taps = () if teacher_layer == "logits" else (teacher_layer,)

    def loss(self, context: Context) -> torch.Tensor:
        teacher = context.require_teacher(self.name).get(self.teacher_layer).flatten(1)
        student = context.student.get(self.student_layer).flatten(1)
        if self.potential == "distance":
            mask = ~torch.eye(len(student), dtype=torch.bool, device=student.device)
            return F.smooth_l1_loss(distance_potential(student)[mask], distance_potential(teacher)[mask])
        if len(student) < 3:  # no triplet of distinct samples: nothing to compare
            return student.sum() * 0.0
        mask = distinct_triplets(len(student), student.device)
        return F.smooth_l1_loss(angle_potential(student)[mask], angle_potential(teacher)[mask])


@register("rkd", "Park et al. 2019, Relational Knowledge Distillation (CVPR)")
def rkd(
    student_layer: str = "flatten",
    teacher_layer: str = "flatten",
    distance_weight: Annotated[float, Field(ge=0)] = 25.0,
    angle_weight: Annotated[float, Field(ge=0)] = 50.0,
    ce_weight: Annotated[float, Field(ge=0)] = 1.0,
) -> Objective:
    """Hard-label CE plus λ_D · RKD-D and λ_A · RKD-A on the embeddings tapped at the given paths."""
    return Objective(
        CE(weight=ce_weight),
        RelationTerm("distance", student_layer, teacher_layer, distance_weight),
        RelationTerm("angle", student_layer, teacher_layer, angle_weight),
    )
