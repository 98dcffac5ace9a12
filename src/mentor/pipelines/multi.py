"""Several teachers in one distillation run (survey §4.2): each trained (or loaded) on its own part of the
training set, then held as one :class:`~mentor.teachers.Ensemble` teacher whose members a multi-teacher method
reads (:mod:`mentor.knowledge.multi_teacher`).

A teacher's ``subset`` is deterministic per seed: the classes it keeps (all by default), then the fraction
``[start, stop)`` of a seeded permutation of those samples, so teachers given ``0.0-0.5`` and ``0.5-1.0`` learn
from disjoint halves. The result table has a row per teacher (``teacher0``, ``teacher1``, ...) and the
ensemble as ``teacher``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mentor.data import ArrayDataset, Splits
from mentor.engine import FitSettings, MetricsLog
from mentor.errors import MentorError
from mentor.knowledge import Plan, as_stages
from mentor.pipelines.result import Result, measure
from mentor.teachers import Ensemble
from mentor.teachers.weighting.domain import Domain


@dataclass(frozen=True)
class Subset:
    """The part of the training split a teacher learns from: ``classes`` (``None``: all), then ``[start, stop)``."""

    start: float = 0.0
    stop: float = 1.0
    classes: tuple[int, ...] | None = None


@dataclass
class Member:
    """One teacher of a multi-teacher run: loaded from ``checkpoint`` or trained with ``settings`` on ``subset``."""

    model: Callable[[], nn.Module]
    checkpoint: Path | None
    settings: FitSettings
    subset: Subset | None = None


def subset_of(train: ArrayDataset, subset: Subset | None, seed: int, key: str = "teachers") -> ArrayDataset:
    """The samples of ``train`` a teacher learns from (all of them without a subset); never empty."""
    if subset is None:
        return train
    keep = torch.arange(len(train))
    if subset.classes is not None:
        keep = keep[torch.isin(train.targets.cpu(), torch.tensor(subset.classes))]
    order = keep[torch.from_numpy(np.random.default_rng(seed).permutation(len(keep)))]
    chosen = order[round(subset.start * len(order)):round(subset.stop * len(order))]
    if len(chosen) == 0:
        raise MentorError(f"recipe key '{key}.subset' keeps no training sample ({subset}); widen start-stop or "
                          "choose classes the dataset has")
    return train.subset(chosen)


def teacher_data(data: Splits, subset: Subset | None, seed: int, key: str) -> Splits:
    """``data`` with its training split narrowed to a teacher's subset (validation and test unchanged)."""
    return data if subset is None else replace(data, train=subset_of(data.train, subset, seed, key))


def ensemble(members: list[Member]) -> Ensemble:
    """Fresh, untrained teachers as one ensemble."""
    return Ensemble([member.model() for member in members])


def train_members(teacher: Ensemble, members: list[Member], data: Splits, seed: int, resume: bool,
                  log: MetricsLog, folder: Callable[[str], Path | None]) -> None:
    """Load or train every teacher of ``teacher`` on its subset, in place."""
    from mentor.pipelines.distill import fit_plan

    load_members(teacher, members)
    for index, (model, member) in enumerate(zip(teacher.members, members, strict=True)):
        if member.checkpoint is not None:
            continue
        split = teacher_data(data, member.subset, seed, f"teachers[{index}]")
        fit_plan(model, split, replace(member.settings, seed=seed, resume=resume),
                 log=log.bind(run=f"teacher{index}", seed=seed), checkpoints=folder(f"teacher{index}"))


def load_members(teacher: Ensemble, members: list[Member]) -> None:
    """Load the teachers given a checkpoint (a mismatch names the teacher's recipe key)."""
    from mentor.pipelines.distill import load_teacher

    for index, (model, member) in enumerate(zip(teacher.members, members, strict=True)):
        if member.checkpoint is not None:
            try:
                load_teacher(model, member.checkpoint)
            except MentorError as error:
                raise MentorError(f"teachers[{index}]: {error}") from None


def check_members(teacher: Ensemble, members: list[Member], data: Splits, seed: int) -> None:
    """Before anything is written: every checkpoint fits its teacher, every subset keeps samples."""
    load_members(teacher, members)
    for index, member in enumerate(members):
        teacher_data(data, member.subset, seed, f"teachers[{index}]")


def measure_members(teacher: nn.Module, seed: int, data: Splits, result: Result, latency_batch: int,
                    echo: Callable[[str], None]) -> None:
    """A result row per member of an ensemble teacher (nothing for a single teacher)."""
    if not isinstance(teacher, Ensemble):
        return
    for index, model in enumerate(teacher.members):
        measured = result.add(measure(f"teacher{index}", seed, model, data, latency_batch), model)
        echo(f"seed {seed}: teacher{index} {measured.accuracy:.2%}")


def fit_domains(plan: Plan, members: list[Member] | None, data: Splits, seed: int) -> None:
    """Give every domain weighting of ``plan`` that has no domains yet each teacher's inputs and the student's."""
    for stage in as_stages(plan):
        for module in stage.objective.modules():
            if isinstance(module, Domain) and not module.fitted:
                if members is None:
                    raise MentorError("weighting 'domain' needs each teacher's training inputs: give it sources "
                                      "and target, or run it from a recipe with teachers:")
                sources = [subset_of(data.train, member.subset, seed).inputs for member in members]
                module.fit(sources, data.train.inputs)


def named_teachers(teacher: nn.Module) -> list[tuple[str, nn.Module]]:
    """``[("teachers[0]", m0), ...]`` for an ensemble's members, ``[("teacher", teacher)]`` otherwise."""
    if isinstance(teacher, Ensemble):
        return [(f"teachers[{index}]", model) for index, model in enumerate(teacher.members)]
    return [("teacher", teacher)]
