"""MetaDistill: a teacher that keeps learning from how well its student does on a quiz.

Zhou, Xu & McAuley (2022), "BERT Learns to Teach: Knowledge Distillation with Meta Learning", ACL
(arXiv:2106.04570). Neither offline (the teacher is not frozen) nor online among peers (the teacher
learns from the student's quiz loss, not from the labels alone). Each training step, on a batch of
which the samples of a fixed quiz set (a ``quiz_fraction`` of the training split, never the test or
validation split) form the quiz batch (q, y_q) and the others the training batch (x, y):

1. pilot update: θ_s' = θ_s − λ ∇_θs L_S(x, y; θ_s, θ_t), one differentiable SGD step of a copy of the student;
2. quiz: L_quiz = CE(y_q, S(q; θ_s'(θ_t)));
3. teacher step: θ_t ← θ_t − μ ∇_θt [L_quiz + β · CE(y, T(x; θ_t))] (second-order through step 1);
4. student step: the loop steps θ_s with L_S(x, y; θ_s, θ_t) from the teacher just updated.

with the student's loss (logits ``(B, K)`` of student z_S and teacher z_T, labels ``(B,)``)

    L_S = w_KD · τ² · KL(softmax(z_T/τ) || softmax(z_S/τ)) + w_CE · CE(y, softmax(z_S))

The pilot update keeps the teacher's step aligned with the student's actual next step. The paper's
teacher is trained before distillation; the first phase (``teacher``, ``teacher_epochs`` epochs, the
run's by default) trains it on the labels, ``teacher_epochs: 0`` takes it as given (trained).

Defaults follow the paper's released image-classification code (CIFAR-100, built on the CRD code base):
τ = 4 (``kd_T``), λ = 0.05 (``assume_s_step_size``), μ = 0.05 with momentum 0.9 and weight decay 5e-4
(its teacher SGD), β = 0 (its teacher steps on the quiz loss alone), w_KD = 0.9 / w_CE = 0.1 (the KD
weights of that code base's scripts). The quiz share has no default there (``--held_size`` is
required); 0.1 keeps nine tenths of the training split for the student's steps. As in that code, the
teacher is held fixed for the first 150 of 240 epochs of distillation (``meta_start`` = 0.625 of them):
the student learns by plain KD first, and the teacher's meta steps start once the student is trained
enough for its quiz loss to say something (from the first step, the teacher of a random student drifted
from 53% to 11% in two epochs on Fashion-MNIST and took the student with it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from mentor.batch import Batch, device_of
from mentor.errors import MentorError
from mentor.losses import CE, Objective
from mentor.losses.functional import kl_with_temperature
from mentor.losses.objective import LossOutput
from mentor.schemes.base import Phase, Phased, Scheme
from mentor.schemes.offline import Offline
from mentor.schemes.online.peers import check_count, online_scheme
from mentor.teachers.meta import LearningTeacher, pilot_logits, pilot_parameters, teacher_cross_entropy

QUIZ_SEED = 7_777_777
"""Offset of the quiz set's draw: with the run's own seed the quiz set would be the loop's first shuffled batches."""


def check_pair(teacher: nn.Module, student: nn.Module, batch: Batch) -> None:
    """Class labels, and a teacher and student that output the same classes: one-line errors otherwise."""
    if batch.targets.is_floating_point():
        raise MentorError("the meta-distill scheme trains classifiers (its quiz loss is a cross-entropy with class "
                          f"labels), but the data has floating-point targets of shape {tuple(batch.targets.shape)}; "
                          "use a classification dataset (e.g. data.name: digits)")
    shapes = []
    for model in (teacher, student):
        was_training = model.training
        model.eval()
        with torch.no_grad():
            shapes.append(tuple(model(batch.inputs).shape[1:]))
        model.train(was_training)
    if shapes[0] != shapes[1]:
        raise MentorError(f"the meta-distill scheme needs peers [teacher, student] with the same outputs; the teacher "
                          f"(peers.0) outputs {shapes[0]}, the student (peers.1) {shapes[1]}; give both the same "
                          "num_classes")


class TeacherWarmup(Offline):
    """The first phase: the teacher on the labels alone (its set-up also checks the pair, before anything trains)."""

    def __init__(self, teacher: nn.Module, student: nn.Module) -> None:
        super().__init__(teacher, Objective(CE()))
        self._student = (student,)  # a tuple keeps it out of this phase's modules

    def setup(self, batch: Batch) -> None:
        self._student[0].to(device_of(batch.inputs))  # on the loop's device, as the next phase puts it
        check_pair(self.student, self._student[0], batch)  # this phase's student is the teacher
        super().setup(batch)


class MetaDistill(Scheme):
    """One MetaDistill step per batch: pilot update, quiz, teacher step; the loop then steps the student."""

    def __init__(self, teacher: nn.Module, student: nn.Module, *, temperature: float, kd_weight: float,
                 ce_weight: float, pilot_lr: float, teacher_lr: float, teacher_momentum: float,
                 teacher_weight_decay: float, teacher_ce_weight: float, quiz_fraction: float, meta_start: float,
                 seed: int) -> None:
        super().__init__()
        self.student = student
        self.teacher = LearningTeacher(teacher, teacher_lr, teacher_momentum, teacher_weight_decay)
        self.temperature, self.kd_weight, self.ce_weight = temperature, kd_weight, ce_weight
        self.pilot_lr, self.teacher_ce_weight = pilot_lr, teacher_ce_weight
        self.quiz_fraction, self.meta_start, self.seed = quiz_fraction, meta_start, seed
        self._quiz: torch.Tensor | None = None

    def trained(self) -> dict[str, nn.Module]:
        return {"student": self.student, "teacher": self.teacher}

    def optimized(self) -> dict[str, list[nn.Parameter]]:
        """Only the student: the teacher steps inside :meth:`loss`, before the student's loss is computed."""
        return {"main": [p for p in self.student.parameters() if p.requires_grad]}

    def predictors(self) -> dict[str, nn.Module]:
        return {"student": self.student, "teacher": self.teacher.model}

    def setup(self, batch: Batch) -> None:
        check_pair(self.teacher.model, self.student, batch)

    def quiz_mask(self, batch: Batch) -> torch.Tensor:
        """``(B,)`` booleans: which samples of ``batch`` belong to the quiz set (fixed by ``seed`` per dataset size)."""
        if batch.indices is None or batch.dataset_size is None:
            raise MentorError("the meta-distill scheme carves its quiz set by sample index; train it with mentor's "
                              "loop on an in-memory dataset (batches with indices)")
        size = batch.dataset_size
        if self._quiz is None or len(self._quiz) != size:
            count = min(max(1, round(self.quiz_fraction * size)), size - 1)
            order = torch.randperm(size, generator=torch.Generator().manual_seed(QUIZ_SEED + self.seed))
            self._quiz = torch.zeros(size, dtype=torch.bool)
            self._quiz[order[:count]] = True
        return self._quiz[batch.indices.cpu()].to(batch.device)

    def student_loss(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                     targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """L_S's weighted parts: ``kd`` (τ² KL) and ``ce``."""
        return {"ce": self.ce_weight * F.cross_entropy(student_logits, targets),
                "kd": self.kd_weight * kl_with_temperature(student_logits, teacher_logits, self.temperature)}

    def teach(self, inputs: torch.Tensor, targets: torch.Tensor, quiz_inputs: torch.Tensor,
              quiz_targets: torch.Tensor) -> torch.Tensor:
        """Steps 1-3: the pilot update, the quiz loss and the teacher's step; the quiz loss (detached)."""
        teacher_logits = self.teacher(inputs)
        def loss(logits: torch.Tensor) -> torch.Tensor:
            return sum(self.student_loss(logits, teacher_logits, targets).values())  # type: ignore[return-value]

        pilot = pilot_parameters(self.student, inputs, loss, self.pilot_lr)
        quiz = F.cross_entropy(pilot_logits(self.student, pilot, quiz_inputs), quiz_targets)
        own = teacher_cross_entropy(teacher_logits, targets) if self.teacher_ce_weight > 0 else None
        self.teacher.step(quiz, own, self.teacher_ce_weight)
        return quiz.detach()

    def loss(self, batch: Batch, epoch: float, epochs: int) -> LossOutput:
        quiz = self.quiz_mask(batch)
        inputs, targets = batch.inputs[~quiz], batch.targets[~quiz]
        if len(inputs) == 0:  # a batch of quiz samples only: nothing for the student to learn from
            zero = self.student(batch.inputs[:1]).sum() * 0.0
            return LossOutput(zero, {"ce": zero.detach(), "kd": zero.detach()})
        quiz_loss = None
        if bool(quiz.any()) and epoch >= self.meta_start * epochs:
            quiz_loss = self.teach(inputs, targets, batch.inputs[quiz], batch.targets[quiz])
        with torch.no_grad():
            teacher_logits = self.teacher(inputs)
        student_logits = self.student(inputs)
        parts = self.student_loss(student_logits, teacher_logits, targets)
        output = LossOutput.of(parts, reference=F.cross_entropy(student_logits, targets))
        output.weights = {"ce": self.ce_weight, "kd": self.kd_weight}
        if quiz_loss is not None:
            output.parts["quiz"] = quiz_loss  # logged only: the loop's backward never sees it
        return output


class MetaDistillRun(Phased):
    """The teacher trained on the labels (unless ``teacher_epochs`` is 0), then MetaDistill."""

    def __init__(self, teacher: nn.Module, student: nn.Module, teacher_epochs: int | None, **settings: float) -> None:
        self.teacher, self.student, self.teacher_epochs, self.settings = teacher, student, teacher_epochs, settings

    def phases(self) -> Iterator[Phase]:
        if self.teacher_epochs != 0:
            yield Phase("teacher", TeacherWarmup(self.teacher, self.student), self.teacher_epochs)
        yield Phase("meta-distill", MetaDistill(self.teacher, self.student, **self.settings))  # type: ignore[arg-type]

    def predictors(self) -> dict[str, nn.Module]:
        return {"student": self.student, "teacher": self.teacher}


@online_scheme("meta-distill", "Zhou et al. 2022, BERT Learns to Teach: KD with Meta Learning (ACL)")
def meta_distill(
    models: list[nn.Module],
    temperature: Annotated[float, Field(gt=0)] = 4.0,
    kd_weight: Annotated[float, Field(ge=0)] = 0.9,
    ce_weight: Annotated[float, Field(ge=0)] = 0.1,
    pilot_lr: Annotated[float, Field(gt=0)] = 0.05,
    teacher_lr: Annotated[float, Field(gt=0)] = 0.05,
    teacher_momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9,
    teacher_weight_decay: Annotated[float, Field(ge=0)] = 5e-4,
    teacher_ce_weight: Annotated[float, Field(ge=0)] = 0.0,
    quiz_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.1,
    meta_start: Annotated[float, Field(ge=0, le=1)] = 0.625,
    teacher_epochs: Annotated[int | None, Field(ge=0)] = None,
    seed: int = 0,
) -> MetaDistillRun:
    """``models`` = [teacher, student] (same classes). ``teacher_epochs``: epochs of the teacher's training
    on the labels first (``None``: the run's; 0: the teacher is given trained). ``meta_start``: the share of
    the distillation epochs before the teacher's meta steps begin."""
    check_count(models, "meta-distill", 2, 2)
    return MetaDistillRun(models[0], models[1], teacher_epochs, temperature=temperature, kd_weight=kd_weight,
                          ce_weight=ce_weight, pilot_lr=pilot_lr, teacher_lr=teacher_lr,
                          teacher_momentum=teacher_momentum, teacher_weight_decay=teacher_weight_decay,
                          teacher_ce_weight=teacher_ce_weight, quiz_fraction=quiz_fraction, meta_start=meta_start,
                          seed=seed)
