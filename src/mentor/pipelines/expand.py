"""Knowledge expansion as a pipeline (survey §2.2): Noisy Student self-training, optionally with a curriculum.

Xie, Luong, Hovy & Le (2020), "Self-training with Noisy Student improves ImageNet classification", CVPR,
arXiv:1911.04252. For each seed:

1. ``teacher`` (round 0): the teacher learns the labeled set with cross-entropy, ``teacher_settings`` (clean by
   default: no input noise; ``noisy_teacher`` gives it the students' input noise, as the paper's Algorithm 1
   trains its first teacher noised — only its predictions must be clean);
2. round r = 1..R: the current teacher, **unnoised** (eval mode: no dropout, running BatchNorm statistics; clean
   inputs), labels the unlabeled images: p = softmax(z_T) ``(N, K)``; the soft (p) or hard (one-hot argmax)
   pseudo labels with confidence max_k p_k ≥ ``threshold`` are kept and class-balanced
   (:mod:`mentor.pipelines.expand_labels`); a fresh, equal-or-larger student ``students[r−1]`` (or the one
   student model every round) learns the labeled and pseudo-labeled images together **with noise**: its
   dropout (a model option, e.g. ``cnn``'s ``dropout``), and input noise, a random shift by up to ``shift``
   pixels and Gaussian noise of std ``input_noise`` (:class:`~mentor.schemes.online.peers.Distortion`), with
   the loss of :mod:`mentor.pipelines.expand_steps`; it becomes the next round's teacher;
3. ``student alone`` (``baseline``): the last round's student model learns the labeled set alone, with the same
   noise and settings, the labeled set repeated to the last student's rows per epoch (as many steps): what the
   unlabeled data adds is the gap to it.

Equation (the paper's, §2): round r minimizes
(1/L) Σ_i ℓ(y_i, f^noised(x_i)) + (1/M) Σ_j ℓ(ỹ_j, f^noised(x̃_j)) with ỹ_j = f_{r−1}(x̃_j) unnoised; here both
sums are one mean over the mixed rows (one row set holds the labeled images, repeated, and the pseudo-labeled
ones), and ``unlabeled_ratio`` sets pseudo-labeled rows per labeled row.

Defaults and why: ``threshold`` 0.3 and soft labels: the paper's ImageNet values. Balancing on, with as many
images per class as were kept over the classes (the paper fixes 130K per class for its 1.3M-image pool; the mean
keeps the pool's size). ``unlabeled_ratio`` 3: the paper's 14:1 batches show each of its 1.3M labeled images about
once per epoch of 300M unlabeled ones; with 1,000 labels a 14:1 mix would let the labels fade under pseudo labels
that are wrong a few percent of the time, so a quarter of every batch stays labeled, as in the mean-teacher
benchmark (``benchmarks/semi.py``). ``shift`` 2 and ``input_noise`` 0.1: RandAugment has no meaning for
28×28 digits; a 2-pixel shift is the project's jitter, Gaussian noise the mean teacher's input noise (0.15,
a little less here because the shift already changes the inputs). Stochastic depth needs residual blocks, which
the zoo's CNNs and MLPs do not have: a residual student brings its own. Students start from their initial
weights every round (the paper: from scratch).

Curriculum by confidence (Wang et al. 2021, CVPR; ``curriculum``): the pseudo-labeled images are learned easy
first, in ``phases`` parts of the epochs, growing from the ``start`` most confident share to all of them
(:class:`~mentor.pipelines.expand_labels.Curriculum`); the paper's ensemble of the phases' models is not built.

Every stage is one loop call with its own checkpoint folder ``checkpoints/seed<S>/<role>/`` (``teacher``,
``student-round-1``, ..., ``student-alone``): a resumed run loads the finished stages and continues the
interrupted one. Roles in the result: ``teacher``, ``student round r``, ``student alone``; ``result.pseudo``
lists per seed and round the images kept and selected and, where the unlabeled images carry their labels,
how many pseudo labels are right.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mentor.data import ArrayDataset, Splits
from mentor.engine import FitSettings, MetricsLog, fit, seed_everything
from mentor.errors import MentorError
from mentor.pipelines.distill import check_device, check_outputs, fit_plan, sample_batch
from mentor.pipelines.expand_labels import Curriculum, PseudoLabeling, pseudo_record, repeat_to, student_data
from mentor.pipelines.expand_steps import NoisyStudentStep, teacher_probabilities
from mentor.pipelines.result import Result, measure
from mentor.report import render
from mentor.schemes.online.peers import Distortion

ModelFactory = Callable[[], nn.Module]
LoadData = Callable[[int], tuple[Splits, ArrayDataset]]
"""A seed -> (the splits, whose ``train`` is the labeled set; the unlabeled images)."""


@dataclass
class ExpandJob:
    """Everything a knowledge-expansion run needs, checked by :func:`check_job` before anything is written."""

    name: str
    seeds: list[int]
    load_data: LoadData
    teacher: ModelFactory
    students: list[ModelFactory]
    rounds: int
    teacher_settings: FitSettings
    settings: FitSettings
    labeling: PseudoLabeling = field(default_factory=PseudoLabeling)
    unlabeled_ratio: float = 3.0
    curriculum: Curriculum | None = None
    baseline: bool = True
    latency_batch: int = 256

    def student(self, round_: int) -> ModelFactory:
        """The model factory of round ``round_`` (1-based)."""
        return self.students[min(round_, len(self.students)) - 1]


@dataclass
class ExpandResult(Result):
    """A :class:`~mentor.pipelines.Result` plus, per seed and round, the pseudo labels learned."""

    pseudo: list[dict[str, Any]] = field(default_factory=list)

    def table(self) -> str:
        header = ["seed", "round", "kept ≥ threshold", "rows learned", "pseudo labels right %"]
        rows = [[str(p["seed"]), str(p["round"]), f"{p['kept']:,} of {p['pool']:,}", f"{p['selected']:,}",
                 "—" if p["right"] is None else f"{100 * p['right']:.2f}"] for p in self.pseudo]
        return "\n".join([super().table(), "", render(header, rows)])


def check_job(job: ExpandJob) -> None:
    """One-line errors for settings or data that cannot work, before anything trains or is written."""
    if job.rounds < 1:
        raise MentorError(f"The 'rounds' parameter of expand must be an integer >= 1. Got {job.rounds!r} instead; "
                          "one round is one student taught by the teacher.")
    if not 0.0 <= job.labeling.threshold < 1.0:
        raise MentorError(f"The 'threshold' parameter of expand must be in [0, 1). Got {job.labeling.threshold!r} "
                          "instead; it is the teacher confidence a pseudo label needs (the paper: 0.3).")
    if job.labeling.per_class is not None and job.labeling.per_class < 1:
        raise MentorError(f"The 'per_class' parameter of expand must be >= 1 or None. Got {job.labeling.per_class!r}"
                          " instead.")
    if not job.unlabeled_ratio > 0:
        raise MentorError(f"The 'unlabeled_ratio' parameter of expand must be > 0. Got {job.unlabeled_ratio!r} "
                          "instead; it is pseudo-labeled rows per labeled row (e.g. 3).")
    if job.curriculum is not None and (job.curriculum.phases < 2 or not 0.0 < job.curriculum.start <= 1.0):
        raise MentorError(f"The 'curriculum' parameter of expand needs phases >= 2 and start in (0, 1]. Got "
                          f"phases={job.curriculum.phases!r}, start={job.curriculum.start!r} instead.")
    if len(job.students) not in (1, job.rounds):
        raise MentorError(f"The 'students' parameter of expand must hold one model (every round) or one per round "
                          f"({job.rounds}). Got {len(job.students)} instead.")
    check_device(job.settings, job.teacher_settings)
    splits, unlabeled = job.load_data(job.seeds[0])
    check_data(splits, unlabeled)
    sample = sample_batch(splits.train, job.settings.batch_size)
    check_outputs("teacher", job.teacher(), splits, sample)
    for index, factory in enumerate(job.students, start=1):
        check_outputs(f"student of round {index}", factory(), splits, sample)


def check_data(splits: Splits, unlabeled: ArrayDataset) -> None:
    """The labeled set has every class, the unlabeled images exist and have the labeled ones' shape."""
    labeled = splits.train
    if not isinstance(labeled.inputs, torch.Tensor) or not isinstance(unlabeled.inputs, torch.Tensor):
        raise MentorError("expand needs tensor inputs (images or vectors) for the labeled and unlabeled sets")
    if len(unlabeled) == 0:
        raise MentorError("The 'unlabeled' parameter of expand holds no images; give the images to pseudo-label")
    if tuple(unlabeled.inputs.shape[1:]) != tuple(labeled.inputs.shape[1:]):
        raise MentorError(f"The 'unlabeled' parameter of expand must hold inputs shaped like the labeled ones, "
                          f"{tuple(labeled.inputs.shape[1:])}. Got {tuple(unlabeled.inputs.shape[1:])} instead; "
                          "prepare them the same way (size, channels, normalization).")
    present = set(labeled.targets.long().tolist())
    missing = [label for label in range(splits.num_classes) if label not in present]
    if missing:
        raise MentorError(f"the labeled set of expand has no sample of class(es) {', '.join(map(str, missing))} of "
                          f"{splits.num_classes}; the teacher could never predict them: label some of each class.")


def run(job: ExpandJob, out: Path | None, log: MetricsLog | None = None, echo: Callable[[str], None] = print,
        resume: bool = False) -> ExpandResult:
    """Teacher, R noisy students and the baseline for every seed of ``job`` (module docstring)."""
    log = log or MetricsLog()
    result = ExpandResult(records=log.records)
    for seed in job.seeds:
        splits, unlabeled = job.load_data(seed)

        def folder(role: str, seed: int = seed) -> Path | None:
            return out / "checkpoints" / f"seed{seed}" / role.replace(" ", "-") if out is not None else None

        def report(role: str, model: nn.Module, best_epoch: int, seed: int = seed, splits: Splits = splits) -> None:
            measured = result.add(measure(role, seed, model, splits, job.latency_batch, best_epoch), model)
            echo(f"seed {seed}: {role} {measured.headline}")

        seed_everything(seed)
        teacher = job.teacher()
        fits = fit_plan(teacher, splits, replace(job.teacher_settings, seed=seed, resume=resume),
                        log=log.bind(run="teacher", seed=seed), checkpoints=folder("teacher"))
        report("teacher", teacher, fits[-1].best_epoch)
        for round_ in range(1, job.rounds + 1):
            role = f"student round {round_}"
            probabilities = teacher_probabilities(teacher, unlabeled, job.settings.eval_batch_size)
            data = student_data(splits.train, unlabeled, probabilities, job.labeling, job.unlabeled_ratio,
                                splits.num_classes)
            result.pseudo.append(pseudo_record(seed, round_, probabilities, unlabeled.targets, job.labeling,
                                               data.pseudo))
            seed_everything(seed)
            student = job.student(round_)()
            step = NoisyStudentStep(student, data.targets, data.ranks, job.curriculum)
            fitted = fit(step, data.dataset, splits.validation, student_settings(job.settings, seed, resume),
                         log=log.bind(run=role.replace(" ", "-"), seed=seed), checkpoints=folder(role))
            report(role, student, fitted.best_epoch)
            teacher = student
        if job.baseline:
            seed_everything(seed)
            alone = job.student(job.rounds)()
            repeated = replace(splits, train=repeat_to(splits.train, len(data.dataset)))
            fits = fit_plan(alone, repeated, student_settings(job.settings, seed, resume),
                            log=log.bind(run="student-alone", seed=seed), checkpoints=folder("student alone"))
            report("student alone", alone, fits[-1].best_epoch)
    return result


def student_settings(settings: FitSettings, seed: int, resume: bool) -> FitSettings:
    """The students' settings for ``seed``: no gradient-scale probe (their loss has no separate terms to weigh)."""
    return replace(settings, seed=seed, resume=resume, scale_probe=0)


ModelSpec = str | nn.Module | ModelFactory


def expand(
    data: Splits,
    unlabeled: ArrayDataset | torch.Tensor,
    teacher: ModelSpec,
    students: ModelSpec | Sequence[ModelSpec],
    *,
    rounds: int = 2,
    soft: bool = True,
    threshold: float = 0.3,
    balance: bool = True,
    per_class: int | None = None,
    unlabeled_ratio: float = 3.0,
    curriculum: Curriculum | None = None,
    shift: int = 2,
    input_noise: float = 0.1,
    baseline: bool = True,
    noisy_teacher: bool = False,
    teacher_train: dict[str, Any] | None = None,
    latency_batch: int = 256,
    settings: FitSettings | None = None,
    **options: Any,
) -> ExpandResult:
    """Noisy Student: train ``teacher`` on ``data.train``, then ``rounds`` noisy students on it and the teacher's
    pseudo labels for ``unlabeled``, each student the next teacher (module docstring).

    Args:
        data: splits (:func:`mentor.data.load`); ``train`` is the labeled set, ``validation`` picks each model's
            best epoch, ``test`` measures.
        unlabeled: the unlabeled images ``(N, ...)`` shaped like ``data``'s, or an ArrayDataset (its targets, where
            >= 0, only measure how many pseudo labels are right).
        teacher: the round-0 model: a registered name, a model (trained in place) or a function returning one.
        students: the same kinds, one for every round or a list of one per round (equal or larger, e.g.
            ``["cnn-small", "cnn-medium"]``); a model given for several rounds is copied at its initial weights.
        rounds: R, students trained one after the other.
        soft: learn the teacher's softmax (else its argmax, one-hot).
        threshold: the confidence a pseudo label needs, in [0, 1).
        balance: the same number of pseudo-labeled images per class (duplicates / most confident).
        per_class: that number (default: the images kept over the classes).
        unlabeled_ratio: pseudo-labeled rows per labeled row (the labeled ones are repeated).
        curriculum: learn confident pseudo labels first (:class:`~mentor.pipelines.expand_labels.Curriculum`).
        shift: the students' random input shift, in pixels (images only).
        input_noise: std of the students' Gaussian input noise.
        baseline: also train the last student's model on the labeled set alone, with the same noise.
        noisy_teacher: train the teacher with the students' input noise too (its predictions stay unnoised).
        teacher_train: the teacher's training keywords (as ``**options``; default: the students' without noise).
        latency_batch: batch size of the latency measurement.
        settings: ready :class:`~mentor.engine.FitSettings` of the students, instead of keywords (its ``augment``
            replaced by the noise).
        **options: any key of a recipe's ``train`` section, for the students (and by default the teacher).

    Returns:
        an :class:`ExpandResult`: ``table()`` (teacher, each round's student, the student alone; then the
        pseudo labels per round), ``pseudo`` and ``models``.
    """
    from mentor.pipelines.options import settings as keyword_settings

    fitted = keyword_settings(settings, caller="mentor.pipelines.expand", **options)
    teacher_settings = keyword_settings(None, caller="mentor.pipelines.expand teacher_train",
                                        **{"seed": fitted.seed, **teacher_train}) \
        if teacher_train is not None else fitted
    noise = Distortion(shift=shift, noise=input_noise)
    pool = unlabeled if isinstance(unlabeled, ArrayDataset) else \
        ArrayDataset(unlabeled, torch.full((len(unlabeled),), -1, dtype=torch.long))
    listed = list(students) if isinstance(students, (list, tuple)) else [students]
    factories = [model_factory(spec, data, copies=len(listed) == 1 and rounds > 1 or baseline) for spec in listed]
    if noisy_teacher:
        teacher_settings = replace(teacher_settings, augment=noise if noise.active else None)
    job = ExpandJob(name="expand", seeds=[fitted.seed], load_data=lambda seed: (data, pool),
                    teacher=model_factory(teacher, data, copies=False), students=factories, rounds=rounds,
                    teacher_settings=teacher_settings,
                    settings=replace(fitted, augment=noise if noise.active else None),
                    labeling=PseudoLabeling(soft=soft, threshold=threshold, balance=balance, per_class=per_class),
                    unlabeled_ratio=unlabeled_ratio, curriculum=curriculum, baseline=baseline,
                    latency_batch=latency_batch)
    check_job(job)
    return run(job, None, echo=lambda line: None)


def model_factory(spec: ModelSpec, data: Splits, copies: bool) -> ModelFactory:
    """A factory for a model name, a function, or a model (``copies``: a fresh copy of its initial weights per
    call, else the model itself)."""
    if isinstance(spec, str):
        from mentor.models import create

        return lambda: create(spec, data.num_classes, data.input_shape)
    if isinstance(spec, nn.Module):
        if not copies:
            return lambda: spec
        initial = copy.deepcopy(spec)
        return lambda: copy.deepcopy(initial)
    if callable(spec):
        return spec
    raise MentorError(f"a model of expand must be a registered name, an nn.Module or a function returning one. Got "
                      f"{type(spec).__name__} instead.")
