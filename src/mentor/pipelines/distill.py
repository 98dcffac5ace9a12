"""Knowledge distillation as a pipeline (survey §2.1): train or load a teacher, train the student alone
as the baseline, distill the teacher into the student, and compare all three on the test set.

Every model of the run is trained by the same loop (:func:`mentor.engine.fit`) through the offline
scheme; multi-stage methods run their stages one after the other with a fresh optimizer each.
"""

from __future__ import annotations

import copy
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mentor.data import Splits
from mentor.engine import (
    FitResult,
    FitSettings,
    MetricsLog,
    OptimizerSettings,
    SchedulerSettings,
    evaluate,
    fit,
    latency,
    seed_everything,
)
from mentor.errors import MentorError, clip
from mentor.knowledge import Plan, Stage, as_stages
from mentor.losses import CE, Objective
from mentor.models import count_parameters
from mentor.report import mean_std, render
from mentor.schemes import Offline

ROLES = ("teacher", "student alone", "student distilled")


def stage_epochs(stages: list[Stage], epochs: int) -> list[int]:
    """Epochs of each stage: fixed ones as given, the rest of ``epochs`` shared by the open-ended ones."""
    fixed = sum(stage.epochs or 0 for stage in stages)
    open_ended = [stage for stage in stages if stage.epochs is None]
    left = epochs - fixed
    if left < len(open_ended) or (not open_ended and left < 0):
        names = ", ".join(f"{s.name}={s.epochs}" for s in stages if s.epochs)
        raise MentorError(f"train.epochs={epochs} leaves no epochs after the fixed stages ({names}); "
                          "raise train.epochs")
    shares = [left // len(open_ended) + (1 if i < left % len(open_ended) else 0) for i in range(len(open_ended))]
    it = iter(shares)
    return [stage.epochs if stage.epochs is not None else next(it) for stage in stages]


def fit_plan(
    model: nn.Module,
    data: Splits,
    settings: FitSettings,
    plan: Plan | None = None,
    teacher: nn.Module | None = None,
    log: MetricsLog | None = None,
    checkpoints: Path | None = None,
) -> list[FitResult]:
    """Train ``model`` through each stage of ``plan`` (default: cross-entropy only), one loop call per stage."""
    stages = as_stages(plan if plan is not None else Objective(CE()))
    results = []
    for stage, epochs in zip(stages, stage_epochs(stages, settings.epochs), strict=True):
        scheme = Offline(model, stage.objective, teacher if stage.objective.needs_teacher else None)
        folder = checkpoints / stage.name if checkpoints is not None and len(stages) > 1 else checkpoints
        results.append(fit(scheme, data.train, data.validation, replace(settings, epochs=epochs),
                           log=log, checkpoints=folder, stage=stage.name))
    return results


@dataclass
class Measured:
    """Test metrics of one trained model."""

    role: str
    seed: int
    accuracy: float
    parameters: int
    latency_ms: float
    best_epoch: int


def measure(role: str, seed: int, model: nn.Module, data: Splits, latency_batch: int, best_epoch: int = 0) -> Measured:
    """Evaluate ``model`` on the test set and time one inference batch."""
    batch = data.test.inputs[:latency_batch]
    return Measured(role, seed, evaluate(model, data.test)["accuracy"], count_parameters(model),
                    latency(model, batch), best_epoch)


@dataclass
class Result:
    """Test results of the models of a run, over one or several seeds."""

    rows: list[Measured] = field(default_factory=list)

    def by_role(self) -> dict[str, list[Measured]]:
        roles: dict[str, list[Measured]] = {}
        for row in self.rows:
            roles.setdefault(row.role, []).append(row)
        return roles

    def summary(self) -> dict[str, Any]:
        """Per role: accuracies by seed, mean, std, parameters and median latency."""
        out: dict[str, Any] = {}
        for role, rows in self.by_role().items():
            accuracies = [r.accuracy for r in rows]
            out[role] = {
                "seeds": [r.seed for r in rows],
                "accuracy": accuracies,
                "accuracy_mean": statistics.fmean(accuracies),
                "accuracy_std": statistics.stdev(accuracies) if len(rows) > 1 else 0.0,
                "parameters": rows[0].parameters,
                "latency_ms": statistics.median(r.latency_ms for r in rows),
                "best_epochs": [r.best_epoch for r in rows],
            }
        return out

    def table(self) -> str:
        """Accuracy (mean ± std over seeds), parameter count and inference latency per batch."""
        rows = []
        for role, rows_of_role in self.by_role().items():
            rows.append([
                role,
                mean_std([r.accuracy for r in rows_of_role], scale=100.0),
                f"{rows_of_role[0].parameters:,}",
                f"{statistics.median(r.latency_ms for r in rows_of_role):.3f}",
            ])
        seeds = len({r.seed for r in self.rows})
        accuracy = f"test accuracy % ({seeds} seed{'s' if seeds > 1 else ''})"
        header = ["model", accuracy, "parameters", "latency ms/batch"]
        return render(header, rows)


def settings(
    epochs: int = 10,
    batch_size: int = 64,
    optimizer: str = "adam",
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    scheduler: str = "constant",
    seed: int = 0,
    progress: bool = True,
) -> FitSettings:
    """Loop settings from plain keywords (the Python API's shorthand for a recipe's ``train`` section)."""
    return FitSettings(epochs=epochs, batch_size=batch_size, seed=seed, progress=progress,
                       optimizer=OptimizerSettings(name=optimizer, lr=lr, weight_decay=weight_decay),
                       scheduler=SchedulerSettings(name=scheduler))


def train(model: nn.Module, data: Splits, plan: Plan | None = None, teacher: nn.Module | None = None,
          **options: Any) -> list[FitResult]:
    """Train ``model`` on ``data`` (cross-entropy, or ``plan`` with ``teacher``); options as :func:`settings`."""
    return fit_plan(model, data, settings(**options), plan, teacher)


def distill(
    teacher: nn.Module,
    student: nn.Module,
    data: Splits,
    knowledge: Plan,
    *,
    baseline: bool = False,
    latency_batch: int = 256,
    **options: Any,
) -> Result:
    """Distill a trained ``teacher`` into ``student`` with ``knowledge`` and measure all of them.

    Args:
        teacher: any trained ``nn.Module`` (it is frozen, never changed).
        student: any ``nn.Module`` with the same number of outputs.
        data: train/validation/test splits (:func:`mentor.data.load`).
        knowledge: an Objective or stages (:func:`mentor.knowledge.create`).
        baseline: also train a copy of the untrained student alone, for comparison.
        **options: epochs, batch_size, optimizer, lr, weight_decay, scheduler, seed, progress (:func:`settings`).

    Returns:
        a :class:`Result`; ``result.table()`` prints teacher, student alone and student distilled.
    """
    fit_settings = settings(**options)
    seed = fit_settings.seed
    result = Result([measure("teacher", seed, teacher, data, latency_batch)])
    if baseline:
        alone = copy.deepcopy(student)
        fits = fit_plan(alone, data, fit_settings)
        result.rows.append(measure("student alone", seed, alone, data, latency_batch, fits[-1].best_epoch))
    fits = fit_plan(student, data, fit_settings, knowledge, teacher)
    result.rows.append(measure("student distilled", seed, student, data, latency_batch, fits[-1].best_epoch))
    return result


ModelFactory = Callable[[], nn.Module]


@dataclass
class Job:
    """Everything a distillation run needs, built and checked before anything is written."""

    name: str
    seeds: list[int]
    load_data: Callable[[int], Splits]
    teacher: ModelFactory
    teacher_checkpoint: Path | None
    teacher_settings: FitSettings
    student: ModelFactory
    plan: Callable[[], Plan]
    settings: FitSettings
    student_alone: bool = True
    latency_batch: int = 256


def run(job: Job, out: Path | None, log: MetricsLog | None = None, echo: Callable[[str], None] = print,
        resume: bool = False) -> Result:
    """Run teacher / student alone / student distilled for every seed of ``job``.

    With ``resume``, every model continues from its checkpoints in ``out`` (finished ones are loaded).
    """
    log = log or MetricsLog()
    result = Result()
    for seed in job.seeds:
        data = job.load_data(seed)
        def folder(role: str, seed: int = seed) -> Path | None:
            return out / "checkpoints" / f"seed{seed}" / role.replace(" ", "-") if out else None

        seed_everything(seed)
        teacher = job.teacher()
        if job.teacher_checkpoint is not None:
            load_teacher(teacher, job.teacher_checkpoint)
            best = 0
        else:
            best = fit_plan(teacher, data, replace(job.teacher_settings, seed=seed, resume=resume),
                            log=log.bind(run="teacher", seed=seed), checkpoints=folder("teacher"))[-1].best_epoch
        result.rows.append(measure("teacher", seed, teacher, data, job.latency_batch, best))
        echo(f"seed {seed}: teacher {result.rows[-1].accuracy:.2%}")
        roles = (["student alone"] if job.student_alone else []) + ["student distilled"]
        for role in roles:
            seed_everything(seed)
            student = job.student()
            plan = job.plan() if role == "student distilled" else None
            fits = fit_plan(student, data, replace(job.settings, seed=seed, resume=resume), plan, teacher,
                            log=log.bind(run=role.replace(" ", "-"), seed=seed), checkpoints=folder(role))
            result.rows.append(measure(role, seed, student, data, job.latency_batch, fits[-1].best_epoch))
            echo(f"seed {seed}: {role} {result.rows[-1].accuracy:.2%}")
    return result


def load_teacher(teacher: nn.Module, path: Path) -> None:
    """Load ``teacher``'s weights from a checkpoint of a Mentor run (``.../teacher/best.pt``) or a bare state dict.

    Raises:
        MentorError: when the file is not a readable checkpoint, holds several models and none is
            ``student``, or its tensors do not fit ``teacher`` (missing, unexpected or of another shape).
    """
    from mentor.engine import checkpoint

    state = checkpoint.load(path)
    weights = state.get("models", state)
    if "models" in state and len(weights) != 1 and "student" not in weights:
        raise MentorError(f"teacher.checkpoint {str(path)!r} holds several models ({', '.join(sorted(weights))}); "
                          "give the checkpoint of one model, e.g. checkpoints/seed0/teacher/best.pt")
    if "models" in state:
        weights = weights["student"] if "student" in weights else next(iter(weights.values()))
    expected = teacher.state_dict()
    missing = [key for key in expected if key not in weights]
    unexpected = [key for key in weights if key not in expected]
    reshaped = [f"{key} is {tuple(weights[key].shape)} there, {tuple(value.shape)} in the teacher"
                for key, value in expected.items() if key in weights and weights[key].shape != value.shape]
    problems = [f"{label} {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                for label, keys in (("missing", missing), ("unexpected", unexpected)) if keys] + reshaped[:2]
    if problems:
        raise MentorError(f"teacher.checkpoint {str(path)!r} was saved from another model than the teacher "
                          f"({'; '.join(problems)}); give teacher.model and teacher.options it was trained with")
    teacher.load_state_dict(weights)


def check(job: Job) -> None:
    """Build every piece once on a sample batch so that mistakes surface before a run directory exists."""
    from mentor.batch import Batch

    data = job.load_data(job.seeds[0])
    size = min(job.settings.batch_size, len(data.train))  # methods may need a full batch (ranking lists)
    sample = Batch(data.train.inputs[:size], data.train.targets[:size], torch.arange(size), len(data.train))
    teacher, student = job.teacher(), job.student()
    if job.teacher_checkpoint is not None:
        load_teacher(teacher, job.teacher_checkpoint)
    for name, model in (("teacher", teacher), ("student", student)):
        try:
            with torch.no_grad():
                logits = model.eval()(sample.inputs)
        except MentorError:
            raise
        except Exception as error:  # noqa: BLE001 - a user's model that cannot take the data
            raise MentorError(f"the {name} cannot run on {data.name} inputs of shape {tuple(data.input_shape)}: "
                              f"{type(error).__name__}: {error}") from None
        if logits.ndim != 2 or logits.shape[1] != data.num_classes:
            raise MentorError(f"the {name} outputs shape {tuple(logits.shape[1:])} but {data.name} has "
                              f"{data.num_classes} classes; set its num_classes to {data.num_classes}")
    for stage in as_stages(job.plan()):
        scheme = Offline(student, stage.objective, teacher)
        scheme.setup(sample)
        try:  # one loss on the sample: a parameter that breaks the arithmetic fails here, not after the teacher
            scheme.loss(sample, 0.0, job.settings.epochs)
        except MentorError:
            raise
        except Exception as error:  # noqa: BLE001 - reported in one line, before anything is written
            raise MentorError(f"the knowledge objective ({stage.name}) cannot be computed on a sample batch of "
                              f"{data.name}: {type(error).__name__}: {clip(str(error))}; check its params") from None
    stage_epochs(as_stages(job.plan()), job.settings.epochs)
