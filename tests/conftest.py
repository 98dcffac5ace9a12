"""Test-wide settings: a private cache directory (the user's is never written by the tests)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mentor.data.cache import cache_path


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    real = cache_path()
    private = tmp_path_factory.mktemp("mentor-cache")
    if (real / "mnist").is_dir():  # reuse a fetched MNIST instead of downloading it again
        (private / "mnist").symlink_to(real / "mnist")
    previous = os.environ.get("MENTOR_CACHE")
    os.environ["MENTOR_CACHE"] = str(private)
    yield private
    if previous is None:
        os.environ.pop("MENTOR_CACHE", None)
    else:
        os.environ["MENTOR_CACHE"] = previous
