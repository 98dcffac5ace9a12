"""A small finished run (digits, 200 samples, 2 seeds, 2 epochs), made once per test session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SETTINGS = [
    "seeds=[0, 1]", "data.limit=200", "train.epochs=2", "teacher.train.epochs=3", "teacher.model=mlp-small",
    "train.batch_size=32", "teacher.train.batch_size=32", "latency_batch=16",
]
# Per run: a loss plot for each of the 3 roles, 1 scales plot, 1 accuracy plot, confusion of the 2 students,
# 1 calibration, 1 bars.
IMAGES_PER_RUN = 3 + 1 + 1 + 2 + 1 + 1


def finished_run(factory: pytest.TempPathFactory) -> Path:
    """The run directory, shared by every test of the session (treat it as read-only)."""
    from mentor.cli import main

    folder = factory.getbasetemp() / "mentor-finished-run"
    if not (folder / "summary.json").is_file():
        arguments = ["run", "quickstart", "--out", str(folder), "--quiet", "--force"]
        for setting in SETTINGS:
            arguments += ["--set", setting]
        if main(arguments) != 0:
            raise RuntimeError("the fixture run failed")
    return folder


def copy_run(source: Path, target: Path) -> Path:
    """A private, writable copy of a run directory (for tests that damage it)."""
    shutil.copytree(source, target)
    return target
