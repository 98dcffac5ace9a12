"""Adaptive instance-level weighting with multi-level hints: Liu, Zhang & Wang (2020), "Adaptive Multi-Teacher
Multi-level Knowledge Distillation" (AMTML-KD), Neurocomputing 415, arXiv:2103.04062.

High level (§3.2): each teacher ``m`` has a learned latent vector v_m; the importance of teacher m for sample b
comes from the student's representation f_b of that sample:

    α_{b,m} = softmax_m( v_m · f_b ),   target_b = Σ_m α_{b,m} softmax(z_{b,m} / τ)

f ``(B, F)`` is the student's tensor at ``feature`` (its penultimate layer in the paper; a feature map
``(B, C, H, W)`` is average-pooled to ``(B, C)``; ``None`` takes the student's logits, so the weighting works
with any student). V ``(M, F)`` starts at zero, so every teacher weighs 1/M until the weights have learned
otherwise (the paper does not state an initialisation). V is trained jointly with the student, by the
distillation loss α enters, as in the paper, with the L2 penalty of the authors' released code,

    L_reg = λ ‖V‖²,   λ = ``regularization`` = 0.1

(their latent vectors θ_m and projection W, α_{b,m} = softmax_m((f_b ⊙ θ_m)·W), carry 0.1 (‖θ‖² + ‖W‖²); V
stands for θ_m ⊙ Wᵀ). Two choices of ours keep the weights from collapsing onto one teacher: f enters α
detached, so the student's body learns from the targets but cannot move its own features to choose its
targets (with f attached, a student distilled from three Fashion-MNIST teachers scaled its features until
α_b = (0, 0, 1) for every sample, the teacher that had never seen classes 7-9, and reached 60% accuracy); and
the loss reaches V through the cross-entropy part of the KL (see :mod:`mentor.knowledge.multi_teacher`).

Intermediate level (§3.3, the multi-group hint strategy): at each hint level l the student's feature
``(B, C, ...)`` is split along its channels into M groups; group m is mapped by its own regressor r_{l,m}
(1x1 convolution for feature maps, linear otherwise) onto teacher m's hint at that level:

    L_hint = Σ_l (1/M) Σ_m mean( (r_{l,m}(G_{l,m}(F_S^l)) − F_{T_m}^l)² )

Each hint is given as ``{student: path, teachers: [path of teacher 0, path of teacher 1, ...]}`` (paths inside
each teacher, which may differ between heterogeneous teachers). ``hint_weight`` 1.0: the element-mean squared
error of standardised features is of the order of the cross-entropy; choose it on validation.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from mentor.batch import Outputs
from mentor.errors import MentorError
from mentor.losses.adapters import build_adapter
from mentor.losses.terms import Context, Term
from mentor.teachers.weighting.base import WEIGHTINGS, Weighting, member_path


class Hint(BaseModel):
    """One hint level: a student layer and the matching layer of every teacher."""

    model_config = ConfigDict(extra="forbid")
    student: str
    teachers: list[str]


def pooled(feature: torch.Tensor) -> torch.Tensor:
    """``(B, F)``: a feature map averaged over its spatial axes, any other tensor flattened."""
    return feature.mean(dim=(2, 3)) if feature.ndim == 4 else feature.flatten(1)


def instance_weights(latent: torch.Tensor, student_feature: torch.Tensor) -> torch.Tensor:
    """α = softmax_m(V f_b): latent ``(M, F)``, student feature ``(B, F)`` -> ``(B, M)``."""
    return torch.softmax(student_feature @ latent.t(), dim=1)


class MultiGroupHint(Term):
    """L_hint of AMTML-KD over the given levels (adapters built at :meth:`bind`)."""

    def __init__(self, teachers: int, hints: list[Hint], weight: float) -> None:
        super().__init__("hints", weight)
        self.hints, self.teachers = hints, teachers
        self.student_taps = tuple(dict.fromkeys(hint.student for hint in hints))
        self.teacher_taps = tuple(member_path(m, path) for hint in hints for m, path in enumerate(hint.teachers))
        self.regressors = nn.ModuleList()

    def bind(self, student: Outputs, teacher: Outputs | None) -> None:
        if teacher is None:
            raise MentorError("loss term 'hints' needs a teacher, but this scheme has none")
        self.regressors = nn.ModuleList()
        for level, hint in enumerate(self.hints):
            groups = self.groups(student.get(hint.student), level)
            self.regressors.append(nn.ModuleList(
                build_adapter("conv1x1" if group.ndim == 4 and target.ndim == 4 else "linear", group.shape[1:],
                              target.shape[1:], f"weighting 'adaptive' hint {level} (teacher {m})")
                for m, (group, target) in enumerate(zip(groups, self.targets(teacher, level), strict=True))))

    def groups(self, feature: torch.Tensor, level: int) -> tuple[torch.Tensor, ...]:
        if feature.ndim < 2 or feature.shape[1] < self.teachers:
            raise MentorError(f"weighting 'adaptive' hints[{level}].student: the feature has {tuple(feature.shape[1:])}"
                              f" but its {self.teachers} channel groups need at least {self.teachers} channels; "
                              "tap a wider layer")
        return torch.tensor_split(feature, self.teachers, dim=1)

    def targets(self, teacher: Outputs, level: int) -> list[torch.Tensor]:
        return [teacher.get(member_path(m, path)) for m, path in enumerate(self.hints[level].teachers)]

    def loss(self, context: Context) -> torch.Tensor:
        teacher = context.require_teacher(self.name)
        total = context.student.logits.new_zeros(())
        for level, hint in enumerate(self.hints):
            groups = self.groups(context.student.get(hint.student), level)
            pairs = zip(self.regressors[level], groups, self.targets(teacher, level), strict=True)
            total = total + sum(F.mse_loss(regressor(group), target) for regressor, group, target in pairs)
        return total / self.teachers


class Adaptive(Weighting):
    """α_{b,m} = softmax_m(v_m · f_b) with learned teacher latent vectors (V built at :meth:`bind`)."""

    def __init__(self, teachers: int, feature: str | None, hints: list[Hint], hint_weight: float,
                 regularization: float) -> None:
        super().__init__(teachers, "weighting 'adaptive'")
        for level, hint in enumerate(hints):
            if len(hint.teachers) != teachers:
                raise MentorError(f"weighting 'adaptive' hints[{level}].teachers must list {teachers} paths (one "
                                  f"per teacher). Got {len(hint.teachers)}: {hint.teachers!r}")
        self.feature = feature
        self.student_taps = () if feature in (None, "logits") else (feature,)
        self.latent = nn.Parameter(torch.zeros(teachers, 0))
        self.hint = MultiGroupHint(teachers, hints, hint_weight) if hints else None
        self.penalty = LatentPenalty(self, regularization) if regularization > 0 else None

    def bind(self, student: Outputs, teacher: Outputs) -> None:
        width = pooled(student.get(self.feature)).shape[1]
        if self.latent.shape[1] != width:
            self.latent = nn.Parameter(torch.zeros(self.teachers, width, device=student.logits.device))

    def forward(self, context: Context, logits: torch.Tensor, temperature: float) -> torch.Tensor:  # type: ignore[override]
        if self.latent.shape[1] == 0:
            raise MentorError("weighting 'adaptive' was never bound: bind the objective on a sample batch first")
        feature = pooled(context.student.get(self.feature)).detach().to(self.latent.dtype)
        return instance_weights(self.latent, feature)

    def terms(self) -> list[Term]:
        return [term for term in (self.hint, self.penalty) if term is not None]


class LatentPenalty(Term):
    """L_reg = ‖V‖² of the weighting's latent vectors (weighted by ``regularization``)."""

    needs_teacher = False

    def __init__(self, weighting: Adaptive, regularization: float) -> None:
        super().__init__("latent-l2", regularization)
        self.weighting = [weighting]  # a list: the weighting is registered under the KL term already

    def loss(self, context: Context) -> torch.Tensor:
        return self.weighting[0].latent.pow(2).sum()


@WEIGHTINGS.register("adaptive", "AMTML-KD (Liu et al. 2020): learned per-sample weights + multi-group hints")
def adaptive(teachers: int, feature: str | None = None, hints: list[Hint] | None = None,
             hint_weight: Annotated[float, Field(ge=0)] = 1.0,
             regularization: Annotated[float, Field(ge=0)] = 0.1) -> Adaptive:
    """Instance-level weights from the student's ``feature``; ``hints`` add the intermediate level;
    ``regularization`` is λ of the L2 penalty on the latent vectors."""
    return Adaptive(teachers, feature, list(hints or []), hint_weight, regularization)
