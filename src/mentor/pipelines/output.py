"""A run directory written from Python (``mentor.distill(..., out=DIR)``): the same files ``mentor run`` writes.

``recipe.yaml`` describes the run as a recipe where it can: data loaded by :func:`mentor.data.load`,
models built by :func:`mentor.models.create` and methods made by :func:`mentor.knowledge.create`
remember their recipe section (``mentor_recipe``). Then ``mentor eval|export|report|resume DIR`` work
as on a run of the command line. A model or an objective built in Python some other way has no
recipe section: the recipe names it a Python object (:data:`PYTHON_OBJECT`) and its ``description``
says so, and the commands that would have to rebuild it say to do that from Python instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from torch import nn

from mentor.data import Splits
from mentor.engine.metrics import finite_or_null
from mentor.errors import MentorError, writing
from mentor.knowledge import Plan, as_stages

PYTHON_MADE = "made from Python by"
"""The start of the description of a recipe written for a Python run."""

PYTHON_OBJECT = "python object"
"""How a recipe written for a Python run names what no recipe describes (``python object torch.nn.Sequential``)."""


def _marker(thing: object) -> str:
    return f"{PYTHON_OBJECT} {type(thing).__module__}.{type(thing).__qualname__}"


def is_python_object(name: object) -> bool:
    """Whether a recipe's model, method or scheme name stands for a Python object (see :data:`PYTHON_OBJECT`)."""
    return isinstance(name, str) and name.startswith(PYTHON_OBJECT)


def model_section(model: nn.Module) -> dict[str, Any]:
    """The recipe section that builds ``model`` (set by :func:`mentor.models.create`), else its marker."""
    section = getattr(model, "mentor_recipe", None)
    described = plain(section) if isinstance(section, dict) else None
    return described or {"model": _marker(model)}


def plan_section(plan: Plan) -> dict[str, Any]:
    """The recipe's ``knowledge`` item for ``plan`` (set by :func:`mentor.knowledge.create`), else its marker."""
    stages = as_stages(plan)
    sections = [getattr(stage.objective, "mentor_recipe", None) for stage in stages]
    if isinstance(sections[0], dict) and all(section is sections[0] for section in sections):
        return plain(sections[0]) or {"method": _marker(stages[0].objective)}
    return {"method": _marker(stages[0].objective)}


def scheme_section(scheme: object, params: dict[str, Any] | None) -> dict[str, Any]:
    """The recipe's ``scheme`` section for a scheme given by name, else its marker."""
    described = plain({"name": scheme, "params": dict(params or {})}) if isinstance(scheme, str) else None
    return described or {"name": _marker(scheme)}


def plain(section: dict[str, Any]) -> dict[str, Any] | None:
    """``section`` when YAML can hold it (numbers, strings, lists, mappings), else ``None``."""
    try:
        yaml.safe_dump(section)
    except yaml.YAMLError:
        return None
    return dict(section)


def _names_an_object(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_names_an_object(item) for item in value.values())
    if isinstance(value, list):
        return any(_names_an_object(item) for item in value)
    return is_python_object(value)


def describe(caller: str, data: Splits, seed: int, sections: dict[str, Any], rest: dict[str, Any]) -> dict[str, Any]:
    """A recipe mapping for a Python run; the ``sections`` that name Python objects (or are ``None``: a
    ``train`` section with an augmentation of one's own, left to its defaults) are named in its description."""
    missing = sorted(key for key, value in sections.items() if value is None or _names_an_object(value))
    description = f"{PYTHON_MADE} {caller}"
    if missing:
        description += (f"; no recipe describes its {', '.join(missing)} (Python objects): rebuild "
                        f"{'them' if len(missing) > 1 else 'it'} in Python to use this run's checkpoints")
    recipe: dict[str, Any] = {"name": rest.pop("name"), "description": description, "seeds": [seed]}
    if data.recipe is not None:
        recipe["data"] = dict(data.recipe)
    recipe.update({key: value for key, value in sections.items() if value is not None})
    recipe.update(rest)
    return recipe


def prepare(out: Path, resume: bool, caller: str) -> None:
    """Create the run directory ``out``; an existing one with files only when ``resume`` continues it."""
    if out.exists() and not out.is_dir():
        raise MentorError(f"The 'out' parameter of {caller} is the file {str(out)!r}; give a directory")
    if out.exists() and any(out.iterdir()) and not resume:
        raise MentorError(f"run directory {str(out)!r} already exists; pass resume=True to continue it, "
                          "or choose another out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise MentorError(f"cannot create the run directory {str(out)!r} ({error.strerror}); "
                          "choose another out") from None


def write_recipe(out: Path, recipe: dict[str, Any]) -> None:
    """Write ``recipe.yaml`` of a run directory."""
    (out / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")


def write_summary(out: Path, name: str, seconds: float, models: dict[str, Any]) -> None:
    """Write ``summary.json`` of a finished run: its recipe name, duration and each model's test results
    (a NaN as ``null``: JSON has no such number)."""
    summary = {"recipe": name, "seconds": round(seconds, 2), "models": models}
    with writing(out / "summary.json"):
        (out / "summary.json").write_text(json.dumps(finite_or_null(summary), indent=2, allow_nan=False),
                                          encoding="utf-8")
