"""Knowledge construction (survey §3.1): the registry of methods and how one is created by name.

A method is a function registered under its paper's name that takes the method's parameters and
returns what to optimize: an :class:`~mentor.losses.Objective`, or a list of :class:`Stage` s for
methods trained in several phases (FitNets' hint pre-training, then distillation).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mentor.errors import MentorError
from mentor.losses.objective import Objective
from mentor.registry import Registry


@dataclass
class Stage:
    """One phase of training.

    Attributes:
        name: shown in logs and metrics ("hint", "distill").
        objective: what this phase minimizes; its adapters are stepped with the student.
        epochs: length of the phase; ``None`` takes the epochs left of the run.
    """

    name: str
    objective: Objective
    epochs: int | None = None


Plan = Objective | list[Stage]
Method = Callable[..., Plan]

KNOWLEDGE: Registry[Method] = Registry("knowledge method")


def register(name: str, paper: str) -> Callable[[Method], Method]:
    """Register a method under ``name``; ``paper`` is the citation shown by ``mentor list knowledge``."""
    return KNOWLEDGE.register(name, paper)


def parameters(name: str) -> dict[str, inspect.Parameter]:
    """The parameters a method accepts, by name."""
    return KNOWLEDGE.parameters(name)


def create(name: str, **params: Any) -> Plan:
    """Create a registered method with validated parameters (see :meth:`Registry.create`).

    Each stage's objective carries the method's recipe item as ``mentor_recipe``
    (``{"method": name, "params": {...}}``), so a Python run can describe it in its ``recipe.yaml``.
    """
    plan = KNOWLEDGE.create(name, **params)
    section = {"method": name, "params": dict(params)}
    for stage in as_stages(plan):
        stage.objective.mentor_recipe = section
    return plan


def check_pairs(method: str, student: Sequence[Any], teacher: Sequence[Any],
                names: tuple[str, str] = ("student", "teacher"), what: str = "layers") -> None:
    """Student and teacher taps listed pairwise must be equally many (``student[i]`` <-> ``teacher[i]``)."""
    if len(student) != len(teacher):
        raise MentorError(
            f"The {names[0]!r} and {names[1]!r} parameters of {method} must pair up one to one. Got "
            f"{len(student)} student and {len(teacher)} teacher {what} instead; list as many of each."
        )


def as_stages(plan: Plan, name: str = "train") -> list[Stage]:
    """A single objective becomes one stage that runs for all epochs."""
    return [Stage(name, plan)] if isinstance(plan, Objective) else list(plan)


def combine(plans: Sequence[Plan]) -> Plan:
    """Merge several single-stage methods into one Objective (e.g. kd + at).

    Terms that occur in several methods under the same name are kept once when they are the
    hard-label cross-entropy; any other clash raises.
    """
    if len(plans) == 1:
        return plans[0]
    terms: dict[str, Any] = {}
    for plan in plans:
        if not isinstance(plan, Objective):
            raise MentorError("only single-stage methods can be combined; run multi-stage methods alone")
        for term in plan:
            if term.name in terms:
                if term.name == "ce":
                    continue
                raise MentorError(f"two combined methods both define the term {term.name!r}; combine them by hand")
            terms[term.name] = term
    return Objective(*terms.values())
