"""The steps of a PATE run (:mod:`mentor.pipelines.pate`): the public split, the teachers, the student.

Every model is trained by the one loop (:func:`mentor.engine.fit`) with cross-entropy and no validation split
(a teacher's validation labels would be private data outside its partition, a student's would be labels it did
not pay for in privacy): the last weights are kept.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from mentor.data import ArrayDataset
from mentor.engine import FitSettings, MetricsLog, fit, predict
from mentor.errors import MentorError
from mentor.losses import CE, Objective
from mentor.schemes import SCHEMES, Offline
from mentor.schemes.selflearning.mean_teacher import UNLABELLED
from mentor.teachers.bank import BankTraining, TeacherBank, has_running_statistics
from mentor.teachers.pate import Answers, partitions

ModelFactory = Callable[[], torch.nn.Module]
CONFIDENT = 0.9
"""Softmax confidence above which a self-training student's own prediction becomes a label."""

def public_split(test: ArrayDataset, fraction: float) -> tuple[ArrayDataset, ArrayDataset]:
    """(the student's pool: the first ``fraction`` of ``test``, the evaluation part: the rest)."""
    cut = min(max(1, round(fraction * len(test))), len(test) - 1)
    if cut < 1:
        raise MentorError(f"the test split has {len(test)} sample(s): too few to split into a public pool and an "
                          "evaluation part; load more data")
    return (ArrayDataset(test.inputs[:cut], test.targets[:cut]), ArrayDataset(test.inputs[cut:], test.targets[cut:]))


def train_teachers(factory: ModelFactory, private: ArrayDataset, teachers: int, settings: FitSettings,
                   log: MetricsLog, checkpoints: Path | None) -> TeacherBank:
    """One teacher per partition of ``private`` (module docstring, step 1)."""
    indices = partitions(len(private), teachers, settings.seed)  # (n, m)
    members = [factory() for _ in range(teachers)]
    fitted = replace(settings, scale_probe=0)
    if not has_running_statistics(members[0]):
        bank = TeacherBank(members)
        rows = ArrayDataset(private.inputs[indices].transpose(0, 1).contiguous(), private.targets[indices].t())
        # stacked weights have one more axis than the model's: no channels-last layout, no compilation
        batched = replace(fitted, channels_last=False, compile=False)
        fit(BankTraining(bank), rows, None, batched, log=log, checkpoints=checkpoints, stage="teachers")
        return bank.cpu()
    for index, (member, part) in enumerate(zip(members, indices, strict=True)):
        stage = f"member{index}"
        learn(member, private.subset(part), fitted, log, checkpoints / stage if checkpoints else None, stage)
    return TeacherBank(members)


def learn(model: torch.nn.Module, labelled: ArrayDataset, settings: FitSettings, log: MetricsLog,
          checkpoints: Path | None, stage: str) -> None:
    """Train ``model`` with cross-entropy on ``labelled`` by the one loop, without validation (last weights); it
    comes back on the CPU, where the votes are counted and the data lives."""
    fit(Offline(model, Objective(CE())), labelled, None, settings, log=log, checkpoints=checkpoints, stage=stage)
    model.cpu()


def train_student(factory: ModelFactory, pool: ArrayDataset, answers: Answers, self_training: bool,
                  settings: FitSettings, log: MetricsLog, checkpoints: Path | None,
                  mean_teacher: dict[str, Any] | None = None) -> tuple[torch.nn.Module, int]:
    """The student trained on the answered queries, and how many of its own labels it added.

    With ``self_training`` the student, back at its initial weights, learns the answers again together with its
    first version's confident labels on the unasked pool (in place: a given model stays the one trained).
    With ``mean_teacher`` (the scheme's parameters but ``labels``) it learns semi-supervised instead
    (:func:`learn_semi_supervised`).
    """
    asked = torch.arange(len(answers.labels))
    answered = asked[torch.from_numpy(answers.answered)]
    if len(answered) == 0:
        why = f" ({answers.stopped})" if answers.stopped else ""
        raise MentorError(f"the aggregator answered none of the queries{why}, so the student has no labels; lower "
                          "the threshold or the noise, raise epsilon_budget, or ask more queries")
    if mean_teacher is not None:
        return learn_semi_supervised(factory(), marked_pool(pool, answers), mean_teacher, settings, log,
                                     checkpoints), 0
    labels = torch.from_numpy(answers.labels)[answered]
    labelled = ArrayDataset(pool.inputs[answered], labels)
    student = factory()
    initial = copy.deepcopy(student.state_dict())
    learn(student, labelled, settings, log, checkpoints / "supervised" if checkpoints else None, "supervised")
    if not self_training:
        return student, 0
    rest = torch.ones(len(pool), dtype=torch.bool)
    rest[answered] = False  # unasked and declined inputs alike: the student labels them at no privacy cost
    unlabeled = ArrayDataset(pool.inputs[rest], pool.targets[rest])
    confidence, predicted = torch.softmax(predict(student, unlabeled), dim=1).max(dim=1)
    keep = confidence >= CONFIDENT
    grown = ArrayDataset(torch.cat([labelled.inputs, unlabeled.inputs[keep]]),
                         torch.cat([labels, predicted[keep]]))
    student.load_state_dict(initial)
    learn(student, grown, settings, log, checkpoints / "self-training" if checkpoints else None, "self-training")
    return student, int(keep.sum())


def marked_pool(pool: ArrayDataset, answers: Answers) -> ArrayDataset:
    """The pool with the answers as targets and −1 on every other input (unasked or declined)."""
    targets = torch.full((len(pool),), UNLABELLED, dtype=torch.long)
    answered = torch.nonzero(torch.from_numpy(answers.answered)).flatten()
    targets[answered] = torch.from_numpy(answers.labels)[answered].long()
    return ArrayDataset(pool.inputs, targets)


def learn_semi_supervised(student: torch.nn.Module, marked: ArrayDataset, params: dict[str, Any],
                          settings: FitSettings, log: MetricsLog, checkpoints: Path | None) -> torch.nn.Module:
    """``student`` taught by a mean teacher (Tarvainen & Valpola 2017) on the :func:`marked_pool`, in place.

    The answered queries keep their answers; every other pool input (unasked or declined) is unlabelled,
    which costs no privacy. The scheme is the ``mean-teacher`` scheme with ``params``; with no validation
    split to choose between its two models, the student takes the averaged teacher's weights (the paper's
    usually better model), which is what this returns.
    """
    scheme = SCHEMES.create("mean-teacher", [student], **params)
    fit(scheme, marked, None, settings, log=log,
        checkpoints=checkpoints / "mean-teacher" if checkpoints else None, stage="mean-teacher")
    student.load_state_dict(scheme.mean_teacher.model.state_dict())
    return student.cpu()


def check_mean_teacher(params: dict[str, Any] | None, self_training: bool) -> None:
    """One-line errors for a PATE student's mean-teacher parameters, before anything trains."""
    if params is None:
        return
    if self_training:
        raise MentorError("PATE's student learns either by self_training or with a mean_teacher, not both; got both: "
                          "drop one of them")
    if "labels" in params:
        raise MentorError("The 'mean_teacher' parameters of PATE take no 'labels': the answered queries are the "
                          f"labelled samples; got labels={params['labels']!r}: remove it")
    SCHEMES.create("mean-teacher", [torch.nn.Identity()], **params)  # names a bad parameter in one line


def teacher_copies(model: torch.nn.Module) -> ModelFactory:
    """A factory of fresh copies of ``model``, each with its own random initialisation (``reset_parameters``)."""
    def fresh() -> torch.nn.Module:
        copied = copy.deepcopy(model)
        for module in copied.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
        return copied
    return fresh
