"""One generic registry for everything that is looked up by name (methods, models, datasets, ...)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from mentor.errors import MentorError, unknown

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
