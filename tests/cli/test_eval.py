"""`mentor eval`: accuracy and loss of a trained model on its test split or another compatible dataset."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from mentor.cli import main
from mentor.engine import checkpoint
from mentor.models import create
from mentor.report.runs import Run
from tests.report.rundir import copy_run, finished_run

LINE = re.compile(r"^(\S+) \(seed (\d+)\) on the (.+) test split, (\d+) samples: accuracy ([\d.]+)%, loss ([\d.]+)$")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return finished_run(tmp_path_factory)


def _eval(arguments: list[str], capsys: pytest.CaptureFixture[str]) -> re.Match[str]:
    assert main(["eval", *arguments]) == 0
    match = LINE.match(capsys.readouterr().out.strip())
    assert match is not None
    return match


def test_one_model_on_the_run_test_split(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    summary = json.loads((run_dir / "summary.json").read_text())["models"]
    match = _eval([str(run_dir), "--model", "student-distilled"], capsys)
    assert match.group(1, 2, 3, 4) == ("student-distilled", "0", "digits", "200")
    assert float(match.group(5)) == pytest.approx(100 * summary["student distilled"]["accuracy"][0], abs=0.006)
    match = _eval([str(run_dir), "--role", "teacher", "--seed", "1"], capsys)
    assert match.group(1, 2) == ("teacher", "1")
    assert float(match.group(5)) == pytest.approx(100 * summary["teacher"]["accuracy"][1], abs=0.006)


def test_without_a_name_every_model_is_listed_with_its_accuracy(run_dir: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    summary = json.loads((run_dir / "summary.json").read_text())["models"]
    assert main(["eval", str(run_dir), "--seed", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "(seed 1) on the digits test split, 200 samples" in lines[0] and "--model NAME" in lines[0]
    rows = {line.split()[0]: float(line.split()[1]) for line in lines[3:]}
    assert list(rows) == ["teacher", "student-alone", "student-distilled"]
    for name, accuracy in rows.items():
        assert accuracy == pytest.approx(100 * summary[name.replace("-", " ")]["accuracy"][1], abs=0.006)


def _folder(path: Path, inputs: np.ndarray, labels: np.ndarray) -> Path:
    path.mkdir()
    for part in ("train", "test"):
        np.save(path / f"{part}_x.npy", inputs)
        np.save(path / f"{part}_y.npy", labels)
    return path


def test_a_compatible_dataset_is_standardized_like_the_training_data(run_dir: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    generator = np.random.default_rng(0)
    inputs = generator.random((30, 8, 8)).astype(np.float32)
    labels = np.arange(30) % 10
    folder = _folder(tmp_path / "other", inputs, labels)
    match = _eval([str(run_dir), "--data", str(folder), "--model", "student-distilled"], capsys)
    # Written out: the run's training mean/std, the student's best weights, accuracy and cross-entropy.
    data = Run.open(run_dir).load_data(0)
    model = create("mlp-tiny", 10, (1, 8, 8))
    state = checkpoint.load(run_dir / "checkpoints" / "seed0" / "student-distilled" / "best.pt")
    model.load_state_dict(state["models"]["student"])
    standardized = (torch.from_numpy(inputs).unsqueeze(1) - data.mean.item()) / data.std.item()
    with torch.no_grad():
        logits = model.eval()(standardized)
    targets = torch.from_numpy(labels)
    assert match.group(4) == "30"
    assert float(match.group(5)) == pytest.approx(100 * (logits.argmax(1) == targets).float().mean().item(), abs=0.006)
    assert float(match.group(6)) == pytest.approx(F.cross_entropy(logits, targets).item(), abs=6e-5)


def test_an_incompatible_dataset_says_what_differs(run_dir: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    shape = _folder(tmp_path / "shape", np.zeros((20, 4, 4), np.float32), np.arange(20) % 10)
    assert main(["eval", str(run_dir), "--data", str(shape)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "inputs of shape (1, 4, 4), not (1, 8, 8)" in error
    classes = _folder(tmp_path / "classes", np.zeros((20, 8, 8), np.float32), np.arange(20) % 3)
    assert main(["eval", str(run_dir), "--data", str(classes)]) == 2
    assert "3 classes, not 10" in capsys.readouterr().err


def test_bad_role_seed_and_checkpoint(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(run_dir), "--role", "studnet"]) == 2
    error = capsys.readouterr().err
    assert "unknown model 'studnet'" in error and "valid: student-alone, student-distilled, teacher" in error
    assert main(["eval", str(run_dir), "--seed", "5"]) == 2
    assert "no seed 5" in capsys.readouterr().err
    edited = copy_run(run_dir, tmp_path / "edited")
    recipe = yaml.safe_load((edited / "recipe.yaml").read_text())
    recipe["teacher"]["model"] = "cnn-tiny"
    (edited / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["eval", str(edited), "--role", "teacher"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "role 'teacher'" in error and "key 'stage1.conv1.weight'" in error


def test_a_corrupt_best_checkpoint_is_evaluated_from_the_copy_in_last(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = copy_run(run_dir, tmp_path / "run")
    best = run / "checkpoints" / "seed0" / "student-distilled" / "best.pt"
    damaged = bytearray(best.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    best.write_bytes(damaged)
    summary = json.loads((run / "summary.json").read_text())["models"]
    assert main(["eval", str(run), "--model", "student-distilled"]) == 0
    captured = capsys.readouterr()
    assert "checksum mismatch" in captured.err and "used the best weights that last.pt keeps" in captured.err
    match = LINE.match(captured.out.strip())
    assert match is not None
    assert float(match.group(5)) == pytest.approx(100 * summary["student distilled"]["accuracy"][0], abs=0.006)
