"""`mentor compare`: one text table of roles across runs."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from mentor.cli import main
from tests.report.rundir import copy_run, finished_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return finished_run(tmp_path_factory)


def test_compare_two_runs(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = copy_run(run_dir, tmp_path / "other")
    assert main(["compare", str(run_dir), str(other)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:3] == ["run", "recipe", "role"]
    assert len(lines) == 2 + 2 * 3
    summary = json.loads((run_dir / "summary.json").read_text())["models"]
    for line, role in zip(lines[2:5], ("teacher", "student alone", "student distilled"), strict=True):
        accuracies = [100 * value for value in summary[role]["accuracy"]]
        cells = line.split()
        assert cells[:3] == [run_dir.name, "quickstart", role.replace(" ", "-")]
        assert " ".join(cells[3:6]) == f"{statistics.fmean(accuracies):.2f} ± {statistics.stdev(accuracies):.2f}"
        assert cells[6] == "2"
        assert cells[7] == f"{summary[role]['parameters']:,}"
        assert cells[8] == f"{summary[role]['latency_ms']:.3f}"
    assert lines[5].split()[0] == "other"


def test_unfinished_or_missing_runs_exit_2(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    unfinished = copy_run(run_dir, tmp_path / "unfinished")
    (unfinished / "summary.json").unlink()
    assert main(["compare", str(run_dir), str(unfinished)]) == 2
    assert "no summary.json" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
