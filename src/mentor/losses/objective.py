"""The objective: a named, weighted sum of loss terms whose every part is logged."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mentor.batch import Outputs
from mentor.errors import MentorError
from mentor.losses.terms import Context, Term


@dataclass
class LossOutput:
    """The total loss (for backward) and each weighted part by term name (detached, for logging)."""

    total: torch.Tensor
    parts: dict[str, torch.Tensor]


class Objective(nn.Module):
    """L = Σ_i w_i(t) · L_i over named terms (survey eq. 1).

    Terms are kept in an ``nn.ModuleDict`` so their adapters are parameters of the objective; the
    scheme hands them to the optimizer with the student. Two terms may not share a name.
    """

    def __init__(self, *terms: Term) -> None:
        super().__init__()
        if not terms:
            raise MentorError("an Objective needs at least one term (e.g. mentor.terms.CE())")
        self.terms = nn.ModuleDict()
        for term in terms:
            if not isinstance(term, Term):
                raise MentorError(f"Objective takes loss terms; got {type(term).__name__}")
            if term.name in self.terms:
                raise MentorError(f"two terms are named {term.name!r}; give one of them another name")
            self.terms[term.name] = term

    def __iter__(self):  # noqa: ANN204 - iterate terms in order
        return iter(self.terms.values())

    @property
    def student_taps(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(path for term in self for path in term.student_taps))

    @property
    def teacher_taps(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(path for term in self for path in term.teacher_taps))

    @property
    def needs_teacher(self) -> bool:
        return any(term.needs_teacher for term in self)

    def bind(self, student: Outputs, teacher: Outputs | None) -> None:
        """Let each term check shapes and build its adapters from sample outputs."""
        for term in self:
            term.bind(student, teacher)

    def forward(self, context: Context) -> LossOutput:  # type: ignore[override]
        total: torch.Tensor | None = None
        parts: dict[str, torch.Tensor] = {}
        for term in self:
            weight = term.weight_at(context.epoch, context.epochs)
            if weight == 0.0:
                parts[term.name] = context.student.logits.new_zeros(())
                continue
            value = weight * term.loss(context)
            parts[term.name] = value.detach()
            total = value if total is None else total + value
        if total is None:
            total = context.student.logits.sum() * 0.0
        return LossOutput(total, parts)
