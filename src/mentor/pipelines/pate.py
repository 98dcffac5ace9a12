"""PATE as a pipeline (survey §4; Papernot et al. 2017, ICLR; Papernot et al. 2018, ICLR): private teachers,
a noisy vote, a student that never sees the private data.

For each seed:

1. the training split (the private data) is cut into ``teachers`` disjoint partitions
   (:func:`mentor.teachers.pate.partitions`) and one teacher learns each, by the one loop: all of them at once
   as a :class:`~mentor.teachers.bank.TeacherBank` when the model has no BatchNorm statistics, else one loop
   call per teacher. No validation split is used (its labels would be private data outside the partitions);
   the last weights are kept;
2. the test split is the public data, as in the papers: its first ``public_fraction`` (0.9 by default: the
   2017 paper's 9,000 of MNIST's 10,000 test images) is the student's unlabeled pool, the rest evaluates;
3. the first ``queries`` pool samples are asked in order (:func:`mentor.teachers.pate.answer_queries`: a budget
   in queries and optionally in ε), and the accountant gives the data-dependent and data-independent ε;
4. the student learns the answered queries with cross-entropy; with ``self_training`` it then starts again
   from its initial weights and learns them together with its own confident predictions (softmax ≥ 0.9) on
   the rest of the pool, which costs no privacy (public inputs, the student's own labels): a simple stand-in
   for the papers' semi-supervised GAN training. With ``mean_teacher`` (the ``mean-teacher`` scheme's
   parameters) it learns semi-supervised instead: the answers labelled, the rest of the pool unlabelled, and
   the averaged teacher's weights are the student's (:func:`~mentor.pipelines.pate_steps.learn_semi_supervised`).

Measured on the evaluation part: ``student`` and ``teacher`` (teacher 0), and beside the privacy the noiseless
plurality of all teachers (``result.models["teachers vote"]``), which no private release could give: an upper
reference. With a run directory,
``checkpoints/seed<S>/{student,teacher}/best.pt`` hold the final weights (``mentor eval|export`` read them),
``privacy.json`` the privacy of every seed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from mentor.data import Splits
from mentor.engine import FitSettings, MetricsLog, checkpoint, evaluate, seed_everything
from mentor.engine.metrics import finite_or_null
from mentor.errors import MentorError, writing
from mentor.pipelines.pate_steps import (
    ModelFactory,
    check_mean_teacher,
    public_split,
    teacher_copies,
    train_student,
    train_teachers,
)
from mentor.pipelines.result import Result, measure
from mentor.report import render
from mentor.teachers.bank import PluralityVote
from mentor.teachers.pate import (
    Aggregator,
    Analysis,
    Answers,
    answer_queries,
    check_budget,
    partitions,
    vote_histograms,
)


@dataclass
class PateJob:
    """Everything a PATE run needs, checked before anything is written."""

    name: str
    seeds: list[int]
    load_data: Callable[[int], Splits]
    teacher: ModelFactory
    student: ModelFactory
    teachers: int
    aggregator: Aggregator
    queries: int
    delta: float
    teacher_settings: FitSettings
    settings: FitSettings
    epsilon_budget: float | None = None
    budget_analysis: Analysis = "data-dependent"
    public_fraction: float = 0.9
    self_training: bool = False
    latency_batch: int = 256
    mean_teacher: dict[str, Any] | None = None


@dataclass
class PateResult(Result):
    """A :class:`~mentor.pipelines.Result` plus, per seed, the privacy and labels of the answers."""

    privacy: list[dict[str, Any]] = field(default_factory=list)
    answers: dict[int, Answers] = field(default_factory=dict)

    def table(self) -> str:
        header = ["seed", "noiseless vote %", "queries asked", "answered", "labels right %", "ε data-dependent",
                  "ε data-independent", "δ"]
        rows = [[str(p["seed"]), f"{100 * p['vote_accuracy']:.2f}", str(p["asked"]), str(p["answered"]),
                 f"{100 * p['label_accuracy']:.2f}", f"{p['epsilon']:.3f}", f"{p['epsilon_data_independent']:.3f}",
                 f"{p['delta']:g}"] for p in self.privacy]
        stops = [f"seed {p['seed']}: {p['stopped']}" for p in self.privacy if p["stopped"]]
        return "\n".join([super().table(), "", render(header, rows), *stops])


def check_job(job: PateJob) -> None:
    """One-line errors for settings that cannot work, before anything trains or is written."""
    check_budget(job.delta, job.queries, job.epsilon_budget, job.budget_analysis)
    check_mean_teacher(job.mean_teacher, job.self_training)
    if not 0.0 < job.public_fraction < 1.0:
        raise MentorError(f"The 'public_fraction' parameter of PATE must be in (0, 1). Got {job.public_fraction!r} "
                          "instead; it is the share of the test split the student may query (the rest evaluates).")
    if job.teacher_settings.augment is not None:
        raise MentorError("PATE teachers train on fixed partitions without augmentation; set teacher.train.jitter "
                          "to 0 (the student's train.jitter may stay)")
    if job.teacher_settings.clip_grad_norm is not None:
        raise MentorError("PATE teachers may not clip the gradient norm (teacher.train.clip_grad_norm): the norm "
                          "of all teachers trained as one batch would tie each teacher's steps to the others' "
                          "private partitions; remove it")
    data = job.load_data(job.seeds[0])
    partitions(len(data.train), job.teachers, job.seeds[0])
    pool = public_split(data.test, job.public_fraction)[0]
    if job.queries > len(pool):
        raise MentorError(f"The 'queries' parameter of PATE ({job.queries}) is more than the {len(pool)} public "
                          f"samples the student may query ({job.public_fraction:g} of {len(data.test)} test "
                          f"samples); ask at most {len(pool)} queries or raise public_fraction.")


def run(job: PateJob, out: Path | None, log: MetricsLog | None = None, echo: Callable[[str], None] = print,
        resume: bool = False) -> PateResult:
    """Teachers, answers, student for every seed of ``job`` (module docstring)."""
    log = log or MetricsLog()
    result = PateResult(records=log.records)
    for seed in job.seeds:
        data = job.load_data(seed)
        pool, evaluation = public_split(data.test, job.public_fraction)
        public = replace(data, test=evaluation)
        folder = out / "checkpoints" / f"seed{seed}" if out is not None else None
        seed_everything(seed)
        bank = train_teachers(job.teacher, data.train, job.teachers, replace(job.teacher_settings, seed=seed,
                              resume=resume), log.bind(run="teacher", seed=seed),
                              folder / "teacher" / "training" if folder else None)
        votes = vote_histograms(bank, pool.inputs[:job.queries], data.num_classes)
        answers = answer_queries(votes, job.aggregator, delta=job.delta, max_queries=job.queries,
                                 epsilon_budget=job.epsilon_budget, budget_analysis=job.budget_analysis, seed=seed)
        right = answers.labels[answers.answered] == pool.targets[: len(answers.labels)].numpy()[answers.answered]
        privacy = {"seed": seed, "aggregator": repr(job.aggregator), "asked": int(len(answers.labels)),
                   "answered": int(answers.answered.sum()),
                   "label_accuracy": float(right.mean()) if len(right) else math.nan,
                   "epsilon": answers.epsilon, "epsilon_data_independent": answers.epsilon_data_independent,
                   "order": answers.order, "delta": job.delta, "stopped": answers.stopped}
        result.privacy.append(privacy)
        result.answers[seed] = answers
        echo(f"seed {seed}: {privacy['answered']} of {privacy['asked']} queries answered "
             f"({privacy['label_accuracy']:.2%} right), ε = {answers.epsilon:.3f} (data-independent "
             f"{answers.epsilon_data_independent:.3f}), δ = {job.delta:g}")
        seed_everything(seed)
        student, added = train_student(job.student, pool, answers, job.self_training,
                                       replace(job.settings, seed=seed, resume=resume),
                                       log.bind(run="student", seed=seed), folder / "student" if folder else None,
                                       job.mean_teacher)
        privacy["self_training_labels"] = added
        first = bank.members()[0]
        if folder is not None:  # what `mentor eval|export RUN_DIR` read
            for role, model in (("student", student), ("teacher", first)):
                checkpoint.save({"models": {role: model.state_dict()}, "epoch": 0}, folder / role / "best.pt")
        for name, model in (("student", student), ("teacher", first)):
            measured = result.add(measure(name, seed, model, public, job.latency_batch), model)
            echo(f"seed {seed}: {name} {measured.accuracy:.2%}")
        result.models["teachers vote"] = vote = PluralityVote(bank)
        privacy["vote_accuracy"] = evaluate(vote, evaluation)["accuracy"]
        echo(f"seed {seed}: the noiseless vote of all teachers {privacy['vote_accuracy']:.2%}")
        if out is not None:
            write_privacy(out, result.privacy)
    return result


def write_privacy(out: Path, privacy: list[dict[str, Any]]) -> None:
    """``privacy.json`` of a run directory: per seed, the queries asked and answered and the (ε, δ) spent."""
    with writing(out / "privacy.json"):
        (out / "privacy.json").write_text(json.dumps(finite_or_null(privacy), indent=2, allow_nan=False),
                                          encoding="utf-8")


def pate(
    data: Splits,
    teacher: str | torch.nn.Module | ModelFactory,
    student: str | torch.nn.Module | ModelFactory,
    *,
    teachers: int = 250,
    aggregator: str | Aggregator = "gnmax",
    queries: int = 100,
    delta: float = 1e-5,
    epsilon_budget: float | None = None,
    budget_analysis: Analysis = "data-dependent",
    public_fraction: float = 0.9,
    self_training: bool = False,
    mean_teacher: dict[str, Any] | None = None,
    teacher_train: dict[str, Any] | None = None,
    latency_batch: int = 256,
    settings: FitSettings | None = None,
    **options: Any,
) -> PateResult:
    """Train ``teachers`` teachers on disjoint parts of ``data.train``, answer ``queries`` of the public data
    with ``aggregator``, train the student on the answers, and account for the privacy spent.

    Args:
        data: splits (:func:`mentor.data.load`); ``train`` is the private data, ``test`` the public data.
        teacher: the teachers' architecture: a registered model name (``"mlp-small"``), a model (each teacher is
            a copy with its own random initialisation) or a function returning a fresh model.
        student: the same kinds; a model given is trained in place.
        teachers: number of teachers n (the papers use 250 on MNIST).
        aggregator: ``"lnmax"``, ``"gnmax"``, ``"confident-gnmax"`` (the papers' MNIST noise) or an
            :class:`~mentor.teachers.pate.Aggregator` such as ``GNMax(sigma=40)``.
        queries: the most queries the student asks (Q).
        delta: δ of the reported (ε, δ).
        epsilon_budget: stop asking before ε would exceed it (the answers so far are kept).
        budget_analysis: which ε the budget is checked against.
        public_fraction: share of ``data.test`` the student may query; the rest evaluates.
        self_training: also learn the student's own confident labels on the unanswered public data.
        mean_teacher: learn semi-supervised with a mean teacher instead, with these parameters of the
            ``mean-teacher`` scheme (``{}``: its defaults; never ``labels``: the answers are the labels).
        teacher_train: the teachers' training keywords (as ``**options``; default: the same as the student's).
        latency_batch: batch size of the latency measurement.
        settings: ready :class:`~mentor.engine.FitSettings` of the student, instead of keywords.
        **options: any key of a recipe's ``train`` section, for the student (and the teachers by default).

    Returns:
        a :class:`PateResult`: ``table()`` (the student, teacher 0; then the noiseless vote and the privacy),
        ``privacy`` (per seed: queries asked and answered, ε data-dependent and data-independent),
        ``answers[seed]`` and ``models``.
    """
    from mentor.models import create
    from mentor.pipelines.options import settings as keyword_settings
    from mentor.teachers.pate import AGGREGATORS

    fit_settings = keyword_settings(settings, caller="mentor.pate", **options)
    teacher_settings = keyword_settings(None, caller="mentor.pate teacher_train",
                                        **{"seed": fit_settings.seed, **(teacher_train or {})}) \
        if teacher_train is not None else fit_settings
    if isinstance(aggregator, str):
        if aggregator not in AGGREGATORS:
            raise MentorError(f"The 'aggregator' parameter of mentor.pate must be one of {', '.join(AGGREGATORS)} "
                              f"or an Aggregator. Got {aggregator!r} instead.")
        aggregator = AGGREGATORS[aggregator]()

    def factory(spec: str | torch.nn.Module | ModelFactory) -> ModelFactory:
        if isinstance(spec, str):
            return lambda: create(spec, data.num_classes, data.input_shape)
        if isinstance(spec, torch.nn.Module):
            return teacher_copies(spec)
        return spec

    student_factory = (lambda: student) if isinstance(student, torch.nn.Module) else factory(student)
    job = PateJob(name="pate", seeds=[fit_settings.seed], load_data=lambda seed: data, teacher=factory(teacher),
                  student=student_factory, teachers=teachers, aggregator=aggregator, queries=queries, delta=delta,
                  teacher_settings=teacher_settings, settings=fit_settings, epsilon_budget=epsilon_budget,
                  budget_analysis=budget_analysis, public_fraction=public_fraction, self_training=self_training,
                  latency_batch=latency_batch, mean_teacher=mean_teacher)
    check_job(job)
    return run(job, None, echo=lambda line: None)
