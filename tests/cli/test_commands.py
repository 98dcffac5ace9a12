"""Small commands and options: --version, recipes show, list parameters, bench names, paths, the device check,
progress bars."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import yaml

import mentor
from mentor.cli import main, parser
from mentor.knowledge import KNOWLEDGE
from mentor.recipes import builtin_recipes, load_recipe
from mentor.report import mean_std


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        parser().parse_args(["--version"])
    assert exit.value.code == 0
    assert capsys.readouterr().out.strip() == f"mentor {mentor.__version__}"


def test_recipes_show_prints_a_recipe_to_start_from(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["recipes", "show", "fitnet"]) == 0
    text = capsys.readouterr().out
    assert text == builtin_recipes()["fitnet"].read_text(encoding="utf-8")
    (tmp_path / "mine.yaml").write_text(text)
    assert load_recipe(str(tmp_path / "mine.yaml")).knowledge[0].method == "fitnet"
    assert main(["recipes", "show", "fitnett"]) == 2
    assert "unknown recipe 'fitnett'; nearest: fitnet" in capsys.readouterr().err


def test_list_knowledge_shows_each_methods_parameters(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "knowledge"]) == 0
    lines = capsys.readouterr().out.splitlines()
    kd = next(index for index, line in enumerate(lines) if line.split()[:1] == ["kd"])
    assert lines[kd + 1].split() == ["temperature=4.0,", "alpha=0.9"]
    fitnet = next(index for index, line in enumerate(lines) if line.split()[:1] == ["fitnet"])
    assert lines[fitnet + 1].strip().startswith("hint=REQUIRED, guided=REQUIRED,")
    assert len(lines) == 1 + 2 * len(KNOWLEDGE.names())


def test_bench_help_names_the_benchmarks(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    names = sorted(path.stem for path in (Path(__file__).parents[2] / "benchmarks").glob("[!_]*.py"))
    assert names and f"benchmark name, a file benchmarks/NAME.py: {', '.join(names)}" in text


def test_paths_of_a_model_and_of_a_recipe(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["paths", "cnn-tiny", "--input-shape", "1,8,8", "--classes", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "cnn-tiny (inputs (1, 8, 8), 3 classes)"
    rows = {line.split()[0]: line.split(maxsplit=2)[2] for line in lines[3:]}
    assert rows["stage1"] == "(4, 4, 4)" and rows["stage2.relu1"] == "(8, 4, 4)" and rows["stage2"] == "(8, 2, 2)"
    assert rows["head"] == "(3,)"
    assert main(["paths", "quickstart"]) == 0
    text = capsys.readouterr().out
    assert "teacher: cnn-medium (inputs (1, 8, 8), 10 classes)" in text and "student: mlp-tiny" in text
    assert main(["paths", "cnn-tiny", "--input-shape", "5"]) == 2
    assert "a CNN needs image inputs (C, H, W)" in capsys.readouterr().err


def test_models_paths_lists_every_module_with_its_output_shape() -> None:
    model = mentor.models.create("mlp", 4, (2, 3), hidden=[5])
    rows = mentor.models.paths(model, (2, 3))
    assert [(row.path, row.kind, row.shape) for row in rows] == [
        ("flatten", "Flatten", (6,)), ("fc1", "Linear", (5,)), ("act1", "ReLU", (5,)), ("head", "Linear", (4,))]
    assert model.training  # the mode it had
    with pytest.raises(mentor.MentorError, match=r"cannot run on one sample of shape \(4,\): RuntimeError"):
        mentor.models.paths(torch.nn.Linear(3, 2), (4,))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_a_missing_cuda_device_fails_before_anything_is_written(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    for setting in ("train.device=cuda", "teacher.train.device=cuda"):
        assert main(["run", "quickstart", "--out", str(out), "--set", setting, "--set", "data.limit=100",
                     "--quiet"]) == 2
        error = capsys.readouterr().err
        assert "train.device is 'cuda' but no CUDA device is available" in error and error.count("\n") == 1
        assert not out.exists()


def test_progress_bars_only_on_a_terminal_and_labelled_by_model(capsys: pytest.CaptureFixture[str]) -> None:
    data = mentor.data.load("digits", validation=0.2, seed=0, limit=80)
    teacher = mentor.models.create("mlp-tiny", data.num_classes, data.input_shape)
    student = mentor.models.create("mlp-tiny", data.num_classes, data.input_shape)
    assert not sys.stderr.isatty()
    mentor.distill(teacher, student, data, mentor.knowledge.create("kd"), epochs=1, batch_size=32)
    assert capsys.readouterr().err == ""  # stderr is not a terminal: no bars by default
    plan = mentor.knowledge.create("fitnet", hint="fc1", guided="fc1", adapter="linear", hint_epochs=1)
    mentor.distill(teacher, student, data, plan, epochs=2, batch_size=32, progress=True, baseline=True)
    err = capsys.readouterr().err
    assert "student-alone 1/2" in err and "student-distilled hint 1/1" in err and "student-distilled distill 1/1" in err


def test_one_seed_shows_the_value_without_a_spread() -> None:
    assert mean_std([0.9731], scale=100.0) == "97.31"
    assert mean_std([0.5, 0.7], scale=100.0) == "60.00 ± 14.14"


def test_builtin_recipes_run_without_root_or_say_what_they_need() -> None:
    for name, path in builtin_recipes().items():
        recipe = yaml.safe_load(path.read_text(encoding="utf-8"))
        if "scheme" in recipe:
            assert recipe["data"]["name"] == "digits", name  # every scheme has a recipe that runs anywhere
        elif "multitask" in recipe:  # each task names its dataset
            datasets = {task["dataset"] for task in recipe["multitask"]["tasks"]} - {"digits"}
            assert all(dataset.upper() in recipe["description"].upper() for dataset in datasets), name
            assert not datasets or "pip" in recipe["description"], name
        elif recipe["data"]["name"] not in ("digits", "diabetes"):  # both ship with scikit-learn
            description = recipe["description"]
            assert recipe["data"]["name"].upper() in description.upper() and "pip" in description, name
    features = [yaml.safe_load(path.read_text(encoding="utf-8")) for path in builtin_recipes().values()]
    assert any(r.get("knowledge", {}).get("method") in ("fitnet", "at") for r in features)
