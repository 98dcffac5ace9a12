"""End-to-end CLI runs on tiny data, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mentor.cli import main

TINY = [
    "--set", "seeds=[0]", "--set", "data.limit=200", "--set", "train.epochs=2",
    "--set", "teacher.train.epochs=2", "--set", "teacher.model=mlp-small",
    "--quiet",
]


def test_run_writes_a_complete_run_directory_and_prints_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "run"
    assert main(["run", "quickstart", "--out", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    for role in ("teacher", "student alone", "student distilled"):
        assert role in printed
    assert "latency ms/batch" in printed and "parameters" in printed
    assert {p.name for p in out.iterdir()} >= {"recipe.yaml", "metrics.jsonl", "summary.json", "checkpoints"}
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["models"]) == {"teacher", "student alone", "student distilled"}
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    distilled = [r for r in records if r["run"] == "student-distilled"]
    assert len(distilled) == 2 and {"train/ce", "train/kl", "val/student/accuracy"} <= set(distilled[0])
    assert (out / "checkpoints" / "seed0" / "student-distilled" / "best.pt").is_file()


def test_same_seed_gives_bitwise_identical_metrics(tmp_path: Path) -> None:
    def metrics(name: str) -> list[dict]:
        main(["run", "quickstart", "--out", str(tmp_path / name), *TINY])
        records = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in r.items() if k != "seconds"} for r in records]

    assert metrics("a") == metrics("b")


def test_existing_run_directory_is_refused_and_kept(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    assert main(["run", "quickstart", "--out", str(out), *TINY]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (out / "precious.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "train.epoch=3"], "unknown recipe key 'train.epoch'; nearest: epochs"),
        (["--set", "knowledge.method=kdd"], "unknown knowledge method 'kdd'; nearest: kd"),
        (["--set", "knowledge.params.temperature=-1"], "'temperature' parameter of kd"),
        (["--set", "student.model=mlp-tny"], "unknown model 'mlp-tny'"),
        (["--set", "knowledge.method=fitnet", "--set", "knowledge.params={hint: stage9, guided: fc1}"],
         "unknown module path 'stage9' in teacher"),
        (["--set", "teacher.model=cnn-small", "--set", "knowledge.method=fitnet",
          "--set", "knowledge.params={hint: stage2, guided: fc1}"],
         "adapter 'conv1x1' needs feature maps"),
        (["--set", "data.name=fashion", "--set", "data.limit=10"], "unknown dataset 'fashion'; nearest: fashion-mnist"),
        (["--set", "data.name=folder", "--set", "data.root=/nonexistent"], "/nonexistent"),
        (["--set", "student.options={num_classes: 3}"], "outputs shape (3,) but digits has 10 classes"),
    ],
)
def test_mistakes_give_one_line_errors_and_write_nothing(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "run"
    assert main(["run", "quickstart", "--out", str(out), *TINY, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()


def test_console_script_exits_2_without_traceback() -> None:
    done = subprocess.run([sys.executable, "-m", "mentor", "run", "nope"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.startswith("mentor: error: unknown recipe 'nope'") and "Traceback" not in done.stderr


def test_list_and_recipes(capsys: pytest.CaptureFixture) -> None:
    assert main(["list", "knowledge"]) == 0
    listed = capsys.readouterr().out
    assert "kd" in listed and "Hinton" in listed and "fitnet" in listed
    assert main(["recipes"]) == 0
    assert "quickstart" in capsys.readouterr().out
