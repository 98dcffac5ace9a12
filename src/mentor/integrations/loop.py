"""A Mentor objective tied to its student and teacher, for a training loop of one's own.

Three lines add a method to any loop::

    objective = mentor.objective("kd", student, teacher, temperature=4.0)
    optimizer = torch.optim.SGD([*student.parameters(), *objective.parameters()], lr=0.1)
    loss = objective(inputs, targets)          # in the loop, then loss.backward() as usual

The :class:`BoundObjective` records the student's taps while it runs the student, runs the frozen teacher
(:class:`~mentor.teachers.FrozenTeacher`: eval mode, no gradients, ``inference_mode``) on the same inputs,
and returns the objective's total. Its own parameters are the objective's trainable parts only (adapters,
embeddings), never the student's nor the teacher's, so the optimizer line names both on purpose.

A method whose terms build trainable parts from the shapes they see (FitNets' regressor) needs them before
the optimizer exists: ``sample=`` (a batch of inputs) binds the objective at once; without it the first
call binds it, and one that then created parameters stops with an error rather than train without them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from mentor.batch import Batch, Inputs, Outputs
from mentor.errors import MentorError
from mentor.integrations.core import Method, OutputCache, build_objective, device_of, needs_bind, run_model, run_teacher
from mentor.losses.objective import LossOutput, Objective
from mentor.losses.terms import Context
from mentor.teachers.frozen import FrozenTeacher, freeze


def call_args(inputs: Inputs) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """A model's call arguments: a mapping is passed by keyword (``model(**inputs)``), anything else as is."""
    return ((), dict(inputs)) if isinstance(inputs, Mapping) else ((inputs,), {})


class BoundObjective(nn.Module):
    """An :class:`Objective` with its student and frozen teacher: ``loss = bound(inputs, targets)``.

    Args:
        objective: what to minimize (a method's objective or terms of one's own).
        student: the trained model; it stays the caller's (not a submodule, its parameters not included).
        teacher: a trained model, frozen here until :meth:`release` and moved to the device of the inputs at
            its first use; ``None`` for terms that need none.
        cache_teacher: keep the teacher's outputs by sample index (pass ``indices=`` to each call); only
            right where a sample's inputs are the same at every visit.

    Attributes:
        last: the :class:`LossOutput` of the latest call (``parts``: each weighted term, for logging).
        last_student: the student's :class:`Outputs` of the latest call (its logits, e.g. for accuracy).
    """

    def __init__(self, objective: Objective, student: nn.Module, teacher: nn.Module | None = None,
                 cache_teacher: bool = False) -> None:
        super().__init__()
        if objective.needs_teacher and teacher is None:
            names = [term.name for term in objective if term.needs_teacher]
            raise MentorError(f"The 'teacher' parameter is required: terms {names} read a teacher's outputs. "
                              "Got None instead; pass the trained teacher model.")
        self.objective = objective
        object.__setattr__(self, "student", student)  # the caller's model: not a submodule of the objective
        object.__setattr__(self, "teacher", freeze(teacher) if teacher is not None else None)
        self.cache = OutputCache() if cache_teacher else None
        self.last: LossOutput | None = None
        self.last_student: Outputs | None = None
        self.adopt: Callable[[list[nn.Parameter]], None] | None = None
        """Where parameters created by a bind at the first step go (an integration's optimizer); ``None``: an error."""

    student: nn.Module
    teacher: FrozenTeacher | None

    def teacher_outputs(self, args: tuple[Any, ...], kwargs: Mapping[str, Any],
                        indices: torch.Tensor | None = None) -> Outputs | None:
        """The teacher's logits and taps on the student's call arguments (from the cache where it holds them)."""
        if self.teacher is None or not self.objective.needs_teacher:
            return None
        device = device_of(args, kwargs)
        if device is not None and any(parameter.device != device for parameter in self.teacher.parameters()):
            self.teacher.to(device)
        if self.cache is not None and indices is not None:
            cached = self.cache.get(indices, device or torch.device("cpu"))
            if cached is not None:
                return cached
        outputs = run_teacher(self.teacher.model, args, kwargs, self.objective.teacher_taps)
        if self.cache is not None and indices is not None:
            self.cache.put(indices, outputs)
        return outputs

    def bind(self, student: Outputs, teacher: Outputs | None, first_step: bool) -> None:
        """Bind the objective once on sample outputs; parameters it creates at the first step go to :attr:`adopt`."""
        if not needs_bind(self.objective):
            self.objective.bound = True
            return
        before = {id(parameter) for parameter in self.objective.parameters()}
        self.objective.bind(_detached(student), teacher)
        self.objective.to(student.logits.device)
        created = [parameter for parameter in self.objective.parameters() if id(parameter) not in before]
        if created and first_step:
            if self.adopt is None:
                raise MentorError("the objective built trainable parts (adapters) on its first call, after the "
                                  "optimizer was made: pass sample=<a batch of inputs> to mentor.objective(...) so "
                                  "that they exist before the optimizer, which must step objective.parameters() too")
            self.adopt(created)

    def bind_on(self, inputs: Inputs) -> None:
        """Bind on a sample batch of ``inputs``, the student in eval mode and without gradients."""
        args, kwargs = call_args(inputs)
        was_training = self.student.training
        self.student.eval()
        with torch.no_grad():
            student = run_model(self.student, args, kwargs, self.objective.student_taps, "student")
        self.student.train(was_training)
        self.bind(student, self.teacher_outputs(args, kwargs), first_step=False)

    def loss(self, student: Outputs, teacher: Outputs | None, targets: torch.Tensor, epoch: float = 0.0,
             epochs: int = 1, indices: torch.Tensor | None = None, inputs: torch.Tensor | None = None) -> LossOutput:
        """The objective on outputs already computed (binding it first if it never was).

        The context's ``batch.inputs`` is ``inputs`` when the student took one tensor, else the logits (no
        knowledge method reads the inputs; a term of one's own that does needs a tensor input).
        """
        if not self.objective.bound:
            self.bind(student, teacher, first_step=True)
        batch = Batch(student.logits if inputs is None else inputs, targets, indices)
        context = Context(batch, student, teacher, epoch, epochs, self.student, self.teacher)
        self.last, self.last_student = self.objective(context), student
        return self.last

    def forward(self, inputs: Inputs, targets: torch.Tensor, *, epoch: float = 0.0, epochs: int = 1,  # type: ignore[override]
                indices: torch.Tensor | None = None) -> torch.Tensor:
        """The total loss of one batch (with autograd): the student and the teacher run on ``inputs``.

        Args:
            inputs: the batch as the student takes it (a mapping is passed by keyword).
            targets: labels ``(B,)`` for the terms that read them (cross-entropy).
            epoch / epochs: progress, for terms whose weight follows a schedule.
            indices: the samples' positions in their dataset ``(B,)``, for the teacher cache.
        """
        args, kwargs = call_args(inputs)
        student = run_model(self.student, args, kwargs, self.objective.student_taps, "student")
        teacher = self.teacher_outputs(args, kwargs, indices)
        tensor = inputs if isinstance(inputs, torch.Tensor) else None
        return self.loss(student, teacher, targets, epoch, epochs, indices, tensor).total

    def release(self) -> None:
        """Give the teacher back as it was handed in (its modules' modes, its parameters' ``requires_grad``)."""
        if self.teacher is not None:
            self.teacher.release()


def _detached(outputs: Outputs) -> Outputs:
    return Outputs(outputs.logits.detach(), {path: value.detach() for path, value in outputs.features.items()})


def objective(method: Method, student: nn.Module, teacher: nn.Module | None = None, *,
              sample: Inputs | None = None, cache_teacher: bool = False, **params: Any) -> BoundObjective:
    """A method's objective bound to ``student`` and ``teacher``, ready for ``loss = objective(inputs, targets)``.

    Args:
        method: a registered method's name (``mentor list knowledge``) or an :class:`Objective`.
        student / teacher: the models (the teacher is frozen until :meth:`BoundObjective.release`).
        sample: a batch of inputs to bind on now, for methods with trainable parts (adapters).
        cache_teacher: see :class:`BoundObjective`.
        **params: the method's parameters (``temperature=4.0``).
    """
    bound = BoundObjective(build_objective(method, params, "mentor.objective"), student, teacher, cache_teacher)
    if sample is not None:
        bound.bind_on(sample)
    return bound
