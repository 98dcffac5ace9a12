"""Knowledge distillation as a pipeline (survey §2.1): train or load a teacher, train the student alone
as the baseline, distill the teacher into the student, and compare all three on the test set.

Every model of the run is trained by the same loop (:func:`mentor.engine.fit`) through the offline
scheme; multi-stage methods run their stages one after the other with a fresh optimizer each.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from mentor.batch import Batch, call
from mentor.data import ArrayDataset, Splits
from mentor.data.streamed import TorchData, first_samples, sized
from mentor.engine import FitResult, FitSettings, MetricsLog, checkpoint, evaluating, fit, seed_everything
from mentor.engine.settings import resolve_device
from mentor.errors import MentorError, clip
from mentor.knowledge import Plan, Stage, as_stages
from mentor.losses.regression import supervised_objective
from mentor.outputs import pick
from mentor.pipelines import multi, output
from mentor.pipelines.options import settings as keyword_settings
from mentor.pipelines.options import train_section
from mentor.pipelines.result import Measured, Result, measure
from mentor.schemes import Offline
from mentor.teachers.frozen import teachers_in

if TYPE_CHECKING:
    from mentor.teachers.assistant import Assistant
    from mentor.teachers.student_friendly import StudentFriendlyTeacher

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
    """Train ``model`` through each stage of ``plan`` (default: cross-entropy only, or the squared error for
    regression targets), one loop call per stage."""
    stages = as_stages(plan if plan is not None else supervised_objective(first_samples(data.train, 1)[1]))
    results = []
    for stage, epochs in zip(stages, stage_epochs(stages, settings.epochs), strict=True):
        scheme = Offline(model, stage.objective, teacher if stage.objective.needs_teacher else None)
        folder = checkpoints / stage.name if checkpoints is not None and len(stages) > 1 else checkpoints
        results.append(fit(scheme, data.train, data.validation, replace(settings, epochs=epochs),
                           log=log, checkpoints=folder, stage=stage.name))
    return results


ModelFactory = Callable[[], nn.Module]


@dataclass
class Job:
    """Everything a distillation run needs, built and checked before anything is written.

    ``teacher_settings`` ``None`` means the teacher is given trained (the Python API); otherwise it is
    loaded from ``teacher_checkpoint`` or trained with these settings (with student branches when
    ``student_friendly`` is set: :mod:`mentor.teachers.student_friendly`). ``alone`` builds the student
    trained alone (default: ``student``). With ``assistants`` the student is also distilled through them
    (:mod:`mentor.teachers.assistant`), each stage with a fresh plan from ``chain_plan`` (default: ``plan``).
    """

    name: str
    seeds: list[int]
    load_data: Callable[[int], Splits]
    teacher: ModelFactory
    teacher_checkpoint: Path | None
    teacher_settings: FitSettings | None
    student: ModelFactory
    plan: Callable[[], Plan]
    settings: FitSettings
    student_alone: bool = True
    latency_batch: int = 256
    alone: ModelFactory | None = None
    members: list[multi.Member] | None = None  # several teachers: ``teacher`` builds their Ensemble
    student_friendly: StudentFriendlyTeacher | None = None
    assistants: list[Assistant] = field(default_factory=list)
    chain_plan: Callable[[], Plan] | None = None


def run(job: Job, out: Path | None, log: MetricsLog | None = None, echo: Callable[[str], None] = print,
        resume: bool = False) -> Result:
    """Run teacher / student alone / student distilled for every seed of ``job``.

    With ``resume``, every model continues from its checkpoints in ``out`` (finished ones are loaded).
    """
    log = log or MetricsLog()
    result = Result(records=log.records)
    for seed in job.seeds:
        data = job.load_data(seed)
        def folder(role: str, seed: int = seed) -> Path | None:
            return out / "checkpoints" / f"seed{seed}" / role.replace(" ", "-") if out else None

        seed_everything(seed)
        teacher, best = job.teacher(), 0
        if job.members is not None:
            multi.train_members(teacher, job.members, data, seed, resume, log, folder)  # type: ignore[arg-type]
        elif job.teacher_checkpoint is not None:
            load_teacher(teacher, job.teacher_checkpoint)
        elif job.teacher_settings is None:
            keep_teacher(teacher, folder("teacher"))
        else:
            train_teacher = job.student_friendly.fit if job.student_friendly is not None else fit_plan
            best = train_teacher(teacher, data, replace(job.teacher_settings, seed=seed, resume=resume),
                                 log=log.bind(run="teacher", seed=seed), checkpoints=folder("teacher"))[-1].best_epoch
        multi.measure_members(teacher, seed, data, result, job.latency_batch, echo)
        measured = result.add(measure("teacher", seed, teacher, data, job.latency_batch, best), teacher)
        echo(f"seed {seed}: teacher {measured.headline}")
        roles = (["student alone"] if job.student_alone else []) + ["student distilled"]
        for role in roles:
            seed_everything(seed)
            distilled = role == "student distilled"
            student = job.student() if distilled or job.alone is None else job.alone()
            plan = job.plan() if distilled else None
            if plan is not None:
                multi.fit_domains(plan, job.members, data, seed)
            fits = fit_plan(student, data, replace(job.settings, seed=seed, resume=resume), plan, teacher,
                            log=log.bind(run=role.replace(" ", "-"), seed=seed), checkpoints=folder(role))
            measured = result.add(measure(role, seed, student, data, job.latency_batch, fits[-1].best_epoch), student)
            echo(f"seed {seed}: {role} {measured.headline}")
        if job.assistants:
            from mentor.teachers.assistant import Chain, train_chain  # the chain calls back into fit_plan

            def report(measured: Measured, model: nn.Module, seed: int = seed) -> None:
                result.add(measured, model)
                echo(f"seed {seed}: {measured.role} {measured.headline}")

            chain = Chain(job.assistants, job.alone or job.student, job.chain_plan or job.plan, job.settings,
                          job.latency_batch)
            train_chain(chain, teacher, data, seed, log=log, folder=folder, resume=resume, report=report)
    return result


def keep_teacher(teacher: nn.Module, folder: Path | None) -> None:
    """Save a given, trained teacher's weights with the run (``teacher/best.pt``), as a trained one's are."""
    if folder is not None:
        checkpoint.save({"models": {"teacher": teacher.state_dict()}, "epoch": 0}, folder / "best.pt")


def load_teacher(teacher: nn.Module, path: Path) -> None:
    """Load ``teacher``'s weights from a checkpoint of a Mentor run (``.../teacher/best.pt``) or a bare state dict.

    Raises:
        MentorError: when the file is not a readable checkpoint, holds several models and none is
            ``student``, or its tensors do not fit ``teacher`` (missing, unexpected or of another shape).
    """
    from mentor.engine import checkpoint

    state = checkpoint.load(path)
    weights = state.get("models", state)
    if "models" in state and len(weights) != 1 and "student" not in weights and "teacher" not in weights:
        raise MentorError(f"teacher.checkpoint {str(path)!r} holds several models ({', '.join(sorted(weights))}); "
                          "give the checkpoint of one model, e.g. checkpoints/seed0/teacher/best.pt")
    if "models" in state:  # a trained model is "student" in its scheme, a student-friendly teacher "teacher"
        weights = weights.get("student", weights.get("teacher", next(iter(weights.values()))))
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


def sample_batch(train: ArrayDataset | TorchData, batch_size: int) -> Batch:
    """The first ``batch_size`` training samples as a batch (what set-up and checks run on)."""
    size = min(batch_size, sized(train) or batch_size)  # methods may need a full batch (ranking lists)
    inputs, targets = first_samples(train, size)
    return Batch(inputs, targets, torch.arange(len(targets)), sized(train))


def check_outputs(name: str, model: nn.Module, data: Splits, sample: Batch, classes: bool = True) -> torch.Tensor:
    """``model`` must map ``data``'s inputs to a tensor, logits ``(B, K)`` with ``classes``: a one-line error
    otherwise. Its outputs on ``sample``."""
    try:
        with evaluating(model), torch.no_grad():
            logits = pick(call(model, sample.inputs), role=name)  # a ModelOutput, dict or tuple: its logits
    except MentorError:
        raise
    except Exception as error:  # noqa: BLE001 - a user's model that cannot take the data
        raise MentorError(f"the {name} cannot run on {data.name} inputs of shape {tuple(data.input_shape)}: "
                          f"{type(error).__name__}: {clip(str(error))}") from None
    if classes and (logits.ndim != 2 or logits.shape[1] != data.num_classes):
        what = "regression targets" if sample.targets.is_floating_point() else "classes"
        raise MentorError(f"the {name} outputs shape {tuple(logits.shape[1:])} but {data.name} has "
                          f"{data.num_classes} {what}; set its num_classes to {data.num_classes}")
    return logits


def check_device(*fits: FitSettings | None) -> None:
    """The devices asked for exist (a missing CUDA fails now, before anything trains or is written)."""
    for settings in fits:
        if settings is not None:
            resolve_device(settings.device)


def check(job: Job) -> None:
    """Build every piece once on a sample batch so that mistakes surface before a run directory exists."""
    check_device(job.settings, job.teacher_settings, *(assistant.settings for assistant in job.assistants))
    data = job.load_data(job.seeds[0])
    sample = sample_batch(data.train, job.settings.batch_size)
    teacher, student = job.teacher(), (job.alone or job.student)()
    if job.teacher_checkpoint is not None:
        load_teacher(teacher, job.teacher_checkpoint)
    if job.members is not None:
        multi.check_members(teacher, job.members, data, job.seeds[0])  # type: ignore[arg-type]
    assistants = [(f"assistant{index}", assistant.model()) for index, assistant in enumerate(job.assistants)]
    for name, model in (*multi.named_teachers(teacher), ("student", student), *assistants):
        check_outputs(name, model, data, sample)
    if job.student_friendly is not None and job.teacher_settings is not None and job.teacher_checkpoint is None:
        job.student_friendly.check(teacher, sample)
    plan = job.plan()
    multi.fit_domains(plan, job.members, data, job.seeds[0])
    for stage in as_stages(plan):
        scheme = Offline(student, stage.objective, teacher)
        try:
            scheme.setup(sample)
            scheme.loss(sample, 0.0, job.settings.epochs)  # a parameter that breaks the arithmetic fails here
        except MentorError:
            raise
        except Exception as error:  # noqa: BLE001 - reported in one line, before anything is written
            raise MentorError(f"the knowledge objective ({stage.name}) cannot be computed on a sample batch of "
                              f"{data.name}: {type(error).__name__}: {clip(str(error))}; check its params") from None
        finally:
            for frozen in teachers_in(scheme):
                frozen.release()
    if assistants:
        from mentor.teachers.assistant import check_chain

        check_chain([teacher, *(model for _, model in assistants), student], job.plan, sample, data.name,
                    job.settings.epochs)
    stage_epochs(as_stages(job.plan()), job.settings.epochs)


def train(model: nn.Module, data: Splits, plan: Plan | None = None, teacher: nn.Module | None = None, *,
          name: str = "model", latency_batch: int = 256, settings: FitSettings | None = None,
          **options: Any) -> Result:
    """Train ``model`` on ``data`` in place (cross-entropy, or ``plan`` with ``teacher``) and measure it.

    Args:
        model: any ``nn.Module`` mapping ``data``'s inputs to logits ``(B, K)``.
        data: train/validation/test splits (:func:`mentor.data.load`).
        plan: what to minimize (default: cross-entropy); an Objective or stages.
        teacher: the trained teacher ``plan`` reads (frozen while it is used, then given back as it was).
        name: the model's name in the result and its records.
        latency_batch: batch size of the latency measurement.
        settings: ready :class:`~mentor.engine.FitSettings`, instead of keywords.
        **options: any key of a recipe's ``train`` section (:func:`mentor.pipelines.options.settings`).

    Returns:
        a :class:`Result`: ``table()``, ``history(name)`` (each epoch's loss terms), ``models[name]``.
    """
    fit_settings = keyword_settings(settings, caller="mentor.train", **options)
    check_device(fit_settings)
    sample = sample_batch(data.train, fit_settings.batch_size)
    check_outputs("model", model, data, sample)
    log = MetricsLog()
    fits = fit_plan(model, data, fit_settings, plan, teacher, log=log.bind(run=name.replace(" ", "-"),
                                                                            seed=fit_settings.seed))
    result = Result(records=log.records)
    result.add(measure(name, fit_settings.seed, model, data, latency_batch, fits[-1].best_epoch), model)
    return result


def distill(
    teacher: nn.Module,
    student: nn.Module,
    data: Splits,
    knowledge: Plan,
    *,
    assistants: list[nn.Module] | None = None,
    baseline: bool = False,
    latency_batch: int = 256,
    out: str | Path | None = None,
    resume: bool = False,
    name: str = "distill",
    settings: FitSettings | None = None,
    **options: Any,
) -> Result:
    """Distill a trained ``teacher`` into ``student`` with ``knowledge`` and measure all of them.

    Everything is checked on a sample batch before anything trains: module paths, shapes, the device.

    Args:
        teacher: any trained ``nn.Module`` (frozen while it teaches, then given back as it was).
        student: any ``nn.Module`` with the same number of outputs (trained in place).
        data: train/validation/test splits (:func:`mentor.data.load`).
        knowledge: an Objective or stages (:func:`mentor.knowledge.create`).
        assistants: untrained teacher assistants, largest first (TAKD, :mod:`mentor.teachers.assistant`):
            each is distilled from the one before (the first from ``teacher``), then a fresh copy of the
            untrained student from the last, every stage with a fresh copy of ``knowledge``; the result gains
            ``assistant0``, ... and ``student via assistants`` beside ``student distilled``.
        baseline: also train a copy of the untrained student alone, for comparison.
        latency_batch: batch size of the latency measurement.
        out: a run directory to write (checkpoints, ``metrics.jsonl``, ``summary.json``, ``recipe.yaml``),
            so the run can be resumed, evaluated, exported and reported like one of ``mentor run``.
        resume: continue the run in ``out`` from its checkpoints.
        name: the run's name (its recipe name in ``out``).
        settings: ready :class:`~mentor.engine.FitSettings`, instead of keywords.
        **options: any key of a recipe's ``train`` section: ``epochs``, ``batch_size``, ``optimizer``,
            ``lr``, ``momentum``, ``nesterov``, ``weight_decay``, ``scheduler``, ``clip_grad_norm``,
            ``jitter``, ``device``, ``precision``, ``channels_last``, ``compile``, ``teacher_cache``; and
            ``seed``, ``progress``, ``augment`` (:func:`mentor.pipelines.options.settings`).

    Returns:
        a :class:`Result`: ``table()`` (teacher, student alone, student distilled), ``accuracies()``,
        ``history("student distilled")`` (each epoch's loss terms), ``models``.
    """
    from mentor.teachers.assistant import Assistant

    if assistants is not None and not (isinstance(assistants, (list, tuple))
                                       and all(isinstance(model, nn.Module) for model in assistants)):
        raise MentorError("The 'assistants' parameter of mentor.distill must be a list of nn.Module (untrained "
                          f"teacher assistants). Got {type(assistants).__name__} instead.")
    fit_settings = keyword_settings(settings, caller="mentor.distill", **options)
    initial, pristine = copy.deepcopy(student), copy.deepcopy(knowledge)
    chain = [Assistant(lambda model=model: model) for model in assistants or []]
    job = Job(name=name, seeds=[fit_settings.seed], load_data=lambda seed: data, teacher=lambda: teacher,
              teacher_checkpoint=None, teacher_settings=None, student=lambda: student, plan=lambda: knowledge,
              settings=fit_settings, student_alone=baseline, latency_batch=latency_batch,
              alone=lambda: copy.deepcopy(initial), assistants=chain, chain_plan=lambda: copy.deepcopy(pristine))
    check(replace(job, plan=lambda: copy.deepcopy(knowledge)))  # on a copy: a check's loss may move state (banks)
    folder = Path(out) if out is not None else None
    if folder is None:
        return run(job, None, echo=lambda line: None)
    output.prepare(folder, resume, "mentor.distill")
    teacher_file = folder.resolve() / "checkpoints" / f"seed{fit_settings.seed}" / "teacher" / "best.pt"
    teacher_section = output.model_section(teacher)
    if teacher_section is not None:
        teacher_section["checkpoint"] = str(teacher_file)
    sections = {"teacher": teacher_section, "student": output.model_section(student),
                "knowledge": output.plan_section(knowledge), "train": train_section(fit_settings)}
    if assistants:
        sections["assistants"] = [output.model_section(model) for model in assistants]
    rest = {"name": name, "compare": {"student_alone": baseline}, "latency_batch": latency_batch}
    output.write_recipe(folder, output.describe("mentor.distill", data, fit_settings.seed, sections, rest))
    started = time.perf_counter()
    result = run(job, folder, MetricsLog(folder / "metrics.jsonl"), echo=lambda line: None, resume=resume)
    output.write_summary(folder, name, time.perf_counter() - started, result.summary())
    return result
