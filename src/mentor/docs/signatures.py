"""Types, defaults and constraints of parameters and schema fields, as text."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any

import annotated_types
import pydantic

from mentor.docs.markdown import _code, _yaml_inline

_CONSTRAINTS: dict[type, tuple[str, str]] = {
    annotated_types.Gt: ("gt", "> {}"), annotated_types.Ge: ("ge", ">= {}"),
    annotated_types.Lt: ("lt", "< {}"), annotated_types.Le: ("le", "<= {}"),
    annotated_types.MinLen: ("min_length", "at least {} item(s)"),
    annotated_types.MaxLen: ("max_length", "at most {} item(s)"),
}


def _constraints(metadata: Iterable[Any]) -> list[str]:
    """Readable bounds from pydantic/annotated-types metadata (``Gt(0)`` -> ``> 0``)."""
    found: list[str] = []
    for item in metadata:
        if isinstance(item, pydantic.fields.FieldInfo):
            found += _constraints(item.metadata)
            continue
        for kind, (attribute, template) in _CONSTRAINTS.items():
            if isinstance(item, kind):
                found.append(template.format(getattr(item, attribute)))
    return found


def type_name(annotation: Any) -> str:
    """A short, readable name of a type annotation (``float | None``, ``list[int]``, ``'sgd' | 'adam'``)."""
    if annotation is inspect.Parameter.empty:
        return "any"
    if isinstance(annotation, str):
        return annotation
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin is typing.Literal:
        return " | ".join(repr(arg) for arg in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join("None" if arg is type(None) else type_name(arg) for arg in args)
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(type_name(arg) for arg in args)}]" if args else name
    if annotation is Any:
        return "any"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation).replace("typing.", ""))


def _hints(function: Callable[..., Any]) -> dict[str, Any]:
    """Resolved annotations (``Annotated`` kept); the raw ones where they cannot be resolved."""
    target = inspect.unwrap(getattr(function, "func", function))  # functools.partial: its function's hints
    if inspect.isclass(target):
        target = target.__init__
    try:
        return typing.get_type_hints(target, include_extras=True)
    except Exception:  # noqa: BLE001 - a forward reference that cannot be resolved: show it as written
        return dict(getattr(target, "__annotations__", {}))


def _parameters(function: Callable[..., Any], skip: Iterable[str]) -> list[tuple[str, Any, Any]]:
    """(name, default or ``inspect.Parameter.empty``, resolved annotation) of each keyword parameter."""
    hints, skipped = _hints(function), set(skip)
    signature = inspect.signature(function).parameters.items()
    return [(name, p.default, hints.get(name, p.annotation)) for name, p in signature
            if name not in skipped and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def parameter_rows(function: Callable[..., Any], skip: Iterable[str] = ()) -> list[list[str]]:
    """One row per keyword parameter of ``function``: name, type, default, constraints."""
    rows = []
    for name, default, annotation in _parameters(function, skip):
        metadata = typing.get_args(annotation)[1:] if typing.get_origin(annotation) is typing.Annotated else ()
        shown = "required" if default is inspect.Parameter.empty else _code(_yaml_inline(_plain(default)))
        rows.append([_code(name), _code(type_name(annotation)), shown, ", ".join(_constraints(metadata))])
    return rows


def _plain(value: Any) -> Any:
    """Tuples as lists (as a recipe writes them); anything else unchanged or as its repr."""
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if isinstance(value, (list, dict, str, int, float, bool)) or value is None:
        return value
    return repr(value)
