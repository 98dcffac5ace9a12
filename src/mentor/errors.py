"""User-facing errors.

Every mistake a user can make (a wrong recipe key, an unknown name, a module path that is not in the
model, missing data files) raises a :class:`MentorError` whose message names the parameter, what is
allowed, what was received and how to fix it. The command line prints it on one line and exits with
status 2; library callers can catch it as a ``ValueError``. Something Mentor repaired on its own (a
damaged cache entry rebuilt, a torn metrics line dropped) is a :class:`MentorWarning`, one line too.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import reprlib
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

_ECHO = reprlib.Repr()
_ECHO.maxstring, _ECHO.maxother, _ECHO.maxlist, _ECHO.maxdict, _ECHO.maxlevel = 60, 60, 6, 6, 3
ECHO_LIMIT = 120


class MentorError(ValueError):
    """A mistake in what the user asked for, explained in one line."""


class MentorWarning(UserWarning):
    """Something was wrong and Mentor repaired it (the message says what and how)."""


def warn(message: str) -> None:
    """Issue a :class:`MentorWarning` (the command line prints it as ``mentor: warning: ...``)."""
    warnings.warn(message, MentorWarning, stacklevel=2)


def shown(value: Any) -> str:
    """``repr(value)`` capped to :data:`ECHO_LIMIT` characters, for echoing input in messages.

    >>> shown(list(range(100)))
    '[0, 1, 2, 3, 4, 5, ...]'
    """
    return clip(_ECHO.repr(value))


def clip(text: str) -> str:
    """``text`` on one line, capped to :data:`ECHO_LIMIT` characters (for quoting other errors' messages)."""
    line = " ".join(text.split())
    return line if len(line) <= ECHO_LIMIT else line[:ECHO_LIMIT - 3] + "..."


def nearest(value: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The up to ``n`` entries of ``choices`` closest to ``value`` (difflib ratio, best first)."""
    choices = list(choices)
    close = difflib.get_close_matches(value, choices, n=n, cutoff=0.5)
    if close:
        return close
    # Fall back to shared prefixes so that 'layer5' still suggests 'layer4' style paths.
    prefix = value.rstrip("0123456789.")
    return [c for c in choices if prefix and c.startswith(prefix)][:n]


def unknown(kind: str, value: str, choices: Iterable[str], where: str = "") -> MentorError:
    """Build the error for a name that is not one of ``choices``.

    >>> str(unknown("method", "kdd", ["kd", "fitnet"]))
    "unknown method 'kdd'; nearest: kd (valid: fitnet, kd)"
    """
    choices = sorted(choices)
    close = nearest(value, choices)
    hint = f"; nearest: {', '.join(close)}" if close else ""
    place = f" in {where}" if where else ""
    listing = ", ".join(choices)
    if len(listing) > 300:
        listing = listing[:300] + ", ..."
    return MentorError(f"unknown {kind} {shown(value)}{place}{hint} (valid: {listing})")


def describe_os_error(error: OSError) -> str:
    """One line for a failed read or write: the path, what went wrong and the fix."""
    path = f" {clip(str(error.filename))!r}" if error.filename is not None else ""
    reason = error.strerror or type(error).__name__
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = "free some space there; an interrupted run continues with `mentor resume RUN_DIR`"
    elif error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = ("make it writable, or write elsewhere (--out for runs, MENTOR_CACHE for the cache, "
               "train.teacher_cache: false to skip the teacher cache)")
    else:
        fix = "check the path and the device"
    return f"cannot access{path}: {reason}; {fix}"


@contextlib.contextmanager
def writing(path: object) -> Iterator[None]:
    """Name ``path`` in an ``OSError`` raised inside the block that names no file (a write on a full disk)."""
    try:
        yield
    except OSError as error:
        if error.filename is None:
            error.filename = str(path)
        raise
