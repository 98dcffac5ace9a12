"""One generic registry for everything that is looked up by name (methods, models, datasets, ...)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import pydantic

from mentor.errors import MentorError, nearest, shown, unknown

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered object with the one-line description (for methods: the paper) shown by ``mentor list``."""

    name: str
    obj: T
    summary: str


class Registry(Generic[T]):
    """Name -> object table. Duplicate names raise; unknown names list the close matches and all valid names."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, summary: str = "") -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``name`` with a one-line ``summary``."""

        def add(obj: T) -> T:
            if name in self._entries:
                raise MentorError(f"{self.kind} {name!r} is already registered; choose another name")
            doc = summary or (getattr(obj, "__doc__", None) or "").strip().split("\n")[0]
            self._entries[name] = Entry(name, obj, doc)
            return obj

        return add

    def get(self, name: str) -> T:
        """The object registered as ``name``; a :class:`MentorError` naming the valid names otherwise."""
        if name not in self._entries:
            raise unknown(self.kind, name, self._entries)
        return self._entries[name].obj

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def names(self) -> list[str]:
        """All registered names, sorted."""
        return sorted(self._entries)

    def parameters(self, name: str, skip: int = 0) -> dict[str, inspect.Parameter]:
        """The keyword parameters of the callable registered as ``name`` (after ``skip`` positional ones)."""
        obj = self.get(name)
        if not callable(obj):
            raise MentorError(f"{self.kind} {name!r} is not callable")
        return dict(list(inspect.signature(obj).parameters.items())[skip:])

    def create(self, name: str, *args: Any, **params: Any) -> Any:
        """Call the entry ``name`` with ``args`` and validated keyword ``params`` (see :func:`call_validated`)."""
        return call_validated(self.kind, name, self.get(name), args, params)


def call_validated(kind: str, name: str, function: Callable[..., Any], args: tuple[Any, ...],
                   params: dict[str, Any]) -> Any:
    """Call ``function(*args, **params)`` with ``params`` checked against its signature and annotations.

    Unknown parameter names list the nearest valid ones; missing, wrong-typed and out-of-range values (as
    declared by annotations such as ``Annotated[float, Field(gt=0)]``) raise a :class:`MentorError`
    naming the parameter, what is allowed and what was received.
    """
    valid = dict(list(inspect.signature(function).parameters.items())[len(args):])
    for key in params:
        if key not in valid:
            close = nearest(key, valid)
            hint = f"; nearest: {', '.join(close)}" if close else ""
            listing = ", ".join(valid) or "none"
            raise MentorError(f"unknown parameter {shown(key)} of {kind} {name!r}{hint} (valid: {listing})")
    try:
        config = pydantic.ConfigDict(arbitrary_types_allowed=True, allow_inf_nan=False)
        return pydantic.validate_call(config=config)(function)(*args, **params)
    except pydantic.ValidationError as error:
        errors = error.errors()
        first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])  # a typo explains a "missing"
        key = ".".join(str(part) for part in first["loc"])
        if first["type"].startswith("missing"):
            raise MentorError(f"The {key!r} parameter of {name} is required; add it to its params") from None
        raise MentorError(
            f"The {key!r} parameter of {name} is invalid: {first['msg']}. Got {shown(first.get('input'))} instead."
        ) from None
