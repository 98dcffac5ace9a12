"""Reading recipes: YAML through ``safe_load``, ``--set key=value`` overrides, validation with clear errors."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import pydantic
import yaml

from mentor.errors import MentorError, nearest, unknown
from mentor.recipes.schema import Recipe, Section


def builtin_recipes() -> dict[str, Path]:
    """Built-in recipe names -> files."""
    folder = resources.files("mentor.recipes") / "builtin"
    return {Path(str(item)).stem: Path(str(item)) for item in folder.iterdir() if str(item).endswith(".yaml")}


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping from ``path`` (safe_load: no code, no custom tags)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise MentorError(f"recipe {str(path)!r} is not valid YAML{where}: {problem}") from None
    except OSError as error:
        raise MentorError(f"cannot read recipe {str(path)!r}: {error.strerror}") from None
    if not isinstance(data, dict):
        raise MentorError(f"recipe {str(path)!r} must be a mapping of keys (data:, teacher:, ...), "
                          f"got {type(data).__name__}")
    return data


def locate(name_or_path: str) -> Path:
    """A recipe file from a path or a built-in name."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise MentorError(f"recipe file {name_or_path!r} does not exist")
        return path
    builtins = builtin_recipes()
    if name_or_path not in builtins:
        raise unknown("recipe", name_or_path, builtins)
    return builtins[name_or_path]


def _child(node: Any, part: str, key: str, create: bool) -> Any:
    """Step into ``node[part]``: mappings by key, lists by index (a one-item list also by the item's keys)."""
    if isinstance(node, list):
        if part.isdigit() and int(part) < len(node):
            return node[int(part)]
        if len(node) == 1 and isinstance(node[0], dict):
            return _child(node[0], part, key, create)
        raise MentorError(f"--set {key}: {part!r} is not an index of a list of {len(node)} items")
    if not isinstance(node, dict):
        raise MentorError(f"--set {key}: {part!r} is inside a value that is not a mapping")
    return node.setdefault(part, {}) if create else node


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides (values parsed as YAML: numbers, lists, booleans).

    A recipe's ``knowledge`` may be one method or a list; ``knowledge.params.temperature=2`` and
    ``knowledge.0.params.temperature=2`` both reach the first method.
    """
    if isinstance(data.get("knowledge"), dict):
        data["knowledge"] = [data["knowledge"]]
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep or not key:
            raise MentorError(f"--set expects key=value (e.g. train.epochs=5); got {override!r}")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        *parents, last = key.split(".")
        node: Any = data
        for part in parents:
            node = _child(node, part, key, create=True)
        if isinstance(node, list):
            if last.isdigit() and int(last) < len(node):
                node[int(last)] = value
                continue
            node = _child(node, last, key, create=False) if len(node) != 1 else node[0]
        if not isinstance(node, dict):
            raise MentorError(f"--set {key}: the parent of {last!r} is not a mapping")
        node[last] = value
    return data


def _sections_in(annotation: Any) -> list[type[Section]]:
    """The Section classes inside a field's type (``Train | None``, ``list[Knowledge]``...)."""
    if isinstance(annotation, type) and issubclass(annotation, Section):
        return [annotation]
    return [found for inner in getattr(annotation, "__args__", ()) for found in _sections_in(inner)]


def _section_at(location: tuple[Any, ...]) -> type[Section] | None:
    """The schema class that holds the key at ``location`` (for 'nearest key' hints)."""
    section: type[Section] | None = Recipe
    for part in location[:-1]:
        if isinstance(part, int) or section is None:
            continue
        field = section.model_fields.get(str(part))
        found = _sections_in(field.annotation) if field else []
        section = found[0] if found else None
    return section


def explain(error: pydantic.ValidationError) -> MentorError:
    """One line naming the key path, what is allowed and what was received."""
    errors = error.errors()
    # an unknown key usually explains a "missing" one (a typo), so report it first
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    location = tuple(first["loc"])
    key = ".".join(str(part) for part in location) or "(top level)"
    if first["type"] == "extra_forbidden":
        section = _section_at(location)
        valid = sorted(section.model_fields) if section else []
        close = nearest(str(location[-1]), valid)
        hint = f"; nearest: {', '.join(close)}" if close else ""
        return MentorError(f"unknown recipe key {key!r}{hint} (valid here: {', '.join(valid)})")
    if not location:
        return MentorError(f"recipe: {first['msg'].removeprefix('Value error, ')}")
    if first["type"] == "missing":
        return MentorError(f"recipe key {key!r} is required")
    received = first.get("input")
    return MentorError(f"recipe key {key!r}: {first['msg']}; got {received!r}")


def validate(data: dict[str, Any]) -> Recipe:
    """A :class:`Recipe` from a mapping, or a one-line :class:`MentorError`."""
    try:
        return Recipe.model_validate(data)
    except pydantic.ValidationError as error:
        raise explain(error) from None


def load_recipe(name_or_path: str, overrides: list[str] | None = None) -> Recipe:
    """Read, override and validate a recipe by built-in name or path."""
    return validate(apply_overrides(read_yaml(locate(name_or_path)), overrides or []))
