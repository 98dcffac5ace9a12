"""Offline learning (survey §5, Table 3): a well-trained, frozen teacher teaches a student.

With no teacher the same scheme is plain supervised training (used to train teachers and the
"student alone" baseline), so every model of a run goes through one loop.
"""

from __future__ import annotations

import torch
from torch import nn

from mentor.batch import Batch, Inputs, Outputs
from mentor.data import ArrayDataset
from mentor.errors import MentorError
from mentor.losses.objective import LossOutput, Objective
from mentor.losses.terms import Context
from mentor.schemes.base import SCHEMES, Scheme
from mentor.taps import run_with_taps
from mentor.teachers.cache import TeacherCache
from mentor.teachers.frozen import FrozenTeacher, freeze


def student_outputs(model: nn.Module, inputs: Inputs, taps: tuple[str, ...]) -> Outputs:
    """Logits and tapped tensors of a trained model (with autograd)."""
    logits, features = run_with_taps(model, inputs, taps, role="student")
    return Outputs(logits, features)


class Offline(Scheme):
    """Frozen teacher -> student.

    Args:
        student: the model to train.
        objective: what it minimizes (its adapters are trained with it).
        teacher: a trained model (frozen here) or ``None`` for supervised training.
    """

    def __init__(self, student: nn.Module, objective: Objective, teacher: nn.Module | None = None) -> None:
        super().__init__()
        if objective.needs_teacher and teacher is None:
            names = [term.name for term in objective if term.needs_teacher]
            raise MentorError(f"terms {names} need a teacher; pass teacher=... or use only CE")
        self.student = student
        self.objective = objective
        self.teacher: FrozenTeacher | None = freeze(teacher) if teacher is not None else None
        self.cache: TeacherCache | None = None
        self.cached_size = -1

    def cache_teachers(self, train: ArrayDataset) -> None:
        if self.teacher is not None and self.objective.needs_teacher:
            self.cache = TeacherCache.build(self.teacher, train, self.objective.teacher_taps)
            self.cached_size = len(train)

    def teacher_outputs(self, batch: Batch) -> Outputs | None:
        if self.teacher is None or not self.objective.needs_teacher:
            return None
        if self.cache is not None and batch.indices is not None and batch.dataset_size == self.cached_size:
            return self.cache.outputs(batch.indices, batch.device)
        return self.teacher.outputs(batch.inputs, self.objective.teacher_taps)

    def setup(self, batch: Batch) -> None:
        was_training = self.student.training
        self.student.eval()
        with torch.no_grad():
            student = student_outputs(self.student, batch.inputs, self.objective.student_taps)
        self.student.train(was_training)
        self.objective.bind(student, self.teacher_outputs(batch))

    def trained(self) -> dict[str, nn.Module]:
        return {"student": self.student, "objective": self.objective}

    def predictors(self) -> dict[str, nn.Module]:
        return {"student": self.student}

    def loss(self, batch: Batch, epoch: float, epochs: int) -> LossOutput:
        student = student_outputs(self.student, batch.inputs, self.objective.student_taps)
        context = Context(batch, student, self.teacher_outputs(batch), epoch, epochs, self.student, self.teacher)
        return self.objective(context)


@SCHEMES.register("offline", "Hinton et al. 2015: a pre-trained frozen teacher teaches a student")
def offline(models: list[nn.Module], objective: Objective) -> Offline:
    """``models`` = [teacher, student] (or [student] for supervised training)."""
    if len(models) not in (1, 2):
        raise MentorError(f"the offline scheme takes [teacher, student] or [student]; got {len(models)} models")
    teacher = models[0] if len(models) == 2 else None
    return Offline(models[-1], objective, teacher)
