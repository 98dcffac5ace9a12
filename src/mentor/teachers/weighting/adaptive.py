"""Adaptive instance-level weighting with multi-level hints: Liu, Zhang & Wang (2020), "Adaptive Multi-Teacher
Multi-level Knowledge Distillation" (AMTML-KD), Neurocomputing 415, arXiv:2103.04062.

High level (§3.2): each teacher ``m`` has a learned latent vector v_m; the importance of teacher m for sample b
comes from the student's representation f_b of that sample:

    α_{b,m} = softmax_m( v_m · f_b ),   target_b = Σ_m α_{b,m} softmax(z_{b,m} / τ)

f ``(B, F)`` is the student's tensor at ``feature`` (its penultimate layer in the paper; a feature map
``(B, C, H, W)`` is average-pooled to ``(B, C)``; ``None`` takes the student's logits, so the weighting works
with any student). V ``(M, F)`` starts at zero, so every teacher weighs 1/M until the weights have learned
otherwise (the paper does not state an initialisation), and carries the L2 penalty of the authors' released
code, L_reg = λ ‖V‖² with λ = ``regularization`` = 0.1 (their latent vectors θ_m and projection W,
α_{b,m} = softmax_m((f_b ⊙ θ_m)·W), carry 0.1 (‖θ‖² + ‖W‖²); V stands for θ_m ⊙ Wᵀ). f enters α detached.

How V learns (``learn``):

* ``labels`` (default): V makes the weighted teachers predict the label, L_w = mean_b CE(y_b, Σ_m α_{b,m}
  softmax(z_{b,m})), and the distillation loss sees α as constants. A teacher gets weight where it is right:
  an expert is trusted on its own classes and not elsewhere.
* ``distillation`` (the paper: α is trained by the distillation loss it enters). Minimising the student's
  loss over the weights rewards the teacher the student already matches, whatever the label: on three
  heterogeneous Fashion-MNIST teachers it put α_b ≈ (0, 0, 1) on every sample, the expert that had never seen
  classes 7-9 (likely the most confident one: the lowest entropy gives the lowest cross-entropy to any
  student), and the student reached 60%, with f attached (the student scaled its own features to get there)
  and, at τ = 4, still with f detached and the L2 penalty. Through the whole KL instead of its
  cross-entropy part the weights went the other way, to the least certain teacher.

Intermediate level (§3.3, the multi-group hint strategy): at each hint level l the student's feature
``(B, C, ...)`` is split along its channels into M groups; group m is mapped by its own regressor r_{l,m}
(1x1 convolution for feature maps, linear otherwise) onto teacher m's hint at that level:

    L_hint = Σ_l (1/M) Σ_m mean( (r_{l,m}(G_{l,m}(F_S^l)) − F_{T_m}^l)² )

Each hint is given as ``{student: path, teachers: [path of teacher 0, path of teacher 1, ...]}`` (paths inside
each teacher, which may differ between heterogeneous teachers). ``hint_weight`` 1.0: the element-mean squared
error of standardised features is of the order of the cross-entropy; choose it on validation.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from mentor.batch import Outputs
from mentor.errors import MentorError
from mentor.losses.adapters import build_adapter
from mentor.losses.terms import Context, Term
from mentor.teachers.weighting.base import WEIGHTINGS, Weighting, member_logits, member_path

Learn = Literal["labels", "distillation"]


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
                 regularization: float, learn: Learn) -> None:
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
        self.learn = learn
        self.fit = LabelFit(self) if learn == "labels" else None

    def bind(self, student: Outputs, teacher: Outputs) -> None:
        width = pooled(student.get(self.feature)).shape[1]
        if self.latent.shape[1] != width:
            self.latent = nn.Parameter(torch.zeros(self.teachers, width, device=student.logits.device))

    def forward(self, context: Context, logits: torch.Tensor, temperature: float) -> torch.Tensor:  # type: ignore[override]
        weights = self.weights(context)
        return weights.detach() if self.learn == "labels" else weights

    def weights(self, context: Context) -> torch.Tensor:
        """α ``(B, M)``, with its gradient to V."""
        if self.latent.shape[1] == 0:
            raise MentorError("weighting 'adaptive' was never bound: bind the objective on a sample batch first")
        feature = pooled(context.student.get(self.feature)).detach().to(self.latent.dtype)
        return instance_weights(self.latent, feature)

    def terms(self) -> list[Term]:
        return [term for term in (self.hint, self.penalty, self.fit) if term is not None]


class LabelFit(Term):
    """L_w = mean_b CE(y_b, Σ_m α_{b,m} softmax(z_{b,m})): the weighted teachers against the label (trains V only)."""

    def __init__(self, weighting: Adaptive) -> None:
        super().__init__("weights", 1.0)
        self.weighting = [weighting]  # a list: the weighting is registered under the KL term already

    def loss(self, context: Context) -> torch.Tensor:
        weighting = self.weighting[0]
        teachers = member_logits(context.require_teacher(self.name), weighting.teachers)
        mixture = (weighting.weights(context).unsqueeze(2) * torch.softmax(teachers.detach().float(), dim=2)).sum(1)
        picked = mixture.gather(1, context.batch.targets.view(-1, 1)).squeeze(1)
        return -torch.log(picked.clamp_min(1e-12)).mean()


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
             regularization: Annotated[float, Field(ge=0)] = 0.1, learn: Learn = "labels") -> Adaptive:
    """Instance-level weights from the student's ``feature``; ``hints`` add the intermediate level;
    ``regularization`` is λ of the L2 penalty on the latent vectors; ``learn`` what trains them."""
    return Adaptive(teachers, feature, list(hints or []), hint_weight, regularization, learn)
