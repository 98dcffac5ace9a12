"""A run directory's own files: the marker that says Mentor made it, and the lock of the process writing to it.

- ``.mentor-run`` (JSON) marks a directory made by ``mentor run`` and keeps the recipe the run started with, so that
  ``mentor resume`` notices an edited ``recipe.yaml``. ``--force`` replaces only a directory that has it.
- ``.lock`` is held (an exclusive ``flock``) by the process that runs or resumes into the directory and holds its
  pid: a second ``run --force`` or ``resume`` on the same directory is refused and names the holder. The lock goes
  with the process, so a killed run never leaves a stale one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from mentor.errors import MentorError, warn, writing
from mentor.recipes.load import RUN_RECIPE, read_run_recipe, validate

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]
    import msvcrt

MARKER, LOCK = ".mentor-run", ".lock"
FORMAT = "mentor-run/1"


def _try_lock(descriptor: int) -> bool:
    try:
        if fcntl is not None:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            msvcrt.locking(descriptor, msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    return True


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold ``folder``'s lock (with this process's pid in it) for the block; a one-line error when another holds it."""
    descriptor = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _try_lock(descriptor):
            holder = os.read(descriptor, 32).decode("ascii", "replace").strip() or "unknown"
            raise MentorError(f"run directory {str(folder)!r} is in use by another mentor process (pid {holder}); "
                              "wait for it to finish, or choose another --out")
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(descriptor)  # releases the lock


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


@contextlib.contextmanager
def prepared(out: Path, force: bool, recipe: dict[str, Any]) -> Iterator[None]:
    """Create (or, with ``force``, empty) the run directory ``out``, lock it and mark it; held for the block.

    Raises:
        MentorError: when ``out`` is a file, exists without ``force``, is not a run directory Mentor made, holds the
            current directory, or cannot be created.
    """
    if out.exists() and not out.is_dir():
        raise MentorError(f"--out {str(out)!r} is a file, not a directory; choose another --out")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise MentorError(f"run directory {str(out)!r} already exists; "
                              "choose another --out or pass --force to replace it")
        if _inside(Path.cwd().resolve(), out.resolve()):
            raise MentorError(f"--out {str(out)!r} holds the current directory; --force never replaces it, "
                              "choose another --out")
        if not (out / MARKER).is_file():
            raise MentorError(f"--force replaces only a run directory Mentor made (one with a {MARKER} file); "
                              f"{str(out)!r} is not one: choose another --out, or remove it yourself")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise MentorError(f"cannot create the run directory {str(out)!r} ({error.strerror}); "
                          "choose another --out") from None
    with locked(out):
        for child in out.iterdir():
            if child.name != LOCK:
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        write_marker(out, recipe)
        yield


def write_marker(out: Path, recipe: dict[str, Any]) -> None:
    """Mark ``out`` as a run directory started with ``recipe`` (its resolved keys)."""
    with writing(out / MARKER):
        (out / MARKER).write_text(json.dumps({"format": FORMAT, "recipe": recipe}, indent=1) + "\n", encoding="utf-8")


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = ((str(index), item) for index, item in enumerate(value))
    else:
        return {prefix: value}
    flat = {}
    for key, item in items:
        flat.update(_flat(item, f"{prefix}.{key}" if prefix else str(key)))
    return flat or {prefix: value}


def changed_keys(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Dotted paths whose values differ between two recipes (``train.optimizer.lr``, ``seeds.1``).

    >>> changed_keys({"train": {"epochs": 3}, "seeds": [0]}, {"train": {"epochs": 5}, "seeds": [0]})
    ['train.epochs']
    """
    old, new = _flat(before), _flat(after)
    return sorted(key for key in old.keys() | new.keys() if old.get(key, KeyError) != new.get(key, KeyError))


def _started(out: Path) -> dict[str, Any] | None:
    """The recipe the run in ``out`` started with (``None`` when it has no marker, or a damaged one: a warning)."""
    marker = out / MARKER
    if not marker.is_file():
        return None
    try:
        started = json.loads(marker.read_text(encoding="utf-8"))["recipe"]
        validate(started)
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        warn(f"{str(marker)!r} is damaged, so recipe.yaml cannot be compared with the recipe the run started with")
        return None
    return started


def check_recipe(out: Path) -> None:
    """Before a resume: refuse a ``recipe.yaml`` edited since the run started; repair a damaged one (or a damaged
    marker) from the other, with a warning.

    A run directory made before the marker existed is resumed with its ``recipe.yaml`` as it is.
    """
    started = _started(out)
    try:
        recipe = read_run_recipe(out).model_dump(mode="json")
    except MentorError as error:
        if started is None:
            raise
        warn(f"{error}; restored it from {MARKER}")
        with writing(out / RUN_RECIPE):
            (out / RUN_RECIPE).write_text(yaml.safe_dump(started, sort_keys=False), encoding="utf-8")
        return
    if started is None:
        if (out / MARKER).exists():
            write_marker(out, recipe)
        return
    changed = changed_keys(started, recipe)
    if changed:
        listing = ", ".join(changed[:8]) + (" ..." if len(changed) > 8 else "")
        raise MentorError(f"recipe.yaml of {str(out)!r} was edited after the run started (changed: {listing}); "
                          "resume continues the recipe the run started with: undo the edit, or start a new run with "
                          f"`mentor run {out / RUN_RECIPE} --out NEW_DIR`")
