"""`mentor report`: writes one HTML file; bad run directories are one-line errors (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mentor.cli import main
from tests.report.rundir import IMAGES_PER_RUN, copy_run, finished_run

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return finished_run(tmp_path_factory)


def test_report_of_two_runs(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = copy_run(run_dir, tmp_path / "other")
    out = tmp_path / "out" / "both.html"
    assert main(["report", str(run_dir), str(other), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"mentor: report written to {out}"
    document = out.read_text(encoding="utf-8")
    assert document.startswith("<!DOCTYPE html>")
    assert "<h3>All runs</h3>" in document
    assert document.count("<h3>Calibration</h3>") == 2
    assert document.count("<img") == 2 * IMAGES_PER_RUN


def test_missing_and_non_run_directories_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "does not exist" in error
    assert main(["report", str(tmp_path)]) == 2
    assert "is not a run directory" in capsys.readouterr().err
    assert not (tmp_path / "report.html").exists()
