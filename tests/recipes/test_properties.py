"""Property-based tests of bad recipes through the command line.

Generated invalid recipes (a wrong type for every key of the schema, unknown keys at every level, values out of
range, missing sections, malformed YAML text) are run with ``mentor run PATH --out DIR``. Each must exit with
status 2 and print exactly one line on stderr, ``mentor: error: ...`` naming the key path, raise nothing else, and
leave no run directory. Validation comes before anything is built: ``_planned`` (which loads data and builds
models) is replaced by a trap for the whole module, so a recipe that got past validation fails the test at once.
"""

from __future__ import annotations

import contextlib
import copy
import io
import re
import tempfile
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import annotated_types
import pydantic
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mentor.cli.run
from mentor.cli import main
from mentor.recipes import Recipe

# every key gets its own test, so a few examples each add up to about a thousand recipes for the file
PER_KEY = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PROFILE = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

DISTILL: dict[str, Any] = {
    "name": "bad",
    "data": {"name": "digits", "limit": 50, "validation": 0.2},
    "teacher": {"model": "mlp-small", "train": {"epochs": 1, "optimizer": {"name": "adam"},
                                                "scheduler": {"name": "constant"}}},
    "student": {"model": "mlp-tiny"},
    "knowledge": [{"method": "kd", "params": {}}],
    "train": {"epochs": 1, "optimizer": {"name": "adam"}, "scheduler": {"name": "constant"}},
    "compare": {},
}
SCHEME: dict[str, Any] = {
    "name": "bad",
    "data": {"name": "digits", "limit": 50},
    "scheme": {"name": "dml", "params": {}},
    "peers": [{"model": "mlp-tiny"}, {"model": "mlp-tiny"}],
    "train": {"epochs": 1},
}
SCHEME_ONLY = ("scheme", "peers")
MULTI: dict[str, Any] = {
    **{key: value for key, value in DISTILL.items() if key != "teacher"},
    "teachers": [{**DISTILL["teacher"], "subset": {"start": 0.0, "stop": 1.0}}],
    "weighting": {"name": "uniform", "params": {}},
    "knowledge": [{"method": "multi-teacher", "params": {}}],
}
MULTI_ONLY = ("teachers", "weighting")


@pytest.fixture(autouse=True, scope="module")
def nothing_is_built() -> Iterator[None]:
    def trap(*args: object, **kwargs: object) -> None:
        raise AssertionError("an invalid recipe got past validation and reached building the run")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mentor.cli.run, "_planned", trap)
        yield


# ---------------------------------------------------------------- the schema, walked independently

def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(the annotation without ``| None``, whether ``None`` is allowed)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _section(annotation: Any) -> type[pydantic.BaseModel] | None:
    plain, _ = _unwrap(annotation)
    if typing.get_origin(plain) is list:
        plain = typing.get_args(plain)[0]
    return plain if isinstance(plain, type) and issubclass(plain, pydantic.BaseModel) else None


def fields(model: type[pydantic.BaseModel] = Recipe, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every (key path, FieldInfo) of the schema; list items appear as index ``0``."""
    found = []
    for name, info in model.model_fields.items():
        here = (*path, name)
        found.append((here, info))
        child = _section(info.annotation)
        if child is not None:
            is_list = typing.get_origin(_unwrap(info.annotation)[0]) is list
            found += fields(child, (*here, "0") if is_list else here)
    return found


FIELDS = fields()
SECTIONS = [()] + [path + (("0",) if typing.get_origin(_unwrap(info.annotation)[0]) is list else ())
                   for path, info in FIELDS if _section(info.annotation) is not None]


OPTIONAL_SECTIONS: dict[tuple[str, ...], Any] = {
    ("teacher", "student_friendly"): {"teacher_blocks": ["fc1"], "student_blocks": ["fc1"]},
    ("assistants",): [{"model": "mlp-tiny"}],
    ("expand",): {"labels": 10},
    ("multitask",): {"tasks": [{"name": "a", "dataset": "digits"}]},
}
"""Sections the base recipes leave out, added (valid) when the key under test lies inside them."""


def base_for(path: tuple[str, ...]) -> dict[str, Any]:
    if path and path[0] in MULTI_ONLY:
        return copy.deepcopy(MULTI)
    base = copy.deepcopy(SCHEME if path and path[0] in SCHEME_ONLY else DISTILL)
    for where, section in OPTIONAL_SECTIONS.items():
        if path[:len(where)] == where:
            put(base, where, copy.deepcopy(section))
    return base


def put(data: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    node: Any = data
    for part in path[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if isinstance(node, list):
        node[int(path[-1])] = value
    else:
        node[path[-1]] = value
    return data


def remove(data: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    node: Any = data
    for part in path[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    del node[path[-1]]
    return data


# ---------------------------------------------------------------- values of the wrong type or out of range

WORD = st.from_regex(r"[a-z]{1,8}", fullmatch=True).map(lambda text: "x" + text)  # never a number or a boolean
NUMBERS = st.integers(-10**6, 10**6) | st.floats(-1e6, 1e6, allow_nan=False)
SMALL_LISTS = st.lists(st.integers(-5, 5) | WORD, max_size=3)
MAPPINGS = st.dictionaries(WORD, st.integers(-5, 5), min_size=1, max_size=2)


def wrong_values(annotation: Any) -> st.SearchStrategy[Any]:
    """Values a field of this type must refuse (booleans for numbers aside: see the test below)."""
    plain, optional = _unwrap(annotation)
    if typing.get_origin(plain) is typing.Annotated:
        plain = typing.get_args(plain)[0]
    nothing = st.nothing() if optional else st.none()
    origin = typing.get_origin(plain)
    if origin is typing.Literal:
        allowed = typing.get_args(plain)
        return WORD.filter(lambda word: word not in allowed) | NUMBERS | SMALL_LISTS | nothing
    if origin is list:
        item = typing.get_args(plain)[0]
        inner = WORD if item is int else st.integers(-5, 5)  # list[int] gets words, list[Section] numbers
        return WORD | NUMBERS | st.lists(inner, min_size=1, max_size=3) | nothing
    if origin is dict or _section(plain) is not None:
        return WORD | NUMBERS | SMALL_LISTS | nothing
    if plain is str:
        return NUMBERS | st.booleans() | SMALL_LISTS | MAPPINGS | nothing
    if plain is int:
        fractional = st.floats(-1e6, 1e6, allow_nan=False).filter(lambda value: not value.is_integer())
        return WORD | fractional | SMALL_LISTS | MAPPINGS | nothing
    if plain is float:
        return WORD | SMALL_LISTS | MAPPINGS | nothing
    if plain is bool:
        return (WORD | st.integers().filter(lambda value: value not in (0, 1))
                | st.floats(allow_nan=False, allow_infinity=False).filter(lambda value: value not in (0.0, 1.0))
                | SMALL_LISTS | MAPPINGS | nothing)
    if set(typing.get_args(plain)) - {type(None)} == {str, int}:  # an output key: a name or an index (or None)
        fractional = st.floats(-1e6, 1e6, allow_nan=False).filter(lambda value: not value.is_integer())
        return fractional | st.booleans() | SMALL_LISTS | MAPPINGS
    if plain is Any:
        return st.nothing()
    raise AssertionError(f"no wrong values known for {annotation!r}: extend wrong_values")


def out_of_range(info: pydantic.fields.FieldInfo) -> st.SearchStrategy[Any] | None:
    """Values breaking one of the field's bounds (``gt``, ``ge``, ``lt``, ``le``, ``min_length``)."""
    plain, _ = _unwrap(info.annotation)
    integer = plain is int
    options = []
    for bound in info.metadata:
        if isinstance(bound, annotated_types.Gt):
            options.append(st.integers(max_value=int(bound.gt)) if integer
                           else st.floats(max_value=bound.gt, allow_nan=False, allow_infinity=False))
        elif isinstance(bound, annotated_types.Ge):
            options.append(st.integers(max_value=int(bound.ge) - 1) if integer
                           else st.floats(max_value=bound.ge, exclude_max=True, allow_nan=False, allow_infinity=False))
        elif isinstance(bound, annotated_types.Lt):
            options.append(st.integers(min_value=int(bound.lt)) if integer
                           else st.floats(min_value=bound.lt, allow_nan=False, allow_infinity=False))
        elif isinstance(bound, annotated_types.Le):
            options.append(st.integers(min_value=int(bound.le) + 1) if integer
                           else st.floats(min_value=bound.le, exclude_min=True, allow_nan=False, allow_infinity=False))
        elif isinstance(bound, annotated_types.MinLen):
            options.append(st.lists(st.integers(0, 3), max_size=bound.min_length - 1))
    return st.one_of(options) if options else None


BOUNDED = [(path, info) for path, info in FIELDS if out_of_range(info) is not None]


# ---------------------------------------------------------------- running one recipe

def run_text(text: str) -> tuple[int, str, bool]:
    """(exit status, stderr, whether the run directory exists) of ``mentor run`` on a recipe file."""
    with tempfile.TemporaryDirectory() as folder:
        recipe, out = Path(folder) / "recipe.yaml", Path(folder) / "run"
        recipe.write_text(text, encoding="utf-8")
        stderr, stdout = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
            status = main(["run", str(recipe), "--out", str(out)])
        return status, stderr.getvalue(), out.exists()


def run_recipe(data: dict[str, Any]) -> str:
    """Run ``data`` as a recipe; check the one-line error contract; the message."""
    status, err, written = run_text(yaml.safe_dump(data, sort_keys=False))
    return check_one_line(status, err, written)


def check_one_line(status: int, err: str, written: bool) -> str:
    assert status == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n"), err
    assert lines[0].startswith("mentor: error: ") and "Traceback" not in err
    assert not written, "a run directory was written for an invalid recipe"
    return lines[0]


def named_keys(message: str) -> list[str]:
    return re.findall(r"recipe key '([^']*)'", message)


def assert_names(message: str, path: tuple[str, ...]) -> None:
    """The message names the key path (or a key below it: ``seeds.0`` for ``seeds``)."""
    dotted = ".".join(path)
    assert any(key == dotted or key.startswith(dotted + ".") for key in named_keys(message)), (dotted, message)


# ---------------------------------------------------------------- the properties

def test_the_walk_covers_the_schema() -> None:
    dotted = {".".join(path) for path, _ in FIELDS}
    assert {"seeds", "data.limit", "teacher.train.optimizer.lr", "knowledge.0.method", "peers.0.options",
            "train.scheduler.milestones", "compare.independent", "latency_batch"} <= dotted
    assert ("teacher", "train", "optimizer") in SECTIONS and ("knowledge", "0") in SECTIONS


@pytest.mark.parametrize("path", [path for path, _ in FIELDS], ids=".".join)
@PER_KEY
@given(data=st.data())
def test_a_wrong_type_anywhere_is_one_line_naming_the_key(path: tuple[str, ...], data: st.DataObject) -> None:
    info = dict(FIELDS)[path]
    value = data.draw(wrong_values(info.annotation), label="value")
    assert_names(run_recipe(put(base_for(path), path, value)), path)


@pytest.mark.parametrize("section", SECTIONS, ids=lambda path: ".".join(path) or "top")
@PER_KEY
@given(data=st.data())
def test_an_unknown_key_at_any_level_is_one_line_naming_it(section: tuple[str, ...], data: st.DataObject) -> None:
    recipe = base_for(section)
    node: Any = recipe
    for part in section:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    key = data.draw(st.from_regex(r"[a-z][a-z_]{0,11}", fullmatch=True).filter(lambda k: k not in node), label="key")
    value = data.draw(st.integers() | WORD | st.booleans() | SMALL_LISTS, label="value")
    message = run_recipe(put(recipe, (*section, key), value))
    assert f"unknown recipe key '{'.'.join((*section, key))}'" in message, message


@pytest.mark.parametrize("path", [path for path, _ in BOUNDED], ids=".".join)
@PER_KEY
@given(data=st.data())
def test_an_out_of_range_value_is_one_line_naming_the_key(path: tuple[str, ...], data: st.DataObject) -> None:
    strategy = out_of_range(dict(FIELDS)[path])
    assert strategy is not None
    value = data.draw(strategy, label="value")
    message = run_recipe(put(base_for(path), path, value))
    assert_names(message, path)


REQUIRED = [path for path, info in FIELDS if info.is_required()]


@pytest.mark.parametrize("path", REQUIRED, ids=".".join)
def test_a_missing_required_key_is_named(path: tuple[str, ...]) -> None:
    message = run_recipe(remove(base_for(path), path))
    assert f"recipe key '{'.'.join(path)}' is required" in message, message


@PROFILE
@given(missing=st.sets(st.sampled_from(["teacher", "student", "knowledge"]), min_size=1))
def test_a_distillation_recipe_missing_sections_names_them(missing: set[str]) -> None:
    recipe = copy.deepcopy(DISTILL)
    for key in missing:
        del recipe[key]
    message = run_recipe(recipe)
    assert "a distillation recipe needs" in message
    assert all(key in message for key in missing), message


@pytest.mark.parametrize("missing", ["scheme", "peers"])
def test_a_scheme_recipe_missing_a_section_names_it(missing: str) -> None:
    recipe = copy.deepcopy(SCHEME)
    del recipe[missing]
    assert f"missing {missing}" in run_recipe(recipe)


@PROFILE
@given(extra=st.sets(st.sampled_from(["teacher", "student", "knowledge"]), min_size=1))
def test_a_scheme_recipe_with_distillation_sections_names_them(extra: set[str]) -> None:
    recipe = copy.deepcopy(SCHEME)
    for key in extra:
        recipe[key] = copy.deepcopy(DISTILL[key])
    message = run_recipe(recipe)
    assert "a scheme recipe needs scheme and peers and no" in message and all(key in message for key in extra)


BROKEN = ["key: [1, 2\n", "key: {a: 1\n", "'unterminated\n", "key: \"open\n", "\tdata: {}\n", "a: b: c\n",
          "- item\n", "key: *undefined_alias\n", "!!python/object/apply:os.system ['true']\n", "? [a\n", "@reserved\n"]


@PROFILE
@given(line=st.integers(0, 30), fragment=st.sampled_from(BROKEN))
def test_malformed_yaml_is_one_line_with_the_place(line: int, fragment: str) -> None:
    lines = yaml.safe_dump(DISTILL, sort_keys=False).splitlines(keepends=True)
    lines.insert(min(line, len(lines)), fragment)
    text = "".join(lines)
    message = check_one_line(*run_text(text))
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError:
        assert "is not valid YAML" in message, message
        return
    assert "is not valid YAML" not in message and (not isinstance(parsed, dict) or "recipe" in message)


@PROFILE
@given(text=st.text(st.characters(blacklist_categories=("Cs",)), max_size=80))
def test_any_text_is_a_clean_one_line_error(text: str) -> None:
    check_one_line(*run_text(text))


@pytest.mark.parametrize("text", ["", "- 1\n- 2\n", "42\n", "just a sentence\n", "null\n", "---\n...\n"])
def test_a_document_that_is_not_a_mapping_says_so(text: str) -> None:
    message = check_one_line(*run_text(text))
    assert "must be a mapping" in message


def _within(info: pydantic.fields.FieldInfo, value: int) -> bool:
    checks = {annotated_types.Gt: lambda b: value > b.gt, annotated_types.Ge: lambda b: value >= b.ge,
              annotated_types.Lt: lambda b: value < b.lt, annotated_types.Le: lambda b: value <= b.le}
    return all(checks[type(bound)](bound) for bound in info.metadata if type(bound) in checks)


# (path, the boolean that would be in range once taken as 1 or 0): only its type can make it wrong
BOOLEANS = [(path, _within(info, 1)) for path, info in FIELDS if _unwrap(info.annotation)[0] in (int, float)]


@pytest.mark.parametrize(("path", "value"), BOOLEANS, ids=[".".join(path) for path, _ in BOOLEANS])
def test_a_boolean_for_a_number_is_refused(path: tuple[str, ...], value: bool) -> None:
    assert_names(run_recipe(put(base_for(path), path, value)), path)
