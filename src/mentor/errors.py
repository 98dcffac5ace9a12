"""User-facing errors.

Every mistake a user can make (a wrong recipe key, an unknown name, a module path that is not in the
model, missing data files) raises a :class:`MentorError` whose message names the parameter, what is
allowed, what was received and how to fix it. The command line prints it on one line and exits with
status 2; library callers can catch it as a ``ValueError``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class MentorError(ValueError):
    """A mistake in what the user asked for, explained in one line."""


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
    return MentorError(f"unknown {kind} {value!r}{place}{hint} (valid: {listing})")
