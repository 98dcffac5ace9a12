"""A run directory: --force replaces only what Mentor made, one process at a time, plain names, the recipe it
started with."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from mentor.cli import main
from mentor.engine import rundir
from tests.report.rundir import copy_run, finished_run

TINY = ["--set", "seeds=[0]", "--set", "data.limit=100", "--set", "train.epochs=1", "--set", "teacher.train.epochs=1",
        "--set", "teacher.model=mlp-tiny", "--set", "latency_batch=8", "--quiet"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return finished_run(tmp_path_factory)


def error_line(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("mentor: error: ") and "Traceback" not in err, err
    return err


def test_force_refuses_a_folder_mentor_did_not_make(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    assert main(["run", "quickstart", "--out", str(precious), "--force", *TINY]) == 2
    assert "only a run directory Mentor made" in error_line(capsys)
    assert (precious / "thesis.tex").read_text() == "years of work"


def test_force_never_replaces_the_current_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "notes.txt").write_text("keep")
    (tmp_path / rundir.MARKER).write_text("{}")  # even one that looks like a run directory
    monkeypatch.chdir(tmp_path)
    for out in (".", str(tmp_path), ".."):
        assert main(["run", "quickstart", "--out", out, "--force", *TINY]) == 2
        assert "holds the current directory" in error_line(capsys)
    assert (tmp_path / "notes.txt").read_text() == "keep"


def test_force_replaces_a_run_directory_and_keeps_it_marked(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    assert main(["run", "quickstart", "--out", str(out), *TINY]) == 0
    (out / "stray.txt").write_text("from the old run")
    assert main(["run", "quickstart", "--out", str(out), "--force", *TINY]) == 0
    assert not (out / "stray.txt").exists() and (out / "summary.json").is_file()
    marker = json.loads((out / rundir.MARKER).read_text())
    assert marker["format"] == rundir.FORMAT and marker["recipe"]["name"] == "quickstart"


@pytest.mark.parametrize("command", ["run", "resume"])
def test_a_locked_run_directory_is_refused_naming_the_holder(
    command: str, run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = copy_run(run_dir, tmp_path / "run")
    before = (out / "summary.json").read_bytes()
    arguments = ["run", "quickstart", "--out", str(out), "--force", *TINY] if command == "run" else ["resume", str(out)]
    with rundir.locked(out):  # another process, as far as the lock can tell: a second open file description
        assert main(arguments) == 2
    assert f"in use by another mentor process (pid {os.getpid()})" in error_line(capsys)
    assert (out / "summary.json").read_bytes() == before


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/absolute", "a/b", "..", ".hidden", "", "x" * 101, "tab\tname"])
def test_a_recipe_name_is_a_plain_name(name: str, tmp_path: Path, capsys: pytest.CaptureFixture,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"name": name, "teacher": {"model": "mlp-tiny"}, "student": {"model": "mlp-tiny"},
                                      "knowledge": {"method": "kd"}}))
    assert main(["run", str(recipe)]) == 2
    assert "recipe key 'name'" in error_line(capsys)
    assert [path.name for path in tmp_path.iterdir()] == ["recipe.yaml"]


def test_resume_refuses_an_edited_recipe_naming_the_changed_keys(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = copy_run(run_dir, tmp_path / "run")
    recipe = yaml.safe_load((out / "recipe.yaml").read_text())
    recipe["train"]["optimizer"]["lr"] *= 2
    recipe["seeds"] = [0, 7]
    (out / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["resume", str(out)]) == 2
    assert "was edited after the run started (changed: seeds.1, train.optimizer.lr)" in error_line(capsys)


def test_resume_repairs_a_damaged_recipe_from_the_marker(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = copy_run(run_dir, tmp_path / "run")
    original = yaml.safe_load((out / "recipe.yaml").read_text())
    (out / "recipe.yaml").write_bytes(b"\xff\xfe garbage")
    assert main(["resume", str(out), "--quiet"]) == 0
    (warning,) = capsys.readouterr().err.splitlines()  # one line, as every warning of the command line
    assert warning.startswith("mentor: warning: run recipe") and warning.endswith("restored it from .mentor-run")
    assert yaml.safe_load((out / "recipe.yaml").read_text()) == original


def test_changed_keys_lists_dotted_paths() -> None:
    before = {"train": {"epochs": 3, "optimizer": {"lr": 0.1}}, "seeds": [0, 1], "name": "a"}
    after = {"train": {"epochs": 3, "optimizer": {"lr": 0.2}}, "seeds": [0], "name": "a", "extra": 1}
    assert rundir.changed_keys(before, after) == ["extra", "seeds.1", "train.optimizer.lr"]
