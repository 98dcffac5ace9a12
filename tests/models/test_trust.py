"""The security policy: a recipe imports code only with consent; registered and entry-point models need none."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import pytest
import torch
import yaml

from mentor.cli import main
from mentor.errors import MentorError
from mentor.models import create, trust
from tests.report.rundir import copy_run, finished_run

TINY = ["--set", "seeds=[0]", "--set", "data.limit=100", "--set", "train.epochs=1", "--set", "teacher.train.epochs=1",
        "--set", "teacher.model=mlp-tiny", "--quiet"]
PLANTED = "def net(num_classes, input_shape):\n    import torch\n    return torch.nn.Sequential(torch.nn.Flatten(), " \
          "torch.nn.Linear(64, num_classes))\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return finished_run(tmp_path_factory)


def one_line_error(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("model", ["os:system", "subprocess:getoutput"])
def test_a_recipe_naming_a_shell_function_runs_nothing_without_consent(
    model: str, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    command = f"touch {tmp_path / 'PWNED'}"
    args = ["run", "quickstart", "--out", "run", *TINY, "--set", f"student.model={model}",
            "--set", f"student.options={{command: '{command}', cmd: '{command}'}}"]
    assert main(args) == 2
    err = one_line_error(capsys)
    assert f"model '{model}' would import module" in err and "--trust-code" in err and "student.model" in err
    assert not (tmp_path / "PWNED").exists() and not (tmp_path / "run").exists()


def test_rmtree_named_by_a_recipe_deletes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    args = ["run", "quickstart", "--out", str(tmp_path / "run"), *TINY, "--set", "student.model=shutil:rmtree",
            "--set", f"student.options={{path: '{victim}'}}"]
    assert main(args) == 2
    assert "--trust-code" in one_line_error(capsys) and victim.is_dir()


def test_nothing_is_imported_before_consent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "planted.py").write_text(f"open({str(tmp_path / 'IMPORTED')!r}, 'w').close()\n" + PLANTED)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MentorError, match="--trust-code"):
        create("planted:net", 10, (1, 8, 8))
    assert not (tmp_path / "IMPORTED").exists() and "planted" not in sys.modules


def test_with_consent_a_module_of_the_current_directory_is_found_as_python_m_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mymodels_here.py").write_text(PLANTED)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [entry for entry in sys.path if entry not in ("", str(tmp_path))])
    model = create("mymodels_here:net", 10, (1, 8, 8), trust_code=True)
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    monkeypatch.delitem(sys.modules, "mymodels_here")


def test_a_module_found_nowhere_says_where_it_was_looked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MentorError) as error:
        create("not_a_module_anywhere:net", 10, (1, 8, 8), trust_code=True)
    assert "current directory" in str(error.value) and "PYTHONPATH" in str(error.value)


@pytest.mark.parametrize("spec", [":", "a:", ":b", "a b:c", "a:b:c", "1a:b", "a.:b"])
def test_a_malformed_module_path_is_one_line_even_with_consent(spec: str) -> None:
    with pytest.raises(MentorError, match="neither a registered name nor 'package.module:callable'"):
        create(spec, 10, (1, 8, 8), trust_code=True)


@pytest.fixture
def plugin(monkeypatch: pytest.MonkeyPatch) -> str:
    """An installed package's ``mentor.models`` entry point, declaring the test factory as ``plugin-net``."""
    value = "tests.models.test_factory:user_factory"
    point = metadata.EntryPoint(name="plugin-net", value=value, group=trust.GROUP)
    monkeypatch.setattr(trust, "entry_points", lambda: {"plugin-net": point})
    return value


def test_entry_point_models_need_no_consent_by_name_or_by_value(plugin: str) -> None:
    assert create("plugin-net", 4, (1, 8, 8))(torch.zeros(1, 1, 8, 8)).shape == (1, 4)
    assert create(plugin, 4, (1, 8, 8))(torch.zeros(1, 1, 8, 8)).shape == (1, 4)
    with pytest.raises(MentorError, match="--trust-code"):
        create("tests.models.test_factory:not_a_model", 4, (1, 8, 8))


def test_entry_point_models_are_listed(plugin: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["list", "models"]) == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if "plugin-net" in line]
    assert listed == [f"  {'plugin-net':<22} {plugin}: declared by an installed package"]


@pytest.mark.parametrize("command", [["eval"], ["export", "--format", "torchscript"], ["report"], ["resume"]])
def test_commands_on_a_run_folder_never_import_its_code_without_consent(
    command: list[str], run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run = copy_run(run_dir, tmp_path / "run")
    recipe = yaml.safe_load((run / "recipe.yaml").read_text())
    recipe["student"] = {"model": "os:system", "options": {"command": f"touch {tmp_path / 'PWNED'}"}}
    (run / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    assert main([command[0], str(run), *command[1:]]) == 2
    err = one_line_error(capsys)
    assert "'os:system' would import module 'os'" in err or "was edited after the run started" in err, err
    assert not (tmp_path / "PWNED").exists()


def test_a_run_folder_of_trusted_code_is_used_with_consent(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.py").write_text(PLANTED)
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    args = ["run", "quickstart", "--out", "run", *TINY, "--set", "student.model=mine:net", "--set", "latency_batch=8"]
    assert main(args) == 2 and "--trust-code" in one_line_error(capsys)
    assert main([*args, "--trust-code"]) == 0
    capsys.readouterr()
    assert main(["eval", "run"]) == 2 and "--trust-code" in one_line_error(capsys)
    assert main(["eval", "run", "--trust-code"]) == 0
    assert main(["compare", "run"]) == 0  # reads results only: no consent needed
    monkeypatch.delitem(sys.modules, "mine")
