"""Knowledge expansion end to end on tiny digits: the Python API, the built-in recipe through the command, resume
at the interrupted stage, and the one-line errors of bad input."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import mentor
from mentor.cli import main
from mentor.data import ArrayDataset, Splits
from mentor.engine import checkpoint
from mentor.errors import MentorError
from mentor.pipelines.expand import expand
from mentor.pipelines.expand_labels import Curriculum, split_labels
from mentor.recipes import load_recipe
from mentor.recipes.expand import build_expand_job
from mentor.schemes.online.peers import Distortion

FAST = {"epochs": 2, "batch_size": 32, "lr": 3e-3, "progress": False, "latency_batch": 8}


@pytest.fixture(scope="module")
def labeled_and_pool() -> tuple[Splits, ArrayDataset]:
    data = mentor.data.load("digits", validation=0.1, seed=0, limit=300)
    labeled, unlabeled = split_labels(data.train, 50, 10, seed=0)
    return replace(data, train=labeled), unlabeled


def test_the_python_api_trains_a_teacher_growing_students_and_the_baseline(labeled_and_pool) -> None:  # noqa: ANN001
    data, pool = labeled_and_pool
    result = expand(data, pool, "mlp-tiny", ["mlp-tiny", "mlp-small"], rounds=2, threshold=0.1,
                    curriculum=Curriculum(phases=2, start=0.5), **FAST)
    assert list(result.accuracies()) == ["teacher", "student round 1", "student round 2", "student alone"]
    sizes = {row.role: row.parameters for row in result.rows}
    assert sizes["student round 2"] == sizes["student alone"] > sizes["student round 1"] == sizes["teacher"]
    assert [p["round"] for p in result.pseudo] == [1, 2] and all(p["pool"] == len(pool) for p in result.pseudo)
    assert all(p["right"] is not None and 0 <= p["right"] <= 1 for p in result.pseudo)  # the pool kept its labels
    assert "pseudo labels right %" in result.table()
    assert {r["run"] for r in result.records} == {"teacher", "student-round-1", "student-round-2", "student-alone"}
    assert {"train/labeled", "train/pseudo"} <= set(result.history("student round 1")[0])


def test_bare_unlabeled_images_are_taken_and_hard_labels_without_balance(labeled_and_pool) -> None:  # noqa: ANN001
    data, pool = labeled_and_pool
    result = expand(data, pool.inputs, "mlp-tiny", "mlp-tiny", rounds=1, soft=False, balance=False, threshold=0.0,
                    baseline=False, **FAST)
    assert list(result.accuracies()) == ["teacher", "student round 1"]
    assert result.pseudo[0]["right"] is None and result.pseudo[0]["kept"] == result.pseudo[0]["selected"] == len(pool)


@pytest.mark.parametrize(("changes", "message"), [
    ({"rounds": 0}, r"'rounds' parameter of expand must be an integer >= 1. Got 0"),
    ({"threshold": 1.0}, r"'threshold' parameter of expand must be in \[0, 1\). Got 1.0"),
    ({"threshold": -0.1}, r"'threshold' parameter of expand must be in \[0, 1\). Got -0.1"),
    ({"unlabeled_ratio": 0.0}, r"'unlabeled_ratio' parameter of expand must be > 0"),
    ({"curriculum": Curriculum(phases=1)}, r"'curriculum' parameter of expand needs phases >= 2"),
    ({"rounds": 3, "students": ["mlp-tiny", "mlp-small"]}, r"one per round \(3\). Got 2"),
])
def test_bad_parameters_fail_before_training(labeled_and_pool, changes: dict, message: str) -> None:  # noqa: ANN001
    data, pool = labeled_and_pool
    arguments = {"students": "mlp-tiny", **FAST, **changes}
    with pytest.raises(MentorError, match=message):
        expand(data, pool, "mlp-tiny", **arguments)


def test_bad_data_fails_in_one_line_naming_what_is_wrong(labeled_and_pool) -> None:  # noqa: ANN001
    data, pool = labeled_and_pool
    with pytest.raises(MentorError, match=r"inputs shaped like the labeled ones, \(1, 8, 8\). Got \(1, 8, 7\)"):
        expand(data, pool.inputs[..., :7], "mlp-tiny", "mlp-tiny", **FAST)
    without = data.train.subset(torch.nonzero((data.train.targets != 3) & (data.train.targets != 7)).flatten())
    with pytest.raises(MentorError, match=r"no sample of class\(es\) 3, 7 of 10"):
        expand(replace(data, train=without), pool, "mlp-tiny", "mlp-tiny", **FAST)
    with pytest.raises(MentorError, match=r"'unlabeled' parameter of expand holds no images"):
        expand(data, pool.inputs[:0], "mlp-tiny", "mlp-tiny", **FAST)


TINY = ["--set", "data.limit=300", "--set", "train.epochs=2", "--set", "teacher.train.epochs=2",
        "--set", "expand.labels=50", "--set", "latency_batch=8", "--quiet"]


def test_the_builtin_recipe_runs_and_resumes_at_the_stage_it_stopped(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    assert main(["run", "noisy-student", "--out", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    assert "student round 2" in printed and "pseudo labels right %" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["models"]) == {"teacher", "student round 1", "student round 2", "student alone"}
    seed = out / "checkpoints" / "seed0"
    finished = {stage: (seed / stage / "last.pt").read_bytes() for stage in ("teacher", "student-round-1")}
    weights = checkpoint.load(seed / "student-round-1" / "best.pt")["models"]["student"]
    for stage in ("student-round-2", "student-alone"):  # the run stopped after round 1
        for path in (seed / stage).iterdir():
            path.unlink()
    assert main(["resume", str(out), "--quiet"]) == 0
    assert capsys.readouterr().out.count("seed 0: student round 1") == 1
    for stage, saved in finished.items():  # loaded, not retrained: their checkpoints were not written again
        assert (seed / stage / "last.pt").read_bytes() == saved
    again = checkpoint.load(seed / "student-round-1" / "best.pt")["models"]["student"]
    assert all(torch.equal(weights[key], again[key]) for key in weights)
    assert (seed / "student-round-2" / "last.pt").is_file() and (seed / "student-alone" / "last.pt").is_file()
    assert main(["eval", str(out)]) == 0


@pytest.mark.parametrize(("override", "message"), [
    ("expand.threshold=1.0", r"recipe key 'expand.threshold': Input should be less than 1; got 1.0"),
    ("expand.rounds=0", r"recipe key 'expand.rounds': Input should be greater than or equal to 1; got 0"),
    ("train.jitter=2", r"recipe key 'train.jitter' \(2\): the students' shift is expand.shift"),
    ("expand.labels=55", r"'labels' parameter of expand must be a multiple of the 10 classes"),
    ("student=null", r"recipe: an expand recipe needs teacher and student; missing student$"),
    ("knowledge={method: kd}", r"recipe: an expand recipe needs teacher and student and no knowledge"),
])
def test_bad_recipe_keys_fail_before_the_run_directory(tmp_path: Path, capsys: pytest.CaptureFixture, override: str,
                                                      message: str) -> None:
    assert main(["run", "noisy-student", "--out", str(tmp_path / "run"), *TINY, "--set", override]) != 0
    error = capsys.readouterr().err.strip()
    assert re.search(message, error) and len(error.splitlines()) == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("noisy", [False, True])
def test_a_noisy_teacher_trains_with_the_students_input_noise(noisy: bool) -> None:
    recipe = load_recipe("noisy-student", [f"expand.noisy_teacher={str(noisy).lower()}"])
    job = build_expand_job(recipe, progress=False)
    assert job.settings.augment == Distortion(shift=1, noise=0.1)  # the built-in recipe's students' noise
    assert job.teacher_settings.augment == (job.settings.augment if noisy else None)
