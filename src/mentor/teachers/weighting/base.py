"""The weighting of several teachers (survey §4.2): how much each teacher counts, per sample.

A weighting maps the teachers' logits on a batch to weights ``(B, M)`` (``M`` teachers, each row
non-negative, summing to 1 or, for a sample no teacher is chosen for, to 0). The multi-teacher objective
(:mod:`mentor.knowledge.multi_teacher`) combines the teachers' tempered distributions with them.

The teachers are the members of a :class:`mentor.teachers.Ensemble`: tapping ``members.m`` of the ensemble
gives teacher ``m``'s logits, and ``members.m.<path>`` one of its layers, so every teacher's outputs go
through the one frozen teacher and its output cache.

A weighting with trainable parts (teacher latent vectors, a policy network) is a module of the objective:
its parameters are stepped with the student's. It may add loss terms of its own (:meth:`Weighting.terms`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from mentor.batch import Outputs
from mentor.errors import MentorError
from mentor.losses.terms import Context, Term
from mentor.registry import Registry

WEIGHTINGS: Registry[Callable[..., Weighting]] = Registry("weighting")
"""Weighting factories by name: ``factory(teachers: int, **params) -> Weighting``."""


def member_path(index: int, path: str | None = None) -> str:
    """The ensemble path of teacher ``index``'s logits (``path`` ``None``) or of one of its layers."""
    return f"members.{index}" if path in (None, "logits") else f"members.{index}.{path}"


def member_logits(teacher: Outputs, teachers: int, classes: int | None = None) -> torch.Tensor:
    """The teachers' logits stacked ``(B, M, K)`` from the ensemble's tapped outputs.

    Raises:
        MentorError: when a teacher's number of classes differs from ``classes`` (the student's) or another's.
    """
    logits = [teacher.features[member_path(index)] for index in range(teachers)]
    expected = classes if classes is not None else logits[0].shape[-1]
    for index, value in enumerate(logits):
        if value.ndim != 2 or value.shape[1] != expected:
            raise MentorError(f"teachers[{index}] outputs shape {tuple(value.shape[1:])} but the student has "
                              f"{expected} classes; give every teacher num_classes: {expected}")
    return torch.stack(logits, dim=1)


def check_teachers(teachers: int, owner: str) -> int:
    """At least one teacher."""
    if not isinstance(teachers, int) or isinstance(teachers, bool) or teachers < 1:
        raise MentorError(f"The 'teachers' parameter of {owner} must be an int >= 1 (the number of teachers). "
                          f"Got {teachers!r} instead; an ensemble needs at least one teacher.")
    return teachers


def check_distribution(weights: Sequence[float], teachers: int, owner: str, key: str = "weights") -> torch.Tensor:
    """``teachers`` non-negative finite numbers with a positive sum, normalised to sum to 1, as a ``(M,)`` tensor."""
    values = list(weights)
    good = (len(values) == teachers and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
            and all(v >= 0 and v == v and v != float("inf") for v in values) and sum(values) > 0)
    if not good:
        raise MentorError(f"The {key!r} parameter of {owner} must be {teachers} non-negative numbers (one per "
                          f"teacher) with a positive sum. Got {values!r} instead.")
    tensor = torch.tensor(values, dtype=torch.float32)
    return tensor / tensor.sum()


class Weighting(nn.Module):
    """Base class: per-sample teacher weights from the step's context.

    Attributes:
        teachers: ``M``.
        student_taps / teacher_taps: paths the weighting reads (teacher paths inside the ensemble).
    """

    def __init__(self, teachers: int, owner: str) -> None:
        super().__init__()
        self.teachers = check_teachers(teachers, owner)
        self.student_taps: tuple[str, ...] = ()
        self.teacher_taps: tuple[str, ...] = ()

    def bind(self, student: Outputs, teacher: Outputs) -> None:
        """Build the parts whose shapes come from sample outputs."""

    def forward(self, context: Context, logits: torch.Tensor, temperature: float) -> torch.Tensor:  # type: ignore[override]
        """Weights ``(B, M)`` for the teachers' logits ``(B, M, K)`` at temperature τ."""
        raise NotImplementedError

    def terms(self) -> list[Term]:
        """Loss terms the weighting adds to the objective (hints, a policy's loss)."""
        return []


class Constant(Weighting):
    """The same weights ``(M,)`` for every sample."""

    def __init__(self, weights: torch.Tensor, owner: str) -> None:
        super().__init__(len(weights), owner)
        self.register_buffer("weights", weights.float())

    def forward(self, context: Context, logits: torch.Tensor, temperature: float) -> torch.Tensor:  # type: ignore[override]
        return self.weights.to(logits.dtype).expand(logits.shape[0], -1)


def create(name: str, teachers: int, **params: object) -> Weighting:
    """The weighting registered as ``name`` for ``teachers`` teachers, with validated ``params``."""
    return WEIGHTINGS.create(name, check_teachers(teachers, f"weighting {name!r}"), **params)
