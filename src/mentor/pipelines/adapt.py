"""Knowledge adaptation as a pipeline (survey §2.3): a teacher learns a labeled source domain, students learn
to do well on an unlabeled target domain from it, and an oracle learns the target's labels for reference.

Stages of one seed, each one loop call with its checkpoints in ``out/checkpoints/seed<S>/<stage>/`` (a resumed
run loads the finished ones):

1. ``teacher``: the teacher's model, cross-entropy on the source (selected on the source validation split);
   measured on the target test split, it is the source-only baseline (row ``teacher``);
2. one stage per entry of ``methods`` (rows ``student <method>``; :mod:`mentor.pipelines.adapt_schemes`):

   * ``teacher-student`` — Li et al. 2017 (Interspeech, arXiv:1708.05466), unpaired: a fresh student matches the
     frozen teacher's posteriors on target inputs;
   * ``curriculum`` — the same, the batches drawn from the part of the target a curriculum teacher chooses from
     the student's learning progress (Matiisen et al. 2017, arXiv:1707.00183, :mod:`~.adapt_curriculum`);
   * ``mean-teacher`` — French et al. 2018 (ICLR, arXiv:1706.05208): source CE plus consistency with an EMA
     teacher on target inputs; the EMA model is the one measured (as the paper reports);
   * ``adversarial`` — Tsai et al. 2018 (CVPR): source CE plus fooling a discriminator of softmax outputs;
   * ``multi-source`` — Ruder, Ghaffari & Breslin 2017 (arXiv:1702.02052): one teacher per rendering of the
     source (``sources``; ``teacher-<variant>`` stages, rows ``teacher <variant>``), weighted by the domain
     similarity of each rendering's inputs to the target's (:mod:`mentor.teachers.weighting.domain`, row
     ``teachers weighted``); a fresh student matches the weighted mixture Σ_m w_m softmax(T_m(x)) on target
     inputs. The paper's second part (trusting examples by their teachers' agreement) is not implemented.

   ``mean-teacher`` and ``adversarial`` start from the trained teacher's weights (so the student must be the
   teacher's architecture): the papers train the network with source labels from the start; starting from the
   source model spends no epochs of the short runs here relearning the source. The others start fresh: a
   student starting as the teacher would already match it on every input;
3. ``oracle``: the teacher's model trained with the target's labels, with the students' settings (as many passes
   over the target), selected on the target validation split.

No adapted stage reads a target label: its training samples carry target −1 and it has no validation split,
so its last weights are kept.

Normalization (``normalize``) must be one choice for both domains, made explicit: ``source`` (the default)
standardizes the target with the source's training mean and std, so a pixel value means to the teacher what it
meant on the source; ``own`` standardizes it with its own training inputs' statistics (what
:func:`mentor.data.load` does for every dataset; it needs no label and removes the domains' first-order
intensity difference). Measured with a cnn-medium teacher on 10,000 MNIST images (3 epochs, seed 0): 38.3 % on
digits-28's test split with ``source``, 26.3 % with ``own`` (cnn-small: 18.3 % and 15.8 %), hence the default.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pydantic
from torch import nn

from mentor.data import Splits
from mentor.engine import FitSettings, MetricsLog, fit, seed_everything
from mentor.errors import MentorError
from mentor.pipelines.adapt_curriculum import OnlineCurriculum
from mentor.pipelines.adapt_data import align, confidence_tasks, rendered, unlabeled
from mentor.pipelines.adapt_schemes import DomainScheme, Mixture, OutputAdversarial, SelfEnsembling, TeacherStudent
from mentor.pipelines.distill import check_device, check_outputs, fit_plan, sample_batch
from mentor.pipelines.result import Result, measure
from mentor.recipes.schema import Adapt
from mentor.schemes.online.peers import Distortion
from mentor.teachers.weighting.domain import domain

ModelFactory = Callable[[], nn.Module]
FROM_TEACHER = ("mean-teacher", "adversarial")
"""Methods whose student starts from the trained teacher's weights."""


@dataclass
class AdaptJob:
    """Everything an adaptation run needs, checked by :func:`check_job` before anything is written.

    ``load_domains(seed)`` gives the (source, target) splits, the target already standardized as ``spec.normalize``
    says (:func:`align`).
    """

    name: str
    seeds: list[int]
    load_domains: Callable[[int], tuple[Splits, Splits]]
    teacher: ModelFactory
    student: ModelFactory
    teacher_settings: FitSettings
    settings: FitSettings
    spec: Adapt
    latency_batch: int = 256


def check_job(job: AdaptJob) -> None:
    """One-line errors for what cannot work, before anything trains or is written."""
    check_device(job.settings, job.teacher_settings)
    for key, settings in (("train.epochs", job.settings), ("teacher.train.epochs", job.teacher_settings)):
        if settings.epochs < 1:
            raise MentorError(f"{key} must be at least 1 (every stage trains); got {settings.epochs}")
    source, target = job.load_domains(job.seeds[0])
    if tuple(source.input_shape) != tuple(target.input_shape):
        raise MentorError(f"the target {target.name} has inputs of shape {tuple(target.input_shape)} but the source "
                          f"{source.name} (the teacher's data) has {tuple(source.input_shape)}; give a target with "
                          f"the source's input shape (e.g. digits-28 for mnist)")
    if source.num_classes != target.num_classes:
        raise MentorError(f"the target {target.name} has {target.num_classes} classes but the source {source.name} "
                          f"has {source.num_classes}; adaptation keeps the classes: give a target with the same ones")
    teacher, student = job.teacher(), job.student()
    check_outputs("teacher", teacher, source, sample_batch(source.train, job.settings.batch_size))
    check_outputs("student", student, target, sample_batch(target.train, job.settings.batch_size))
    methods = job.spec.methods
    if any(method in FROM_TEACHER for method in methods):
        try:
            copy.deepcopy(student).load_state_dict(teacher.state_dict())
        except RuntimeError:
            raise MentorError(f"adapt.methods {[m for m in methods if m in FROM_TEACHER]} start the student from the "
                              "teacher's weights, but the student is another architecture; give the student the "
                              "teacher's model and options") from None
    if "multi-source" in methods and "low-resolution" in job.spec.sources and tuple(source.input_shape) != (1, 28, 28):
        raise MentorError(f"adapt.sources 'low-resolution' renders 28x28 grey images; the source has "
                          f"{tuple(source.input_shape)}; remove it from adapt.sources")
    if "curriculum" in methods and len(target.train) < job.spec.tasks:
        raise MentorError(f"adapt.tasks ({job.spec.tasks}) is more than the {len(target.train)} target training "
                          "samples; choose fewer tasks")


def run(job: AdaptJob, out: Path | None, log: MetricsLog | None = None, echo: Callable[[str], None] = print,
        resume: bool = False) -> Result:
    """Teacher, adapted students and oracle for every seed of ``job`` (module docstring)."""
    log = log or MetricsLog()
    result = Result(records=log.records)
    for seed in job.seeds:
        source, target = job.load_domains(seed)

        def folder(stage: str, seed: int = seed) -> Path | None:
            return out / "checkpoints" / f"seed{seed}" / stage if out is not None else None

        def report(role: str, model: nn.Module, best_epoch: int = 0, seed: int = seed,
                   target: Splits = target) -> None:
            measured = result.add(measure(role, seed, model, target, job.latency_batch, best_epoch), model)
            echo(f"seed {seed}: {role} {measured.headline}")

        teacher_settings = replace(job.teacher_settings, seed=seed, resume=resume)
        teachers: dict[str, nn.Module] = {}
        for variant in (job.spec.sources if "multi-source" in job.spec.methods else ["none"]):
            seed_everything(seed)
            model, stage = job.teacher(), "teacher" if variant == "none" else f"teacher-{variant}"
            best = fit_plan(model, rendered(source, variant), teacher_settings, log=log.bind(run=stage, seed=seed),
                            checkpoints=folder(stage))[-1].best_epoch
            teachers[variant] = model
            report(stage.replace("-", " ", 1), model, best)
        if "none" not in teachers:
            seed_everything(seed)
            teachers["none"] = model = job.teacher()
            best = fit_plan(model, source, teacher_settings, log=log.bind(run="teacher", seed=seed),
                            checkpoints=folder("teacher"))[-1].best_epoch
            report("teacher", model, best)
        for method in job.spec.methods:
            seed_everything(seed)
            scheme = build_scheme(method, job, teachers, source, target, seed)
            stage = f"student-{method}"
            fit(scheme, unlabeled(target.train), None, replace(job.settings, seed=seed, resume=resume),
                log=log.bind(run=stage, seed=seed), checkpoints=folder(stage), stage=method)
            report(f"student {method}", next(iter(scheme.predictors().values())), job.settings.epochs)
            if isinstance(scheme, TeacherStudent) and isinstance(scheme.teacher.model, Mixture):
                mixture = scheme.teacher.model
                weights = ", ".join(f"{v} {float(w):.3f}" for v, w in zip(job.spec.sources, mixture.weights,
                                                                           strict=True))
                echo(f"seed {seed}: domain weights {weights}")
                report("teachers weighted", mixture)
        if job.spec.oracle:
            seed_everything(seed)
            oracle = job.teacher()
            best = fit_plan(oracle, target, replace(job.settings, seed=seed, resume=resume),
                            log=log.bind(run="oracle", seed=seed),
                            checkpoints=folder("oracle"))[-1].best_epoch
            report("oracle", oracle, best)
    return result


def build_scheme(method: str, job: AdaptJob, teachers: dict[str, nn.Module], source: Splits, target: Splits,
                 seed: int) -> DomainScheme:
    """The scheme of one adaptation stage (:mod:`mentor.pipelines.adapt_schemes`), its student initialized."""
    spec, teacher, student = job.spec, teachers["none"], job.student()
    if method in FROM_TEACHER:
        student.load_state_dict(teacher.state_dict())
    if method == "teacher-student":
        return TeacherStudent(student, teacher, seed)
    if method == "curriculum":
        tasks = confidence_tasks(teacher, target.train.inputs, spec.tasks)
        chooser = OnlineCurriculum(spec.tasks, spec.alpha, spec.epsilon, seed)
        return TeacherStudent(student, teacher, seed, chooser, tasks, target.train, spec.interval, spec.probe)
    if method == "mean-teacher":
        return SelfEnsembling(student, source.train, seed, spec.consistency, spec.confidence, spec.class_balance,
                              spec.decay, Distortion(shift=spec.shift, noise=spec.noise))
    if method == "adversarial":
        return OutputAdversarial(student, source.train, seed, target.num_classes, spec.adversarial_weight,
                                 spec.discriminator_lr)
    members = [teachers[variant] for variant in spec.sources]
    weighting = domain(len(members), sources=[rendered(source, v).train.inputs for v in spec.sources],
                       target=target.train.inputs, bins=spec.bins)
    weights = weighting.weights.clone()
    mixture = Mixture(members, weights)
    return TeacherStudent(student, mixture, seed)


def adapt(
    source: Splits,
    target: Splits,
    teacher: nn.Module | ModelFactory,
    student: nn.Module | ModelFactory | None = None,
    *,
    teacher_train: dict[str, Any] | None = None,
    latency_batch: int = 256,
    settings: FitSettings | None = None,
    **options: Any,
) -> Result:
    """Train ``teacher`` on ``source``, adapt students to the unlabeled ``target`` and measure them on its test split.

    Args:
        source: labeled source splits (:func:`mentor.data.load`), the teacher's data.
        target: target splits with the source's input shape and classes; their labels are read only by the oracle
            and the evaluation.
        teacher: the teacher's architecture: a model (each stage trains a fresh deep copy) or a function returning
            a fresh model; the oracle uses it too.
        student: the student's architecture, the same kinds (default: the teacher's).
        teacher_train: the source teachers' training keywords (default: the students').
        latency_batch: batch size of the latency measurement.
        settings: ready :class:`~mentor.engine.FitSettings` of the students, instead of keywords.
        **options: any key of a recipe's ``adapt`` section but ``target`` (``methods``, ``normalize``, ``oracle``,
            ``consistency``, ...), and any key of its ``train`` section for the students.

    Returns:
        a :class:`Result` with the rows ``teacher`` (source only), ``student <method>`` per method, ``oracle``.
    """
    from mentor.pipelines.options import settings as keyword_settings

    keys = [key for key in Adapt.model_fields if key != "target"]
    chosen = {key: options.pop(key) for key in keys if key in options}
    try:
        spec = Adapt(**chosen)
    except pydantic.ValidationError as error:
        first = error.errors()[0]
        raise MentorError(f"The {first['loc'][0]!r} parameter of mentor.pipelines.adapt is invalid: {first['msg']}. "
                          f"Got {first.get('input')!r} instead.") from None
    fit_settings = keyword_settings(settings, caller="mentor.pipelines.adapt", **options)
    teacher_settings = keyword_settings(None, caller="mentor.pipelines.adapt teacher_train",
                                        **{"seed": fit_settings.seed, **teacher_train}) \
        if teacher_train is not None else fit_settings

    def factory(spec_model: nn.Module | ModelFactory) -> ModelFactory:
        return (lambda: copy.deepcopy(spec_model)) if isinstance(spec_model, nn.Module) else spec_model

    aligned = align(source, target, spec.normalize)
    job = AdaptJob(name="adapt", seeds=[fit_settings.seed], load_domains=lambda seed: (source, aligned),
                   teacher=factory(teacher), student=factory(student if student is not None else teacher),
                   teacher_settings=teacher_settings, settings=fit_settings, spec=spec, latency_batch=latency_batch)
    check_job(job)
    return run(job, None, echo=lambda line: None)
