"""Loss terms of the generalized objective (survey §3.2): L = L_CE + L_KL(τ) + Σ L_D.

A term picks its inputs (logits or a tapped feature, by module path) from the student's and the
teacher's :class:`~mentor.batch.Outputs`, computes an unweighted loss, and carries a weight that may
follow a schedule over training. Terms are ``nn.Module`` s so that any trainable part (an adapter)
is stepped together with the student.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mentor.batch import Batch, Outputs
from mentor.errors import MentorError
from mentor.losses import functional
from mentor.losses.adapters import build_adapter


@dataclass
class Context:
    """Everything a term may read in one step.

    Attributes:
        batch: the mini-batch.
        student: student outputs (logits and the tapped features it asked for).
        teacher: teacher outputs, or ``None`` where there is no teacher.
        epoch: training progress in epochs (0.0 at the start; fractional inside an epoch).
        epochs: the total number of epochs of the stage.
        student_model: the model being trained (for methods that need extra passes).
        teacher_model: the teacher, or ``None``.
    """

    batch: Batch
    student: Outputs
    teacher: Outputs | None
    epoch: float = 0.0
    epochs: int = 1
    student_model: nn.Module | None = None
    teacher_model: nn.Module | None = None

    def require_teacher(self, term: str) -> Outputs:
        if self.teacher is None:
            raise MentorError(f"loss term {term!r} needs a teacher, but this scheme has none")
        return self.teacher


@dataclass(frozen=True)
class Schedule:
    """A weight multiplier over training: linear warm-up from 0, then an optional linear ramp-down.

    Attributes:
        warmup: epochs over which the weight rises linearly from 0 to its full value.
        rampdown_from: epoch at which a linear decrease to 0 starts (``None``: never).
        rampdown_to: epoch at which the weight reaches 0 (defaults to the end of training).
    """

    warmup: float = 0.0
    rampdown_from: float | None = None
    rampdown_to: float | None = None

    def __call__(self, epoch: float, epochs: int) -> float:
        factor = min(1.0, epoch / self.warmup) if self.warmup > 0 else 1.0
        if self.rampdown_from is not None and epoch >= self.rampdown_from:
            end = self.rampdown_to if self.rampdown_to is not None else float(epochs)
            span = max(end - self.rampdown_from, 1e-12)
            factor *= max(0.0, 1.0 - (epoch - self.rampdown_from) / span)
        return factor


def _check_weight(weight: float, term: str) -> float:
    if not isinstance(weight, (int, float)) or weight < 0:
        raise MentorError(f"The 'weight' parameter of {term} must be a float >= 0. Got {weight!r} instead.")
    return float(weight)


class Term(nn.Module):
    """Base class: a named, weighted loss. Subclasses implement :meth:`loss`.

    Attributes:
        student_taps / teacher_taps: module paths whose outputs the term reads (``"path:input"`` for a
            module's input); the scheme records them during the forward passes.
        needs_teacher: whether the term reads teacher outputs.
    """

    needs_teacher: bool = True

    def __init__(self, name: str, weight: float = 1.0, schedule: Schedule | None = None) -> None:
        super().__init__()
        self.name = name
        self.weight = _check_weight(weight, name)
        self.schedule = schedule
        self.student_taps: tuple[str, ...] = ()
        self.teacher_taps: tuple[str, ...] = ()

    def bind(self, student: Outputs, teacher: Outputs | None) -> None:
        """Called once with sample outputs before training, to check shapes and build adapters."""

    def weight_at(self, epoch: float, epochs: int) -> float:
        return self.weight * (self.schedule(epoch, epochs) if self.schedule else 1.0)

    def loss(self, context: Context) -> torch.Tensor:
        """The unweighted loss, a scalar tensor."""
        raise NotImplementedError


class CE(Term):
    """Cross-entropy of the student's logits with the ground-truth labels: L_CE(y_true, P_S)."""

    needs_teacher = False

    def __init__(self, weight: float = 1.0, schedule: Schedule | None = None, label_smoothing: float = 0.0) -> None:
        super().__init__("ce", weight, schedule)
        if not 0.0 <= label_smoothing < 1.0:
            raise MentorError(f"The 'label_smoothing' parameter of ce must be in [0, 1). Got {label_smoothing!r}.")
        self.label_smoothing = label_smoothing

    def loss(self, context: Context) -> torch.Tensor:
        return F.cross_entropy(context.student.logits, context.batch.targets, label_smoothing=self.label_smoothing)


MAX_TEMPERATURE = 1e6  # τ² multiplies the loss: beyond this it overflows long before it means anything


def check_temperature(temperature: float, owner: str) -> float:
    """Validate 0 < τ <= 1e6 with the library's error wording."""
    if not isinstance(temperature, (int, float)) or not 0 < temperature <= MAX_TEMPERATURE:
        raise MentorError(f"The 'temperature' parameter of {owner} must be a float > 0 and <= {MAX_TEMPERATURE:g}. "
                          f"Got {temperature!r} instead.")
    return float(temperature)


class KL(Term):
    """Soft-target term τ² · KL(P_T^τ || P_S^τ) on logits (Hinton et al. 2015)."""

    def __init__(self, temperature: float = 4.0, weight: float = 1.0, schedule: Schedule | None = None) -> None:
        super().__init__("kl", weight, schedule)
        self.temperature = check_temperature(temperature, "kl")

    def loss(self, context: Context) -> torch.Tensor:
        teacher = context.require_teacher(self.name)
        return functional.kl_with_temperature(context.student.logits, teacher.logits, self.temperature)


class _Paired(Term):
    """A term comparing a student tensor with a teacher tensor through an optional adapter."""

    def __init__(
        self,
        name: str,
        student: str | None,
        teacher: str | None,
        adapter: str | None,
        weight: float,
        schedule: Schedule | None,
    ) -> None:
        super().__init__(name, weight, schedule)
        self.student_path, self.teacher_path, self.adapter_name = student, teacher, adapter
        self.student_taps = () if student in (None, "logits") else (student,)
        self.teacher_taps = () if teacher in (None, "logits") else (teacher,)
        self.adapter: nn.Module = nn.Identity()

    def bind(self, student: Outputs, teacher: Outputs | None) -> None:
        if teacher is None:
            raise MentorError(f"loss term {self.name!r} needs a teacher, but this scheme has none")
        left, right = student.get(self.student_path), teacher.get(self.teacher_path)
        student_path, teacher_path = self.student_path or "logits", self.teacher_path or "logits"
        where = f"term {self.name!r} (student {student_path} vs teacher {teacher_path})"
        self.adapter = build_adapter(self.adapter_name, left.shape[1:], right.shape[1:], where)

    def pair(self, context: Context) -> tuple[torch.Tensor, torch.Tensor]:
        teacher = context.require_teacher(self.name)
        return self.adapter(context.student.get(self.student_path)), teacher.get(self.teacher_path)


class Distance(_Paired):
    """‖d_l − d_r‖_N^P between a (adapted) student tensor and a teacher tensor (survey eq. 2).

    Args:
        student / teacher: module paths of the tensors to compare (``None``: the logits).
        norm: N >= 1. power: P > 0. adapter: ``None``, ``linear``, ``conv1x1`` or ``conv3x3``.
        reduction: see :func:`mentor.losses.functional.lp_distance`.
    """

    def __init__(
        self,
        student: str | None = None,
        teacher: str | None = None,
        norm: float = 2.0,
        power: float = 2.0,
        adapter: str | None = None,
        weight: float = 1.0,
        schedule: Schedule | None = None,
        reduction: functional.Reduction = "mean",
        name: str = "distance",
    ) -> None:
        super().__init__(name, student, teacher, adapter, weight, schedule)
        if not isinstance(norm, (int, float)) or norm < 1:
            raise MentorError(f"The 'norm' parameter (N) of {name} must be a number >= 1. Got {norm!r} instead.")
        if not isinstance(power, (int, float)) or power <= 0:
            raise MentorError(f"The 'power' parameter (P) of {name} must be a number > 0. Got {power!r} instead.")
        self.norm, self.power, self.reduction = float(norm), float(power), reduction

    def loss(self, context: Context) -> torch.Tensor:
        left, right = self.pair(context)
        return functional.lp_distance(left, right, self.norm, self.power, self.reduction)


class Cosine(_Paired):
    """Cosine distance 1 − cos(d_l, d_r) between a (adapted) student tensor and a teacher tensor."""

    def __init__(
        self,
        student: str | None = None,
        teacher: str | None = None,
        adapter: str | None = None,
        weight: float = 1.0,
        schedule: Schedule | None = None,
        name: str = "cosine",
    ) -> None:
        super().__init__(name, student, teacher, adapter, weight, schedule)

    def loss(self, context: Context) -> torch.Tensor:
        left, right = self.pair(context)
        return functional.cosine_distance(left, right)
