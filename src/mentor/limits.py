"""Upper bounds on the sizes a typo can blow up, and the one switch that lifts them.

``epochs: 1e12`` or a CNN ``depth: 1e9`` is almost always a typo, and would hang or exhaust memory before an
error could be shown. The bounds below sit far above what the built-in models and recipes use; setting
``MENTOR_NO_LIMITS=1`` in the environment lifts every one of them.
"""

from __future__ import annotations

import os

from mentor.errors import MentorError

LIFT = "MENTOR_NO_LIMITS"
EPOCHS = 100_000
SEEDS = 1_000
BATCH = 1 << 24
MODEL_LAYERS = 1_000
MODEL_PARAMETERS = 500_000_000


def check(value: int, limit: int, what: str) -> int:
    """``value`` when it is at most ``limit`` (or the limits are lifted); a one-line error saying how to lift it.

    >>> check(3, 10, "epochs")
    3
    """
    if value > limit and os.environ.get(LIFT) != "1":
        raise MentorError(f"{value:,} {what} is above the limit of {limit:,} (a guard against typos); "
                          f"set {LIFT}=1 in the environment to lift it")
    return value
