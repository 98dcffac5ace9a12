"""The objective: a named, weighted sum of loss terms whose every part is logged."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from mentor.batch import Outputs
from mentor.errors import MentorError, clip
from mentor.losses.terms import Context, Term


@dataclass
class LossOutput:
    """The total loss (for backward) and each weighted part by term name (detached, for logging).

    For the loop's gradient-scale check (:mod:`mentor.engine.scales`) it may also carry, with autograd:
    ``terms``, each term at its full weight (a term warming up counts at the weight it will reach), and
    ``reference``, the plain cross-entropy of the trained predictions that the terms are compared with (or a
    function computing it, called only while the check runs: the loss itself does not need it);
    ``weights`` gives the full weight of each term where it is a setting the user can change.
    """

    total: torch.Tensor
    parts: dict[str, torch.Tensor]
    terms: dict[str, torch.Tensor] = field(default_factory=dict)
    reference: torch.Tensor | Callable[[], torch.Tensor | None] | None = None
    weights: dict[str, float] = field(default_factory=dict)

    def reference_loss(self) -> torch.Tensor | None:
        """The reference cross-entropy, computed now when it was given as a function."""
        return self.reference() if callable(self.reference) else self.reference

    @classmethod
    def of(cls, parts: dict[str, torch.Tensor], reference: torch.Tensor | None = None) -> LossOutput:
        """The sum of weighted ``parts`` (with autograd); the reference defaults to the sum of the
        cross-entropy parts (named ``ce``, ``peer0/ce``, ``ce/exit1`` ...)."""
        if reference is None:
            ce = [value for name, value in parts.items() if "ce" in name.split("/")]
            reference = sum(ce[1:], ce[0]) if ce else None
        total = sum(list(parts.values())[1:], next(iter(parts.values())))
        return cls(total, {name: value.detach() for name, value in parts.items()}, dict(parts), reference)


class Objective(nn.Module):
    """L = Σ_i w_i(t) · L_i over named terms (survey eq. 1).

    Terms are kept in an ``nn.ModuleDict`` so their adapters are parameters of the objective; the
    scheme hands them to the optimizer with the student. Two terms may not share a name.

    Terms that build trainable parts or check shapes from sample outputs (adapters, embeddings) need
    :meth:`bind` on a sample batch before the first loss, and so before the optimizer that steps
    ``objective.parameters()`` is built; such a term failing in an unbound objective says so.
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
        self.bound = False

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
        self.bound = True

    def _loss(self, term: Term, context: Context) -> torch.Tensor:
        """``term``'s loss; when it fails for want of :meth:`bind` (a missing adapter), a one-line error."""
        try:
            return term.loss(context)
        except MentorError:
            raise
        except Exception as error:
            if self.bound or type(term).bind is Term.bind:
                raise
            raise MentorError(f"term {term.name!r} failed ({type(error).__name__}: {clip(str(error))}) "
                              "and the objective was never bound: call objective.bind(student_outputs, "
                              "teacher_outputs) on a sample batch before building the optimizer, which must "
                              "also step objective.parameters() (the adapters bind creates)") from None

    def forward(self, context: Context) -> LossOutput:  # type: ignore[override]
        total: torch.Tensor | None = None
        parts: dict[str, torch.Tensor] = {}
        terms: dict[str, torch.Tensor] = {}
        for term in self:
            weight = term.weight_at(context.epoch, context.epochs)
            if weight == 0.0:
                parts[term.name] = context.student.logits.new_zeros(())
                continue
            loss = self._loss(term, context)
            value = weight * loss
            parts[term.name], terms[term.name] = value.detach(), term.weight * loss
            total = value if total is None else total + value
        if total is None:
            total = context.student.logits.sum() * 0.0
        reference = partial(_reference, context.student.logits, context.batch.targets)
        return LossOutput(total, parts, terms, reference, {term.name: term.weight for term in self})


def _reference(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor | None:
    """Plain cross-entropy of the student's logits with class labels (``None`` for other targets)."""
    if logits.ndim != 2 or targets.ndim != 1 or targets.is_floating_point():
        return None
    return F.cross_entropy(logits.float(), targets)  # fp32 also when called after a bf16 autocast region
