"""SSKD: knowledge distillation meets self-supervision (contrastive prediction on rotated copies).

Xu, Liu, Li & Loy (2020), "Knowledge Distillation Meets Self-Supervision", ECCV, arXiv:2006.07114.

Each batch x ``(B, C, H, W)`` gets transformed copies x̃ = rotations by 90°, 180°, 270° ``(3B, C, H, W)``;
row j of x̃ is a rotation of sample j mod B. A self-supervision (SS) head φ, a 2-layer MLP on the
penultimate embedding (tap ``flatten``, ``(B, D)``), gives the similarity matrix of cosine
similarities between transformed and normal samples, A_j,i = cos(φ(x̃_j), φ(x_i)), ``(3B, B)``.

Stage 1 (``head``): teacher frozen, only its SS head φ_T learns to pick each copy's original:

    L_head = −(1/3B) Σ_j log softmax(A^T_j / τ_h)_(j mod B)

Stage 2 (``distill``): φ_T frozen too; the student and its own SS head φ_S minimize

    L = λ_CE · CE(y, z_S) + λ_KD · τ² KL(p_T^τ || p_S^τ)                      on normal samples, z: (B, K)
      + λ_T · τ_T² · mean_{j ∈ keep_T} KL(p_T^τT(x̃_j) || p_S^τT(x̃_j))          on transformed samples
      + λ_ss · τ_ss² · mean_{j ∈ keep_ss} KL(softmax(A^T_j/τ_ss) || softmax(A^S_j/τ_ss))

Noise filtering: the rank of the right answer among the teacher's scores (its class for L_T, the
original sample for L_ss) is 0 when the teacher is right; all right rows are kept and, of the wrong
ones, the fraction ``keep_wrong_*`` with the best ranks (the paper's top-k%).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from mentor.batch import Outputs
from mentor.errors import MentorError
from mentor.knowledge.base import Stage, register
from mentor.losses import CE, KL, Context, Objective, Term
from mentor.losses.functional import kl_with_temperature
from mentor.taps import run_with_taps
from mentor.teachers.frozen import FrozenTeacher


def rotations(images: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(3B, C, H, W)``: the batch rotated by 90°, 180° and 270°, in that order."""
    if images.ndim != 4:
        raise MentorError(f"sskd rotates image batches (B, C, H, W); got inputs of shape {tuple(images.shape)}")
    return torch.cat([torch.rot90(images, turns, dims=(2, 3)) for turns in (1, 2, 3)])


def similarity_matrix(transformed: torch.Tensor, normal: torch.Tensor) -> torch.Tensor:
    """Cosine similarities ``(3B, B)`` between embeddings ``(3B, D)`` and ``(B, D)``."""
    return F.normalize(transformed, dim=1, eps=1e-8) @ F.normalize(normal, dim=1, eps=1e-8).T


def true_rank(scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """How many scores ``(N, K)`` of each row exceed the score of its ``target`` ``(N,)``; 0 = right."""
    return (scores > scores.gather(1, target[:, None])).sum(dim=1)


def keep_mask(rank: torch.Tensor, keep_wrong: float) -> torch.Tensor:
    """Keep every right row (rank 0) and the best-ranked fraction ``keep_wrong`` of the wrong ones."""
    wrong = torch.nonzero(rank > 0).flatten()
    order = torch.sort(rank[wrong], stable=True).indices
    mask = rank == 0
    mask[wrong[order[: int(wrong.numel() * keep_wrong)]]] = True
    return mask


class ProjectionHead(nn.Module):
    """The SS head: Linear(D, D) -> ReLU -> Linear(D, D), built once the embedding width D is known."""

    def __init__(self) -> None:
        super().__init__()
        self.mlp: nn.Module | None = None

    def build(self, width: int) -> None:
        if self.mlp is None:
            self.mlp = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.mlp(embedding.flatten(1))


class TransformedPass:
    """Student and teacher outputs on the rotated batch, computed once per step and shared by terms."""

    def __init__(self, student_tap: str, teacher_tap: str) -> None:
        self.student_tap, self.teacher_tap = student_tap, teacher_tap
        self._cache: dict[str, tuple[Context, Outputs]] = {}

    def teacher(self, context: Context) -> Outputs:
        def run() -> Outputs:
            model, inputs = context.teacher_model, rotations(context.batch.inputs)
            if model is None:
                raise MentorError("sskd needs the teacher model for its rotated copies, but this scheme has none")
            if isinstance(model, FrozenTeacher):
                return model.outputs(inputs, (self.teacher_tap,))
            with torch.no_grad():
                return Outputs(*run_with_taps(model, inputs, (self.teacher_tap,), role="teacher"))

        return self._once("teacher", context, run)

    def student(self, context: Context) -> Outputs:
        def run() -> Outputs:
            if context.student_model is None:
                raise MentorError("sskd needs the student model for its rotated copies, but this scheme has none")
            inputs = rotations(context.batch.inputs)
            return Outputs(*run_with_taps(context.student_model, inputs, (self.student_tap,), role="student"))

        return self._once("student", context, run)

    def _once(self, side: str, context: Context, run: Callable[[], Outputs]) -> Outputs:
        cached = self._cache.get(side)
        if cached is None or cached[0] is not context:
            self._cache[side] = cached = (context, run())
        return cached[1]

    def __deepcopy__(self, memo: dict) -> TransformedPass:
        return TransformedPass(self.student_tap, self.teacher_tap)  # the cache holds autograd graphs: not copied


def _require(teacher: Outputs | None) -> Outputs:
    if teacher is None:
        raise MentorError("sskd needs a teacher, but this scheme has none")
    return teacher


def _width(outputs: Outputs, tap: str) -> int:
    return outputs.get(tap).flatten(1).shape[1]


def _positives(batch_size: int, device: torch.device) -> torch.Tensor:
    return torch.arange(batch_size, device=device).repeat(3)


def _kept_kl(student: torch.Tensor, teacher: torch.Tensor, temperature: float, mask: torch.Tensor) -> torch.Tensor:
    if not bool(mask.any()):
        return student.sum() * 0.0
    return kl_with_temperature(student[mask], teacher[mask], temperature)


class HeadContrastive(Term):
    """Stage 1: CE of the teacher's similarity rows A^T/τ_h against each copy's original."""

    def __init__(self, head: ProjectionHead, rotated: TransformedPass, temperature: float) -> None:
        super().__init__("ss_head", 1.0)
        self.head, self.rotated, self.temperature = head, rotated, temperature
        self.teacher_taps = (rotated.teacher_tap,)

    def bind(self, student: Outputs, teacher: Outputs | None) -> None:
        self.head.build(_width(_require(teacher), self.rotated.teacher_tap))

    def loss(self, context: Context) -> torch.Tensor:
        normal = context.require_teacher(self.name).get(self.rotated.teacher_tap)
        transformed = self.rotated.teacher(context).get(self.rotated.teacher_tap)
        scores = similarity_matrix(self.head(transformed), self.head(normal)) / self.temperature
        return F.cross_entropy(scores, _positives(normal.shape[0], scores.device))


class TransformedKD(Term):
    """Stage 2, L_T: KD on the rotated copies, keeping right rows and the best-ranked wrong ones."""

    def __init__(self, rotated: TransformedPass, temperature: float, keep_wrong: float, weight: float) -> None:
        super().__init__("transformed", weight)
        self.rotated, self.temperature, self.keep_wrong = rotated, temperature, keep_wrong

    def loss(self, context: Context) -> torch.Tensor:
        student, teacher = self.rotated.student(context).logits, self.rotated.teacher(context).logits
        mask = keep_mask(true_rank(teacher, context.batch.targets.long().repeat(3)), self.keep_wrong)
        return _kept_kl(student, teacher, self.temperature, mask)


class SimilarityKL(Term):
    """Stage 2, L_ss: the student's similarity rows mimic the frozen-head teacher's, noisy rows filtered."""

    def __init__(self, teacher_head: ProjectionHead, rotated: TransformedPass, temperature: float,
                 keep_wrong: float, weight: float) -> None:
        super().__init__("ss", weight)
        self.teacher_head, self.student_head = teacher_head, ProjectionHead()
        self.rotated, self.temperature, self.keep_wrong = rotated, temperature, keep_wrong
        self.student_taps, self.teacher_taps = (rotated.student_tap,), (rotated.teacher_tap,)

    def bind(self, student: Outputs, teacher: Outputs | None) -> None:
        self.student_head.build(_width(student, self.rotated.student_tap))
        self.teacher_head.build(_width(_require(teacher), self.rotated.teacher_tap))

    def loss(self, context: Context) -> torch.Tensor:
        tap_s, tap_t = self.rotated.student_tap, self.rotated.teacher_tap
        student = similarity_matrix(self.student_head(self.rotated.student(context).get(tap_s)),
                                    self.student_head(context.student.get(tap_s)))
        with torch.no_grad():  # the teacher's head was trained in stage 1 and stays fixed
            teacher = similarity_matrix(self.teacher_head(self.rotated.teacher(context).get(tap_t)),
                                        self.teacher_head(context.require_teacher(self.name).get(tap_t)))
        mask = keep_mask(true_rank(teacher, _positives(teacher.shape[1], teacher.device)), self.keep_wrong)
        return _kept_kl(student, teacher, self.temperature, mask)


@register("sskd", "Xu et al. 2020, Knowledge Distillation Meets Self-Supervision (ECCV)")
def sskd(
    head_epochs: Annotated[int, Field(ge=1)] = 5,
    head_temperature: Annotated[float, Field(gt=0)] = 1.0,
    ce_weight: Annotated[float, Field(ge=0)] = 0.1,
    kd_weight: Annotated[float, Field(ge=0)] = 0.9,
    transformed_weight: Annotated[float, Field(ge=0)] = 2.7,
    ss_weight: Annotated[float, Field(ge=0)] = 10.0,
    temperature: Annotated[float, Field(gt=0)] = 4.0,
    transformed_temperature: Annotated[float, Field(gt=0)] = 4.0,
    ss_temperature: Annotated[float, Field(gt=0)] = 0.5,
    keep_wrong_transformed: Annotated[float, Field(ge=0, le=1)] = 1.0,
    keep_wrong_ss: Annotated[float, Field(ge=0, le=1)] = 0.75,
    student_embedding: str = "flatten",
    teacher_embedding: str = "flatten",
) -> list[Stage]:
    """Stage ``head`` trains the teacher's SS head, stage ``distill`` the student and its SS head.

    Args:
        head_epochs: length of stage 1; head_temperature: τ_h of its contrastive CE.
        ce_weight / kd_weight / transformed_weight / ss_weight: λ_CE, λ_KD, λ_T, λ_ss.
        temperature / transformed_temperature / ss_temperature: τ, τ_T, τ_ss.
        keep_wrong_transformed / keep_wrong_ss: fraction of wrongly predicted rotated rows kept in L_T / L_ss.
        student_embedding / teacher_embedding: tap paths of the embeddings the SS heads read.

    Weights, temperatures and keep fractions default to the authors' released CIFAR-100 settings
    (xuguodong03/SSKD), with the same batch-mean τ²·KL for L_KD, L_T and L_ss.
    """
    rotated = TransformedPass(student_embedding, teacher_embedding)
    teacher_head = ProjectionHead()
    distill = Objective(
        CE(weight=ce_weight),
        KL(temperature=temperature, weight=kd_weight),
        TransformedKD(rotated, transformed_temperature, keep_wrong_transformed, transformed_weight),
        SimilarityKL(teacher_head, rotated, ss_temperature, keep_wrong_ss, ss_weight),
    )
    head = Objective(HeadContrastive(teacher_head, rotated, head_temperature))
    return [Stage("head", head, head_epochs), Stage("distill", distill)]
