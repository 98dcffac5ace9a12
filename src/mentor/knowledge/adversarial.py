"""Adversarial learning of a student: the student is a generator, a discriminator judges its features.

Wang, Xu, Xu & Tao (2018), "Adversarial Learning of Portable Student Networks", AAAI 32(1),
doi:10.1609/aaai.v32i1.11667.

The features z (logits ``(B, K)`` by default, or a tapped tensor; feature maps ``(B, C, H, W)`` are
average-pooled to ``(B, C)``) of the teacher are "real", those of the student "fake"; a student
feature of another width is first mapped by a trainable linear adapter onto the teacher's width D.
With D: ``(B, D) -> (B, 1)`` a small MLP giving logits and σ the sigmoid:

    L_D = −(1/B) Σ_i [log σ(D(z_T,i)) + log(1 − σ(D(sg(z_S,i))))]      (discriminator; sg = stop-gradient)
    L_G = −(1/B) Σ_i log σ(D̄(z_S,i))                                   (generator: fool D̄)
    L_2 = (1/B) Σ_i ‖z_S,i − z_T,i‖²                                   (feature matching)
    L   = w_CE · CE + w_D · L_D + w_G · L_G + w_2 · L_2                (one backward)

D̄ is the discriminator evaluated with detached parameters (``torch.func.functional_call``), so L_G
moves only the student and its adapter, and L_D, fed a detached student feature, moves only D.

The paper released no code; the default weights (all 1) are not tuned against one. On a Fashion-MNIST CNN
pair with the default logits, L_2 starts at ~80 times CE's gradient (the squared distance of K logits of a
trained teacher) and L_G at ~0.3 times; lower ``distance_weight`` where CE should lead.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn
from torch.func import functional_call

from mentor.batch import Outputs
from mentor.errors import MentorError
from mentor.knowledge.base import register
from mentor.losses import CE, Context, Objective, Term
from mentor.losses.adapters import build_adapter


def pooled(features: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> global average ``(B, C)``; any other ``(B, ...)`` is flattened."""
    return features.mean(dim=(2, 3)) if features.ndim == 4 else features.flatten(1)


class FeatureGame(nn.Module):
    """What the three adversarial terms share: the feature paths, the adapter and the discriminator."""

    def __init__(self, student: str, teacher: str, hidden: int) -> None:
        super().__init__()
        self.student_path, self.teacher_path, self.hidden = student, teacher, hidden
        self.adapter: nn.Module | None = None
        self.discriminator: nn.Module | None = None

    def bind(self, student: Outputs, teacher: Outputs | None) -> None:
        """Build the adapter and discriminator once, from sample shapes."""
        if teacher is None:
            raise MentorError("the adversarial method needs a teacher, but this scheme has none")
        if self.discriminator is not None:
            return
        left, right = pooled(student.get(self.student_path)), pooled(teacher.get(self.teacher_path))
        where = f"adversarial (student {self.student_path} vs teacher {self.teacher_path})"
        self.adapter = build_adapter(None if left.shape[1:] == right.shape[1:] else "linear",
                                     left.shape[1:], right.shape[1:], where)
        width = right.shape[1]
        self.discriminator = nn.Sequential(nn.Linear(width, self.hidden), nn.LeakyReLU(0.2), nn.Linear(self.hidden, 1))

    def features(self, context: Context) -> tuple[torch.Tensor, torch.Tensor]:
        """(adapted student feature, teacher feature), both ``(B, D)``."""
        if self.adapter is None:
            raise MentorError("the adversarial terms were used before bind(); run scheme.setup(batch) first")
        teacher = context.require_teacher("adversarial")
        return self.adapter(pooled(context.student.get(self.student_path))), pooled(teacher.get(self.teacher_path))

    def judge_frozen(self, features: torch.Tensor) -> torch.Tensor:
        """D(features) with detached parameters: gradients reach ``features`` only."""
        frozen = {name: value.detach() for name, value in self.discriminator.named_parameters()}
        return functional_call(self.discriminator, frozen, (features,))


class _GameTerm(Term):
    def __init__(self, name: str, game: FeatureGame, weight: float) -> None:
        super().__init__(name, weight)
        self.game = game
        self.student_taps = () if game.student_path == "logits" else (game.student_path,)
        self.teacher_taps = () if game.teacher_path == "logits" else (game.teacher_path,)

    def bind(self, student: Outputs, teacher: Outputs | None) -> None:
        self.game.bind(student, teacher)


class DiscriminatorLoss(_GameTerm):
    """L_D: BCE of D on teacher features (label 1) and detached student features (label 0)."""

    def loss(self, context: Context) -> torch.Tensor:
        student, teacher = self.game.features(context)
        real, fake = self.game.discriminator(teacher), self.game.discriminator(student.detach())
        return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))


class GeneratorLoss(_GameTerm):
    """L_G: BCE with label 1 of the frozen-parameter discriminator on the student's features."""

    def loss(self, context: Context) -> torch.Tensor:
        student, _ = self.game.features(context)
        judged = self.game.judge_frozen(student)
        return F.binary_cross_entropy_with_logits(judged, torch.ones_like(judged))


class FeatureL2(_GameTerm):
    """L_2: squared Euclidean distance between adapted student and teacher features, batch mean."""

    def loss(self, context: Context) -> torch.Tensor:
        student, teacher = self.game.features(context)
        return (student - teacher).pow(2).sum(dim=1).mean()


@register("adversarial", "Wang et al. 2018, Adversarial Learning of Portable Student Networks (AAAI)")
def adversarial(
    feature: str = "logits",
    teacher_feature: str | None = None,
    hidden: Annotated[int, Field(ge=1)] = 64,
    ce_weight: Annotated[float, Field(ge=0)] = 1.0,
    discriminator_weight: Annotated[float, Field(gt=0)] = 1.0,
    adversarial_weight: Annotated[float, Field(ge=0)] = 1.0,
    distance_weight: Annotated[float, Field(ge=0)] = 1.0,
) -> Objective:
    """CE + discriminator + generator + L2 terms over one shared discriminator.

    Args:
        feature: student tap path of the judged features (``"logits"`` for the logits).
        teacher_feature: teacher tap path (``None``: the same path as ``feature``).
        hidden: width of the discriminator's hidden layer.
        ce_weight / discriminator_weight / adversarial_weight / distance_weight: weights of CE, L_D,
            L_G and L_2.
    """
    game = FeatureGame(feature, teacher_feature or feature, hidden)
    return Objective(
        CE(weight=ce_weight),
        DiscriminatorLoss("discriminator", game, discriminator_weight),
        GeneratorLoss("generator", game, adversarial_weight),
        FeatureL2("l2", game, distance_weight),
    )
