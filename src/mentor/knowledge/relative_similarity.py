"""Learning from multiple teachers with relative similarity: You, Xu, Xu & Tao (2017), "Learning from Multiple
Teacher Networks", KDD.

Two parts (§3):

1. the teachers' softened outputs averaged (uniform weights, their eq. 3), matched by the student as in KD;
2. a triplet loss on a student representation that keeps the *relative* similarity between samples the
   teachers agree on. For an anchor a and two other samples i, j of the batch the teachers vote with their
   averaged distances  d_T(a, i) = (1/M) Σ_m ‖t_{m,a} − t_{m,i}‖²;  the closer one is the positive p, the other
   the negative n, and the student's distances must keep that order by a margin:

       L_rel = mean over triplets of max(0, ‖s_a − s_p‖² − ‖s_a − s_n‖² + margin)

Every row of the student's (``student``) and each teacher's (``teacher_features``) representation is flattened
and L2-normalised first, so teachers of different widths and scales vote on the same footing and the margin
is a fraction of the largest squared distance (4). Each sample of the batch is the anchor of one triplet whose
other two samples come from a random permutation of the batch. Total:

    L = (1 − α) · CE(y, p_S) + α · τ² · KL(p̄^τ || p_S^τ) + β · L_rel,    p̄^τ = (1/M) Σ_m softmax(z_m / τ)

Shapes: student representation ``(B, ...)``, teacher ``m``'s ``(B, ...)``; logits as in
:mod:`mentor.knowledge.multi_teacher`. ``None`` as a path takes the logits (the paper uses an intermediate
layer of the student; give it with ``student``). Defaults: τ = 4 and α = 0.9 as KD; β = 1 and margin 0.1
(the paper tunes both per dataset; choose them on validation).
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field

from mentor.batch import Outputs
from mentor.errors import MentorError
from mentor.knowledge.base import register
from mentor.knowledge.multi_teacher import MultiTeacherKL
from mentor.losses import CE, Objective
from mentor.losses.terms import Context, Term
from mentor.teachers.weighting import create, member_path
from mentor.teachers.weighting.base import check_teachers


def squared_distances(features: torch.Tensor, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """‖f_left − f_right‖² per pair ``(T,)`` of the rows of ``features`` ``(B, F)``."""
    return (features[left] - features[right]).pow(2).sum(dim=1)


def relative_similarity_loss(student: torch.Tensor, teachers: list[torch.Tensor], anchors: torch.Tensor,
                             first: torch.Tensor, second: torch.Tensor, margin: float) -> torch.Tensor:
    """L_rel over the triplets (anchors[t], first[t], second[t]), ordered by the teachers' averaged distances.

    Args:
        student: ``(B, ...)`` student representation. teachers: M tensors ``(B, ...)``.
        anchors / first / second: ``(T,)`` sample indices. margin: >= 0.
    """
    student_rows = F.normalize(student.flatten(1), dim=1)
    teacher_rows = [F.normalize(teacher.flatten(1).to(student_rows.dtype), dim=1) for teacher in teachers]
    to_first = torch.stack([squared_distances(t, anchors, first) for t in teacher_rows]).mean(dim=0)
    to_second = torch.stack([squared_distances(t, anchors, second) for t in teacher_rows]).mean(dim=0)
    closer = to_first <= to_second
    positive, negative = torch.where(closer, first, second), torch.where(closer, second, first)
    gap = squared_distances(student_rows, anchors, positive) - squared_distances(student_rows, anchors, negative)
    return F.relu(gap + margin).mean()


def triplets(batch: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each sample an anchor with two others from a random permutation; degenerate triplets dropped."""
    anchors = torch.arange(batch, device=device)
    first = torch.randperm(batch, device=device)
    second = first.roll(1)
    keep = (anchors != first) & (anchors != second) & (first != second)
    return anchors[keep], first[keep], second[keep]


class RelativeSimilarity(Term):
    """β · L_rel of You et al. 2017."""

    def __init__(self, teachers: int, student: str | None, teacher_features: list[str | None],
                 margin: float, weight: float) -> None:
        super().__init__("relative", weight)
        self.student_path, self.margin = student, margin
        self.teacher_paths = [member_path(m, path) for m, path in enumerate(teacher_features)]
        self.student_taps = () if student in (None, "logits") else (student,)
        self.teacher_taps = tuple(self.teacher_paths)

    def loss(self, context: Context) -> torch.Tensor:
        teacher: Outputs = context.require_teacher(self.name)
        student = context.student.get(self.student_path)
        if student.shape[0] < 3:
            return student.sum() * 0.0  # no triplet in a batch of fewer than 3 samples
        anchors, first, second = triplets(student.shape[0], student.device)
        teachers = [teacher.features[path] for path in self.teacher_paths]
        return relative_similarity_loss(student, teachers, anchors, first, second, self.margin)


@register("relative-similarity", "You et al. 2017, Learning from Multiple Teacher Networks (KDD)")
def relative_similarity(
    teachers: int,
    student: str | None = None,
    teacher_features: list[str | None] | None = None,
    temperature: Annotated[float, Field(gt=0)] = 4.0,
    alpha: Annotated[float, Field(ge=0, le=1)] = 0.9,
    beta: Annotated[float, Field(ge=0)] = 1.0,
    margin: Annotated[float, Field(ge=0)] = 0.1,
) -> Objective:
    """Averaged soft targets plus the relative-similarity triplet loss on ``student``'s representation."""
    count = check_teachers(teachers, "relative-similarity")
    paths = list(teacher_features) if teacher_features is not None else [None] * count
    if len(paths) != count:
        raise MentorError(f"The 'teacher_features' parameter of relative-similarity must list {count} paths (one "
                          f"per teacher; null for its logits). Got {len(paths)}: {paths!r}")
    return Objective(CE(weight=1.0 - alpha), MultiTeacherKL(create("uniform", count), temperature, "average", alpha),
                     RelativeSimilarity(count, student, paths, margin, beta))
