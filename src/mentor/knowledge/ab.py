"""Activation-boundary (AB) distillation: the student's neurons learn where the teacher's switch on.

Heo, Lee, Yun & Choi (2019), "Knowledge Transfer via Distillation of Activation Boundaries Formed by
Hidden Neurons", AAAI, arXiv:1811.03233.

On pre-activation tensors (the input of a ReLU: tap ``"path:input"``), teacher T ``(B, C_t, H, W)`` and
student S ``(B, C_s, H', W')`` mapped by a connector r (1×1 convolution + BatchNorm, resized to H×W):

    L_AB = ‖ ρ(T) ⊙ σ(μ1 − r(S)) + (1 − ρ(T)) ⊙ σ(μ1 + r(S)) ‖²₂

with ρ(x) = 1[x > 0] the teacher's activation indicator, σ = ReLU and μ the margin: a student neuron is
pushed above +μ where the teacher's is active and below −μ where it is not (a hinge on the activation
boundary). Squared L2 per sample, batch mean, over n layer pairs listed from shallow to deep:

    L = w · Σ_{j=1..n} 2^{j−n} L_AB,j          (the deepest pair weighs 1, each shallower one half the next)

As in the paper the transfer is an initialization: stage ``init`` minimizes L only (student and
connectors), then stage ``train`` trains on the task with cross-entropy, or with KD when ``alpha`` is given.

Scale, as in the authors' released code (bhheo/AB_distillation, reused by RepDistiller): the per-sample
sums are halved from layer to layer towards the input and multiplied by w = 3/1000 (their CIFAR script;
``loss / 1000 * 3``), for SGD at the task's learning rate. With w = 1 the init stage's gradient would be
~10⁴ times a cross-entropy gradient on a Fashion-MNIST CNN pair.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from mentor.batch import Outputs
from mentor.errors import MentorError
from mentor.knowledge.base import Stage, check_pairs, register
from mentor.knowledge.kd import kd
from mentor.losses import CE, Context, Objective, Term
from mentor.losses.adapters import build_adapter


def activation_boundary_loss(student: torch.Tensor, teacher: torch.Tensor, margin: float) -> torch.Tensor:
    """‖ρ(T)⊙σ(μ − S) + (1 − ρ(T))⊙σ(μ + S)‖²₂ per sample, batch mean; S and T ``(B, ...)`` of one shape."""
    active = (teacher > 0).to(student.dtype)
    hinge = active * F.relu(margin - student) + (1.0 - active) * F.relu(margin + student)
    return hinge.pow(2).flatten(1).sum(dim=1).mean()


def _connector(student: torch.Size, teacher: torch.Size, where: str) -> nn.Module:
    """1×1 conv + BN for feature maps (resized to the teacher's H×W); linear + BN for vectors."""
    if len(student) == 3 and len(teacher) == 3:
        return build_adapter("conv1x1", student, teacher, where)
    if len(student) == 1 and len(teacher) == 1:
        return nn.Sequential(nn.Linear(student[0], teacher[0], bias=False), nn.BatchNorm1d(teacher[0]))
    raise MentorError(
        f"{where}: cannot connect student shape {tuple(student)} to teacher shape {tuple(teacher)}; tap "
        "pre-activations of the same kind on both sides (feature maps (C, H, W) or vectors (D,))"
    )


class ActivationBoundary(Term):
    """Σ_j 2^{j−n} L_AB(r_j(S_j), T_j) over n pairs of pre-activation taps (shallow to deep), one connector each."""

    def __init__(self, student: list[str], teacher: list[str], margin: float, weight: float) -> None:
        super().__init__("ab", weight)
        self.student_paths, self.teacher_paths, self.margin = list(student), list(teacher), margin
        self.student_taps, self.teacher_taps = tuple(dict.fromkeys(student)), tuple(dict.fromkeys(teacher))
        self.connectors = nn.ModuleList()

    def bind(self, student: Outputs, teacher: Outputs | None) -> None:
        if teacher is None:
            raise MentorError("loss term 'ab' needs a teacher, but this scheme has none")
        connectors = []
        for student_path, teacher_path in zip(self.student_paths, self.teacher_paths, strict=True):
            source, target = student.get(student_path), teacher.get(teacher_path)
            where = f"ab (student {student_path} vs teacher {teacher_path})"
            connectors.append(_connector(source.shape[1:], target.shape[1:], where).to(source.device))
        self.connectors = nn.ModuleList(connectors)

    def loss(self, context: Context) -> torch.Tensor:
        teacher = context.require_teacher(self.name)
        total = context.student.logits.new_zeros(())
        pairs = zip(self.connectors, self.student_paths, self.teacher_paths, strict=True)
        for depth, (connector, student_path, teacher_path) in enumerate(reversed(list(pairs))):
            connected = connector(context.student.get(student_path))
            total = total + activation_boundary_loss(connected, teacher.get(teacher_path), self.margin) / 2**depth
        return total


@register("ab", "Heo et al. 2019, Knowledge Transfer via Distillation of Activation Boundaries ... (AAAI)")
def ab(
    student: Annotated[list[str], Field(min_length=1)],
    teacher: Annotated[list[str], Field(min_length=1)],
    margin: Annotated[float, Field(ge=0)] = 1.0,
    init_epochs: Annotated[int, Field(ge=1)] = 5,
    weight: Annotated[float, Field(gt=0)] = 3e-3,
    alpha: Annotated[float, Field(ge=0, le=1)] | None = None,
    temperature: Annotated[float, Field(gt=0)] = 4.0,
) -> list[Stage]:
    """Stage ``init`` (L_AB only, ``init_epochs`` epochs), then stage ``train`` (CE, or KD if ``alpha`` is set).

    Args:
        student / teacher: pre-activation taps matched pair by pair, from shallow to deep, e.g.
            ``["stage2.relu1:input", "stage3.relu1:input"]``.
        margin: μ. weight: w, the scale of the layer-weighted sum. alpha / temperature: KD in the second stage.
    """
    check_pairs("ab", student, teacher, what="pre-activation taps")
    train = Objective(CE()) if alpha is None else kd(temperature, alpha)
    return [Stage("init", Objective(ActivationBoundary(student, teacher, margin, weight)), init_epochs),
            Stage("train", train)]
