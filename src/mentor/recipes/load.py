"""Reading recipes: YAML through ``safe_load``, ``--set key=value`` overrides, validation with clear errors."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import pydantic
import yaml

from mentor.errors import MentorError, clip, nearest, shown, unknown
from mentor.recipes.safe_yaml import parse
from mentor.recipes.schema import Recipe, Section

MAX_BYTES = 1_000_000
RUN_RECIPE = "recipe.yaml"


def builtin_recipes() -> dict[str, Path]:
    """Built-in recipe names -> files."""
    folder = resources.files("mentor.recipes") / "builtin"
    return {Path(str(item)).stem: Path(str(item)) for item in folder.iterdir() if str(item).endswith(".yaml")}


def read_text(path: Path, what: str, limit: int = MAX_BYTES) -> str:
    """The UTF-8 text of a small file (a recipe, a run's JSON): a one-line error when it is unreadable, too large
    or not UTF-8."""
    try:
        with path.open("rb") as file:
            data = file.read(limit + 1)
    except OSError as error:
        raise MentorError(f"cannot read {what} {str(path)!r}: {error.strerror or error}") from None
    if len(data) > limit:
        raise MentorError(f"{what} {str(path)!r} is larger than {limit // 1_000_000} MB; is it the right file?")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise MentorError(f"{what} {str(path)!r} is not UTF-8 text (byte {data[error.start]:#04x} at offset "
                          f"{error.start}); save it as UTF-8") from None


def read_yaml(path: Path, what: str = "recipe") -> dict[str, Any]:
    """A YAML mapping from ``path`` (:func:`mentor.recipes.safe_yaml.parse`: no code, no custom tags, no
    duplicate keys, no alias bombs)."""
    where = f"{what} {str(path)!r}"
    try:
        data = parse(read_text(path, what), where)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        place = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise MentorError(f"{where} is not valid YAML{place}: {problem}") from None
    if not isinstance(data, dict):
        raise MentorError(f"{where} must be a mapping of keys (data:, teacher:, ...), got {type(data).__name__}")
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


def _index(part: str, items: list[Any]) -> int | None:
    """``part`` as an index of ``items`` (plain ASCII digits, in range), else ``None``."""
    if part.isascii() and part.isdigit() and len(part) <= len(str(len(items))) and int(part) < len(items):
        return int(part)
    return None


def _child(node: Any, part: str, key: str, create: bool) -> Any:
    """Step into ``node[part]``: mappings by key, lists by index (a one-item list also by the item's keys)."""
    if isinstance(node, list):
        index = _index(part, node)
        if index is not None:
            return node[index]
        if len(node) == 1 and isinstance(node[0], dict):
            return _child(node[0], part, key, create)
        raise MentorError(f"--set {key}: {shown(part)} is not an index of a list of {len(node)} items")
    if not isinstance(node, dict):
        raise MentorError(f"--set {key}: {shown(part)} is inside a value that is not a mapping")
    return node.setdefault(part, {}) if create else node


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides (values parsed as YAML: numbers, lists, booleans).

    A recipe's ``knowledge`` may be one method or a list; ``knowledge.params.temperature=2`` and
    ``knowledge.0.params.temperature=2`` both reach the first method.
    """
    if isinstance(data.get("knowledge"), dict):
        data["knowledge"] = [data["knowledge"]]
    for override in overrides:
        raw_key, sep, raw = override.partition("=")
        if not sep or not raw_key:
            raise MentorError(f"--set expects key=value (e.g. train.epochs=5); got {shown(override)}")
        key = raw_key if len(raw_key) <= 80 and raw_key.isprintable() else shown(raw_key)  # echoed in messages
        try:
            value = parse(raw, f"--set {key}")
        except yaml.YAMLError:
            value = raw
        *parents, last = raw_key.split(".")
        node: Any = data
        for part in parents:
            node = _child(node, part, key, create=True)
        if isinstance(node, list):
            index = _index(last, node)
            if index is not None:
                node[index] = value
                continue
            node = _child(node, last, key, create=False)
        if not isinstance(node, dict):
            raise MentorError(f"--set {key}: the parent of {shown(last)} is not a mapping")
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
    key = clip(".".join(str(part) for part in location)) or "(top level)"
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
    if first["type"] == "value_error":  # our own validators say what they received
        return MentorError(f"recipe key {key!r}: {first['msg'].removeprefix('Value error, ')}")
    return MentorError(f"recipe key {key!r}: {first['msg']}; got {shown(first.get('input'))}")


def validate(data: dict[str, Any]) -> Recipe:
    """A :class:`Recipe` from a mapping, or a one-line :class:`MentorError`."""
    try:
        return Recipe.model_validate(data)
    except pydantic.ValidationError as error:
        raise explain(error) from None


def load_recipe(name_or_path: str, overrides: list[str] | None = None) -> Recipe:
    """Read, override and validate a recipe by built-in name or path."""
    return validate(apply_overrides(read_yaml(locate(name_or_path)), overrides or []))


def read_run_recipe(folder: Path) -> Recipe:
    """The recipe a run directory was made with, validated (``resume``, ``eval``, ``export`` and ``report`` read it
    here; the models it names are built only through :func:`mentor.models.create`, which asks for consent)."""
    path = folder / RUN_RECIPE
    if not path.is_file():
        raise MentorError(f"{str(folder)!r} is not a run directory (it has no {RUN_RECIPE}); pass a directory "
                          "written by `mentor run RECIPE --out DIR`")
    data = read_yaml(path, "run recipe")
    try:
        return validate(data)
    except MentorError as error:
        raise MentorError(f"{str(path)!r}: {error}") from None
