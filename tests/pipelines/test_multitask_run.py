"""Multi-task runs end to end on tiny digits: the Python API, the recipe and the command, resume, bad input."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import mentor
from mentor.cli import main
from mentor.engine import checkpoint
from mentor.errors import MentorError
from mentor.pipelines.multitask import check_job, run
from mentor.pipelines.multitask_data import Task
from mentor.recipes import load_recipe
from mentor.recipes.multitask import build_multitask_job

FAST = {"epochs": 1, "batch_size": 16, "progress": False, "limit": 120, "latency_batch": 4}
TASKS = [Task("digits", "digits"), Task("ink", "digits", "ink")]
DIGITS = ["--set", "multitask.tasks=[{name: digits, dataset: digits}, {name: ink, dataset: digits, target: ink}]",
          "--set", "data.limit=120", "--set", "train.epochs=1", "--set", "teacher.train.epochs=1",
          "--set", "train.batch_size=16", "--set", "latency_batch=4", "--set", "student.options.channels=[4]",
          "--set", "teacher.model=cnn-tiny", "--quiet"]


def test_the_python_api_trains_teachers_and_every_student() -> None:
    result = mentor.pipelines.multitask(TASKS, "cnn-tiny", student_options={"channels": [4]}, cross_task=True,
                                        **FAST)
    roles = {row.role for row in result.rows}
    assert roles == {f"{task} {role}" for task in ("digits", "ink")
                     for role in ("teacher", "student", "cross-task student", "ground-truth student")}
    ink = [row for row in result.rows if row.role == "ink student"][0]
    digits = [row for row in result.rows if row.role == "digits student"][0]
    assert set(ink.errors) == {"mse", "mae"} and 0.0 <= digits.accuracy <= 1.0 and not digits.errors
    teachers = sum(row.parameters for row in result.rows if row.role.endswith(" teacher"))
    assert result.parameter_ratio() == pytest.approx(ink.parameters / teachers)
    assert "student parameters / sum of the specialists'" in result.table()
    assert result.models["ink student"](torch.zeros(2, 1, 8, 8)).shape == (2, 1)


def test_the_builtin_recipe_runs_from_the_command(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    assert main(["run", "must", "--out", str(out), *DIGITS, "--set", "multitask.ground_truth=false"]) == 0
    printed = capsys.readouterr().out
    assert "digits cross-task student" in printed and "parameters / sum of the specialists'" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert "mse_mean" in summary["models"]["ink student"] and "accuracy_mean" in summary["models"]["digits teacher"]
    stages = sorted(path.name for path in (out / "checkpoints" / "seed0").iterdir())
    assert stages == ["cross-task-student", "student", "teacher-digits", "teacher-ink"]

    # mentor eval measures every model on its task's test split again: the run's own numbers
    assert main(["eval", str(out)]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[3:]}
    assert set(rows) == {f"{task}-{role}" for task in ("digits", "ink")
                         for role in ("teacher", "student", "cross-task-student")}
    for name, entry in summary["models"].items():
        shown = rows[name.replace(" ", "-")]
        if "mse" in entry:
            assert float(shown[-2]) == pytest.approx(entry["mse"][0], rel=1e-4)
        else:
            assert float(shown[-3]) == pytest.approx(100 * entry["accuracy"][0], abs=0.006)
    assert main(["eval", str(out), "--model", "student"]) == 2
    assert "digits-student" in capsys.readouterr().err


def test_a_stopped_run_resumes_at_its_last_stage(tmp_path: Path) -> None:
    recipe = load_recipe("must", [item for item in DIGITS[:-1] if item != "--set"])
    job = build_multitask_job(recipe, progress=False)
    out = tmp_path / "run"
    first = run(replace(job, ground_truth=False, cross_task=None), out, echo=lambda line: None)
    saved = checkpoint.load(out / "checkpoints" / "seed0" / "teacher-digits" / "last.pt")
    resumed = run(job, out, echo=lambda line: None, resume=True)
    assert checkpoint.load(out / "checkpoints" / "seed0" / "teacher-digits" / "last.pt")["epoch"] == saved["epoch"]
    for name in ("digits teacher", "digits student"):  # finished stages are loaded, not trained again
        before, after = first.models[name].state_dict(), resumed.models[name].state_dict()
        assert all(torch.equal(before[key], after[key]) for key in before)
    assert "digits ground-truth student" in resumed.models and "digits cross-task student" in resumed.models


def test_bad_tasks_are_one_line_errors() -> None:
    with pytest.raises(MentorError, match=r"task name 'digits' is used twice"):
        mentor.pipelines.multitask([*TASKS, Task("digits", "digits")], "cnn-tiny", **FAST)
    with pytest.raises(MentorError, match=r"shared pool holds images of shape \(1, 8, 8\) \(from digits\) but the "
                                          r"teacher of task 'fashion' takes fashion-mnist inputs of shape "
                                          r"\(1, 28, 28\)"):
        mentor.pipelines.multitask([*TASKS, Task("fashion", "fashion-mnist")], "cnn-tiny", **FAST)
    with pytest.raises(MentorError, match=r"The 'weight' of task 'ink' must be >= 0"):
        mentor.pipelines.multitask([TASKS[0], Task("ink", "digits", "ink", -1.0)], "cnn-tiny", **FAST)


def test_student_heads_that_do_not_match_the_tasks_are_refused() -> None:
    with pytest.raises(MentorError, match=r"student's heads \{'digits': 10\} do not match the tasks "
                                          r"\{'digits': 10, 'ink': 1\}"):
        mentor.pipelines.multitask(TASKS, "cnn-tiny", student_options={"heads": {"digits": 10}}, **FAST)
    with pytest.raises(MentorError, match="must be a multi-head model built with heads .*unknown option 'heads'"):
        mentor.pipelines.multitask(TASKS, "cnn-tiny", "cnn-tiny", **FAST)


def test_an_epoch_count_below_one_is_refused() -> None:
    job = build_multitask_job(load_recipe("must", [item for item in DIGITS[:-1] if item != "--set"]), False)
    with pytest.raises(MentorError, match=r"train.epochs must be at least 1.*Got 0"):
        check_job(replace(job, settings=replace(job.settings, epochs=0)))


@pytest.mark.parametrize(("override", "message"), [
    ("train.epochs=0", "epochs"),
    ("multitask.pool_fraction=1.5", "pool_fraction"),
    ("multitask.tasks=[{name: a, dataset: digits, target: angle}]", "target"),
    ("knowledge={method: kd}", "a multitask recipe needs teacher and student and no knowledge"),
])
def test_bad_recipe_values_exit_with_one_line(override: str, message: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    assert main(["run", "must", "--out", str(tmp_path / "run"), *DIGITS, "--set", override]) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1 and not (tmp_path / "run").exists()
