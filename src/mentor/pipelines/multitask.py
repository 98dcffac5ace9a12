"""Multi-task learning (survey §2.4) as a pipeline: specialist teachers -> pseudo labels of a shared pool -> one
multi-head student (MuST), optionally with cross-task knowledge distillation.

MuST: Ghiasi, Zoph, Cubuk, Le & Lin (2021), "Multi-Task Self-Training for Learning General Representations",
ICCV, arXiv:2108.11353. For every seed:

1. one specialist teacher per task learns its own labelled dataset (stage ``teacher-<task>``: cross-entropy for
   classes, squared error for a regression value; weights selected on the task's validation split);
2. every teacher labels every image of the shared pool (unlabelled images of all the tasks' datasets, never
   seen by a teacher): soft class probabilities ``softmax(z)`` ``(N, K_t)`` for classification, as the paper
   does (they carry the teacher's uncertainty, which hard labels drop), the teacher's value ``(N, D_t)`` for
   regression, as the paper does for depth;
3. one multi-head student (shared body, a linear head per task, :mod:`mentor.models.multi_head`) learns all
   pseudo labels of the pool at once (stage ``student``), ``L = Σ_t w_t L_t`` (:mod:`mentor.losses.multitask`).
   The paper's total is this weighted sum of the per-task losses, with a weight chosen per task; the default
   here is w_t = 1 for every task, with each regression loss divided by the variance of its pseudo labels on
   the pool so that it starts on the scale of a cross-entropy (a value's squared error is otherwise in the
   value's units squared).

Cross-task KD (``cross_task``): Yang, Pan, Gao, Jiang, Liu & Chen (2022), "Cross-Task Knowledge Distillation in
Multi-Task Recommendation", AAAI, arXiv:2202.09852, adapted from recommendation to images (stage
``cross-task-student``, the same student architecture from scratch):

* the paper's: the auxiliary ranking tasks with its quadruplet order (samples ranked by task A's label, ties
  broken by task B's) and pairwise loss, one per ordered pair of tasks, on auxiliary outputs of their own; the
  calibration of the teachers' predictions against the ground truth before they become targets;
* adapted: the binary labels y_t, which the paper reads from click/like data, are here the calibrated teachers'
  (top class probability ≥ ``confidence``; a regression value above its pool median), so task B's teacher
  orders task A's samples (its knowledge crosses to A's side of the shared body); each task's auxiliary ranking
  task is one more linear head of the student (one score per sample), as the paper's auxiliary towers, so the
  ranking shapes the shared body without pulling on the task heads' outputs; the paper then distills the
  auxiliary predictions into the task heads, here the task heads learn the calibrated teachers' labels instead;
  calibration is temperature scaling (Platt scaling's multi-class form) or an affine map for a value, fitted on
  the task's validation split; the order's tie-break is flipped for a pair
  whose labels correlate negatively on the pool (the paper's tasks are positively related, a digit and a
  garment task are not); the teacher is trained first and frozen, so the paper's error correction for a
  teacher trained together with the student has nothing to correct and is left out.

``ground_truth``: the same multi-head student also learns the teachers' labelled data directly, every sample
labelled for its own task only (stage ``ground-truth-student``): the baseline without teachers.

Every model is measured on each task's test set (accuracy, or MSE and MAE): rows ``<task> teacher``,
``<task> student``, ``<task> cross-task student``, ``<task> ground-truth student``; the table adds the students'
parameters over the sum of the specialists'. With a run directory, ``checkpoints/seed<S>/<stage>/`` holds each
stage's checkpoints and ``mentor resume`` continues at the stage that stopped (finished ones are loaded).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from torch import nn

from mentor.data import Splits
from mentor.engine import FitSettings, MetricsLog, checkpoint, fit, seed_everything
from mentor.errors import MentorError, clip
from mentor.models.multi_head import MultiHead, TaskHead
from mentor.pipelines.distill import check_device, fit_plan
from mentor.pipelines.multitask_data import TARGETS, Layout, Task, TaskData, task_data
from mentor.pipelines.multitask_result import MultiTaskResult
from mentor.pipelines.multitask_steps import (
    CrossTask,
    MultiTaskTraining,
    calibrate,
    ground_truth_set,
    pool_set,
    pseudo_labels,
    ranking_head,
    related,
)
from mentor.pipelines.result import measure

TeacherFactory = Callable[[int, tuple[int, ...]], nn.Module]
"""(outputs, input shape) -> a fresh specialist teacher."""
StudentFactory = Callable[[dict[str, int], tuple[int, ...]], nn.Module]
"""(heads {task: outputs}, input shape) -> a fresh multi-head student."""
STUDENTS = ("student", "cross-task student", "ground-truth student")


@dataclass
class MultiTaskJob:
    """Everything a multi-task run needs, checked (:func:`check_job`) before anything is written."""

    name: str
    seeds: list[int]
    tasks: list[Task]
    load_data: Callable[[int], TaskData]
    teacher: TeacherFactory
    student: StudentFactory
    teacher_settings: FitSettings
    settings: FitSettings
    cross_task: CrossTask | None = None
    ground_truth: bool = True
    latency_batch: int = 256


def widths(tasks: list[Task], data: TaskData) -> dict[str, int]:
    """Each task's output width: its classes, or 1 for a regression value."""
    return {task.name: 1 if task.regression else data.tasks[task.name].num_classes for task in tasks}


def check_job(job: MultiTaskJob) -> None:
    """One-line errors for settings that cannot work, before anything trains or is written."""
    if not job.tasks:
        raise MentorError("a multi-task run needs at least one task; give multitask.tasks")
    names = [task.name for task in job.tasks]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise MentorError(f"task name {repeated[0]!r} is used twice in multitask.tasks; give each task its own name "
                          "(it names the task's head and its rows)")
    for task in job.tasks:
        if task.target not in TARGETS:
            raise MentorError(f"The 'target' of task {task.name!r} must be one of {', '.join(TARGETS)}. Got "
                              f"{task.target!r} instead.")
        if not task.weight >= 0:
            raise MentorError(f"The 'weight' of task {task.name!r} must be >= 0. Got {task.weight!r} instead.")
    for which, settings in (("teacher.train.epochs", job.teacher_settings), ("train.epochs", job.settings)):
        if settings.epochs < 1:
            raise MentorError(f"{which} must be at least 1 (an epoch count). Got {settings.epochs} instead; "
                              "give a positive number of epochs")
    check_device(job.settings, job.teacher_settings)
    data = job.load_data(job.seeds[0])
    pool_shape = tuple(data.pool.inputs.shape[1:])
    for task in job.tasks:
        splits = data.tasks[task.name]
        teacher = job.teacher(1 if task.regression else splits.num_classes, splits.input_shape)
        try:
            teacher.eval()
            teacher(data.pool.inputs[:2])
        except Exception as error:  # noqa: BLE001 - a teacher that cannot take the pool, in one line
            raise MentorError(f"the shared pool's inputs of shape {pool_shape} do not fit the teacher of task "
                              f"{task.name!r}, built for {splits.name} inputs of shape {tuple(splits.input_shape)}"
                              f" ({type(error).__name__}: {clip(str(error))}); give tasks whose images have one "
                              "shape") from None
    heads = widths(job.tasks, data)
    try:
        student = job.student(heads, pool_shape)
    except MentorError as error:
        raise MentorError(f"the multi-task student must be a multi-head model built with heads {heads} "
                          f"(student.model: cnn-multi-head): {error}") from None
    if not isinstance(student, MultiHead):
        raise MentorError(f"the multi-task student must be a multi-head model (student.model: cnn-multi-head); got "
                          f"{type(student).__name__}")
    if student.tasks != heads:
        raise MentorError(f"the student's heads {student.tasks} do not match the tasks {heads}; remove "
                          "student.options.heads (they are made from the tasks) or give one head per task")


def run(job: MultiTaskJob, out: Path | None, log: MetricsLog | None = None, echo: Callable[[str], None] = print,
        resume: bool = False) -> MultiTaskResult:
    """Teachers, pseudo labels and students for every seed of ``job`` (module docstring)."""
    log = log or MetricsLog()
    result = MultiTaskResult(records=log.records)
    for seed in job.seeds:
        data = job.load_data(seed)

        def folder(stage: str, seed: int = seed) -> Path | None:
            return out / "checkpoints" / f"seed{seed}" / stage.replace(" ", "-") if out is not None else None

        def report(task: Task, role: str, model: nn.Module, best: int, seed: int = seed,
                   data: TaskData = data) -> None:
            measured = result.add(measure(f"{task.name} {role}", seed, model, data.tasks[task.name],
                                          job.latency_batch, best), model)
            echo(f"seed {seed}: {task.name} {role} {measured.headline}")

        teachers = {}
        for task in job.tasks:
            splits = data.tasks[task.name]
            seed_everything(seed)
            teachers[task.name] = teacher = job.teacher(1 if task.regression else splits.num_classes,
                                                        splits.input_shape)
            fits = fit_plan(teacher, splits, replace(job.teacher_settings, seed=seed, resume=resume),
                            log=log.bind(run=f"teacher-{task.name}", seed=seed),
                            checkpoints=folder(f"teacher {task.name}"))
            report(task, "teacher", teacher.cpu(), fits[-1].best_epoch)
        layout = Layout(widths(job.tasks, data))
        plain = {task.name: pseudo_labels(teachers[task.name], task, data.pool, (1.0, 1.0, 0.0), 0.5)
                 for task in job.tasks}
        students: list[tuple[str, Any, CrossTask | None]] = [("student", plain, None)]
        if job.cross_task is not None:
            cross = job.cross_task
            calibrated = {task.name: pseudo_labels(
                teachers[task.name], task, data.pool,
                calibrate(teachers[task.name], task, data.tasks[task.name]) if cross.calibrate else (1.0, 1.0, 0.0),
                cross.confidence) for task in job.tasks}
            for name, label in calibrated.items():
                echo(f"seed {seed}: {name} pseudo labels calibrated by {label.calibration}")
            students.append(("cross-task student", calibrated, cross))
        if job.ground_truth:
            students.append(("ground-truth student", None, None))
        for role, labels, cross in students:
            seed_everything(seed)
            student = new_student(job, layout, data, cross is not None)
            if labels is None:
                train = ground_truth_set(job.tasks, data.tasks, layout)
                scales = {task.name: variance(data.tasks[task.name].train.targets) for task in job.tasks}
            else:
                train = pool_set(data.pool, layout, labels)
                scales = {name: variance(label.targets) for name, label in labels.items()}
            scales = {task.name: scales[task.name] if task.regression else 1.0 for task in job.tasks}
            pairs = related({name: label.events for name, label in labels.items()}) if cross is not None else None
            scheme = MultiTaskTraining(student, job.tasks, layout, scales, cross, pairs)  # type: ignore[arg-type]
            fitted = fit(scheme, train, None, replace(job.settings, seed=seed, resume=resume, scale_probe=0),
                         log=log.bind(run=role.replace(" ", "-"), seed=seed), checkpoints=folder(role), stage=role)
            student.cpu()
            for task in job.tasks:
                report(task, role, TaskHead(student, task.name), fitted.best_epoch)  # type: ignore[arg-type]
    return result


def new_student(job: MultiTaskJob, layout: Layout, data: TaskData, cross_task: bool) -> MultiHead:
    """A fresh multi-head student: a head per task, and a ranking head per task for cross-task KD."""
    ranking = {ranking_head(task.name): 1 for task in job.tasks} if cross_task else {}
    return job.student({**layout.widths, **ranking}, tuple(data.pool.inputs.shape[1:]))


Model = TypeVar("Model", bound=nn.Module)

STUDENTS = {"student": False, "cross-task student": True, "ground-truth student": False}
"""The students a run may train, and whether each has the cross-task ranking heads."""


def restore(job: MultiTaskJob, out: Path, seed: int) -> dict[str, tuple[nn.Module, Splits]]:
    """The models a finished run kept for ``seed``, by role (``"<task> teacher"``, ``"<task> student"``, ...), in
    eval mode, each with its task's splits: what ``mentor eval`` measures."""
    data, folder = job.load_data(seed), out / "checkpoints" / f"seed{seed}"
    layout = Layout(widths(job.tasks, data))

    def loaded(model: Model, stage: str) -> Model:
        model.load_state_dict(checkpoint.load_kept(folder / stage.replace(" ", "-"))["models"]["student"])
        return model.eval()

    models: dict[str, tuple[nn.Module, Splits]] = {}
    for task in job.tasks:
        splits = data.tasks[task.name]
        teacher = job.teacher(1 if task.regression else splits.num_classes, splits.input_shape)
        models[f"{task.name} teacher"] = (loaded(teacher, f"teacher {task.name}"), splits)
    for role, cross in STUDENTS.items():
        if (folder / role.replace(" ", "-")).is_dir():
            student = loaded(new_student(job, layout, data, cross), role)
            for task in job.tasks:
                models[f"{task.name} {role}"] = (TaskHead(student, task.name).eval(), data.tasks[task.name])
    return models


def variance(targets: Any) -> float:
    """The variance of regression targets (at least 1e-6: a constant target keeps its loss finite)."""
    return max(float(targets.float().var()), 1e-6) if len(targets) > 1 else 1.0


def multitask(
    tasks: list[Task],
    teacher: str = "cnn-small",
    student: str = "cnn-multi-head",
    *,
    pool_fraction: float = 0.5,
    validation: float = 0.1,
    limit: int | None = None,
    cross_task: CrossTask | bool = False,
    ground_truth: bool = True,
    teacher_options: dict[str, Any] | None = None,
    student_options: dict[str, Any] | None = None,
    teacher_train: dict[str, Any] | None = None,
    latency_batch: int = 256,
    settings: FitSettings | None = None,
    **options: Any,
) -> MultiTaskResult:
    """Specialist teachers, MuST pseudo labels and a multi-head student (module docstring).

    Args:
        tasks: the :class:`~mentor.pipelines.multitask_data.Task` list (name, dataset, target, weight).
        teacher: every specialist's registered model name (``teacher_options`` its options).
        student: the multi-head student's model name (``cnn-multi-head``; its heads are made from the tasks).
        pool_fraction: share of each dataset's training split that goes, unlabelled, to the shared pool (½: as
            many unlabelled as labelled images per dataset; MuST's pools are larger than its labelled sets, here
            a larger pool would leave the teachers less to learn from).
        validation: share of each training split held out (teachers' weight selection, calibration; the
            project's default 0.1).
        limit: keep only this many training and test samples of each dataset (quick runs).
        cross_task: also train a cross-task KD student (``True``: default :class:`CrossTask`).
        ground_truth: also train the student on the teachers' labelled data directly (the baseline).
        teacher_options: options of the teachers' model.
        student_options: options of the student's model (e.g. ``channels``).
        teacher_train: the teachers' training keywords (default: the same as the student's).
        latency_batch: batch size of the latency measurement.
        settings: ready :class:`~mentor.engine.FitSettings` of the students, instead of keywords.
        **options: any key of a recipe's ``train`` section, for the students (and the teachers by default).

    Returns:
        a :class:`MultiTaskResult`: ``table()``, ``parameter_ratio()``, ``models["<task> <role>"]``.
    """
    from mentor.models import create
    from mentor.pipelines.options import settings as keyword_settings

    fit_settings = keyword_settings(settings, caller="mentor.pipelines.multitask", **options)
    teacher_settings = keyword_settings(None, caller="mentor.pipelines.multitask teacher_train",
                                        **{"seed": fit_settings.seed, **teacher_train}) \
        if teacher_train is not None else fit_settings
    job = MultiTaskJob(
        name="multitask", seeds=[fit_settings.seed], tasks=list(tasks),
        load_data=functools.lru_cache(maxsize=1)(lambda seed: task_data(list(tasks), seed, validation, limit,
                                                                         pool_fraction)),
        teacher=lambda outputs, shape: create(teacher, outputs, shape, **(teacher_options or {})),
        student=lambda heads, shape: create(student, 1, shape, **{"heads": heads, **(student_options or {})}),
        teacher_settings=teacher_settings, settings=fit_settings,
        cross_task=CrossTask() if cross_task is True else cross_task or None,
        ground_truth=ground_truth, latency_batch=latency_batch)
    check_job(job)
    return run(job, None, echo=lambda line: None)
