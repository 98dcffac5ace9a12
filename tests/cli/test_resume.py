"""Kill a run with SIGKILL mid-training, resume it, and get exactly the uninterrupted run's results."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mentor.cli import main

ARGS = [
    "--set", "seeds=[0]", "--set", "data.limit=600", "--set", "train.epochs=6", "--set", "train.batch_size=16",
    "--set", "teacher.train.epochs=2", "--set", "teacher.model=mlp-small", "--quiet",
    "--set", "knowledge.method=fitnet",
    "--set", "knowledge.params={hint: fc1, guided: fc1, adapter: linear, hint_epochs: 2}",
]


def records(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return sorted(({k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines),
                  key=lambda r: (r["run"], r["stage"], r["epoch"]))


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_then_resume_equals_uninterrupted_run(tmp_path: Path) -> None:
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    assert main(["run", "quickstart", "--out", str(whole), *ARGS]) == 0
    process = subprocess.Popen([sys.executable, "-m", "mentor", "run", "quickstart", "--out", str(broken), *ARGS],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = broken / "checkpoints" / "seed0" / "student-distilled" / "distill" / "last.pt"
    deadline = time.monotonic() + 120
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (broken / "summary.json").exists()
    assert main(["resume", str(broken), "--quiet"]) == 0
    assert records(broken) == records(whole)
    expected = json.loads((whole / "summary.json").read_text())["models"]
    resumed = json.loads((broken / "summary.json").read_text())["models"]
    for role in expected:
        assert resumed[role]["accuracy"] == expected[role]["accuracy"], role


def test_resume_refuses_a_directory_that_is_not_a_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["resume", str(tmp_path)]) == 2
    assert "is not a run directory" in capsys.readouterr().err
