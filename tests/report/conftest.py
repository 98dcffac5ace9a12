"""Fixtures of the report tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.report.rundir import finished_run


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small finished run directory (read-only)."""
    return finished_run(tmp_path_factory)
