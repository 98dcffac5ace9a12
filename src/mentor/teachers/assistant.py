"""Teacher assistants (TAKD): the teacher teaches an intermediate-sized model, which teaches the student.

Mirzadeh, Farajtabar, Li, Levine, Matsukawa & Ghasemzadeh (2020), "Improved Knowledge Distillation via
Teacher Assistant", AAAI (arXiv:1902.03393).

A chain teacher -> A_1 -> ... -> A_m -> student is trained stage by stage: stage j distills the trained
model of stage j−1 (the teacher for j = 1) into a fresh model with the run's knowledge, in the paper plain
KD at every stage with the same τ and λ,

    L_j = (1 − λ) · CE(z_j, y) + λ · τ² · KL(softmax(z_{j−1}/τ) ‖ softmax(z_j/τ)),   z ``(B, K)``,

and each stage is one :func:`mentor.pipelines.distill.fit_plan` call, the loop that trains every model of a
run. The assistants' sizes are the user's choice (the paper: one assistant of intermediate size, and
chains of several when the gap is very large). Its claim, that an assistant helps when the capacity gap is
large, is checked against the student distilled straight from the teacher, which every run also trains:
a run's table holds ``assistant0``, ``assistant1``, ... and ``student via assistants`` beside
``student distilled``.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from torch import nn

from mentor.batch import Batch
from mentor.engine import FitSettings, MetricsLog, seed_everything
from mentor.errors import MentorError, clip
from mentor.knowledge import as_stages
from mentor.teachers.frozen import teachers_in

if TYPE_CHECKING:
    from mentor.data import Splits
    from mentor.knowledge import Plan
    from mentor.pipelines.result import Measured

CHAIN_STUDENT = "student via assistants"
"""The role of the student distilled through the chain (``student-via-assistants`` in a run directory)."""


def assistant_role(index: int) -> str:
    """The role of assistant ``index`` (0 = the one the teacher teaches): ``assistant0``, ``assistant1``, ..."""
    return f"assistant{index}"


@dataclass
class Assistant:
    """One model of a chain: how to build it fresh and, optionally, its own training settings."""

    model: Callable[[], nn.Module]
    settings: FitSettings | None = None


@dataclass
class Chain:
    """Everything a chain needs besides the trained teacher: the assistants, a fresh student and fresh plans.

    ``plan`` is called once per stage, so that every stage starts from untrained adapters.
    """

    assistants: list[Assistant]
    student: Callable[[], nn.Module]
    plan: Callable[[], Plan]
    settings: FitSettings
    latency_batch: int = 256


def check_chain(models: list[nn.Module], plan: Callable[[], Plan], sample: Batch, data_name: str,
                epochs: int) -> None:
    """Compute each stage's objective once on ``sample`` (``models``: the teacher, the assistants, the student),
    so that a method that cannot pair two models of the chain fails in one line before anything trains.
    It runs on copies: a training-mode step would move the given models' BatchNorm statistics."""
    from mentor.schemes import Offline

    models = copy.deepcopy(models)

    names = ["the teacher", *(assistant_role(index) for index in range(len(models) - 2)), "the student"]
    for index, (trained, teaching) in enumerate(zip(models[1:], models[:-1], strict=True)):
        for stage in as_stages(plan()):
            scheme = Offline(trained, stage.objective, teaching)
            try:
                scheme.setup(sample)
                scheme.loss(sample, 0.0, epochs)
            except MentorError:
                raise
            except Exception as error:  # noqa: BLE001 - reported in one line, before anything is written
                raise MentorError(f"the knowledge objective ({stage.name}) cannot be computed from "
                                  f"{names[index]} to {names[index + 1]} on a sample batch of {data_name}: "
                                  f"{type(error).__name__}: {clip(str(error))}; check the assistants' models "
                                  "and the method's params") from None
            finally:
                for frozen in teachers_in(scheme):
                    frozen.release()


def train_chain(chain: Chain, teacher: nn.Module, data: Splits, seed: int, *, log: MetricsLog,
                folder: Callable[[str], Path | None], resume: bool = False,
                report: Callable[[Measured, nn.Module], None] = lambda measured, model: None) -> nn.Module:
    """Train each assistant from the previous stage's trained model, then the student from the last assistant.

    Args:
        chain: the assistants, student and plans.
        teacher: the trained teacher (frozen while it teaches, given back as it was).
        data: the splits every stage trains and is measured on.
        seed: the seed of every stage (each stage starts from ``seed_everything(seed)``).
        log: the run's metrics log; each stage's records carry its role as ``run``.
        folder: a role's checkpoint folder (``None``: no checkpoints).
        resume: continue each stage from its checkpoints.
        report: called with each stage's test results and model as soon as it is trained.

    Returns:
        the student distilled through the chain.
    """
    from mentor.pipelines.result import measure

    # the loop's stage runner, looked up on its module at call time (imported here: that module uses this one)
    distill = importlib.import_module("mentor.pipelines.distill")

    stages = [(assistant_role(index), assistant.model, assistant.settings)
              for index, assistant in enumerate(chain.assistants)] + [(CHAIN_STUDENT, chain.student, None)]
    previous = teacher
    for role, build, settings in stages:
        seed_everything(seed)
        model = build()
        stage_settings = replace(settings or chain.settings, seed=seed, resume=resume)
        fits = distill.fit_plan(model, data, stage_settings, chain.plan(), previous,
                                log=log.bind(run=role.replace(" ", "-"), seed=seed), checkpoints=folder(role))
        report(measure(role, seed, model, data, chain.latency_batch, fits[-1].best_epoch), model)
        previous = model
    return previous
