"""PATE end to end on tiny digits: the Python API, the recipe and the command, and their one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mentor
from mentor.cli import main
from mentor.errors import MentorError, MentorWarning
from mentor.recipes import load_recipe
from mentor.teachers import ConfidentGNMax, GNMax

FAST = {"epochs": 3, "batch_size": 32, "lr": 3e-3, "progress": False}


@pytest.fixture(scope="module")
def digits() -> mentor.data.Splits:
    return mentor.data.load("digits", validation=0, seed=0, limit=400)


def test_the_python_api_trains_teachers_answers_queries_and_trains_the_student(digits: mentor.data.Splits) -> None:
    result = mentor.pate(digits, "mlp-tiny", "mlp-tiny", teachers=4, aggregator=GNMax(sigma=1.0), queries=30,
                         public_fraction=0.5, self_training=True, **FAST)
    assert set(result.accuracies()) == {"teacher", "student"} and "teachers vote" in result.models
    privacy = result.privacy[0]
    assert privacy["asked"] == 30 and privacy["answered"] == 30 and 0 < privacy["epsilon"]
    assert privacy["epsilon"] <= privacy["epsilon_data_independent"]
    assert "ε data-dependent" in result.table() and len(result.answers[0].labels) == 30
    assert privacy["self_training_labels"] >= 0


def test_teachers_with_batchnorm_train_one_by_one(digits: mentor.data.Splits) -> None:
    aggregator = ConfidentGNMax(threshold=1.0, sigma1=0.5, sigma2=0.5)
    result = mentor.pate(digits, "cnn-small", "mlp-tiny", teachers=2, aggregator=aggregator, queries=10,
                         public_fraction=0.5, **{**FAST, "epochs": 1})
    assert result.privacy[0]["asked"] == 10 and "student" in result.models


def test_a_budget_stop_keeps_the_answers_and_says_so(digits: mentor.data.Splits) -> None:
    with pytest.warns(MentorWarning, match=r"PATE stopped after \d+ of 40 queries: .*answers so far are kept"):
        result = mentor.pate(digits, "mlp-tiny", "mlp-tiny", teachers=4, aggregator=GNMax(sigma=1.0), queries=40,
                             epsilon_budget=8.0, budget_analysis="data-independent", public_fraction=0.5, **FAST)
    privacy = result.privacy[0]
    assert 0 < privacy["asked"] < 40 and privacy["epsilon_data_independent"] <= 8.0
    assert "PATE stopped" in result.table()


@pytest.mark.parametrize(("changes", "message"), [
    ({"teachers": 500}, r"'teachers' parameter of PATE \(500\) is more than the 400 private training samples"),
    ({"delta": 0.0}, r"'delta' parameter of PATE must be a number in \(0, 1\). Got 0.0"),
    ({"queries": 1000}, r"'queries' parameter of PATE \(1000\) is more than the 200 public samples"),
    ({"aggregator": "gnmx"}, r"'aggregator' parameter of mentor.pate must be one of lnmax, gnmax"),
    ({"mean_teacher": {}, "self_training": True}, r"either by self_training or with a mean_teacher, not both"),
    ({"mean_teacher": {"labels": 5}}, r"'mean_teacher' parameters of PATE take no 'labels'.*got labels=5"),
    ({"mean_teacher": {"consistancy": 1.0}}, r"unknown parameter 'consistancy' of scheme 'mean-teacher'"),
])
def test_bad_arguments_fail_before_training(digits: mentor.data.Splits, changes: dict, message: str) -> None:
    arguments = {"teachers": 4, "queries": 10, "public_fraction": 0.5, **FAST, **changes}
    with pytest.raises(MentorError, match=message):
        mentor.pate(digits, "mlp-tiny", "mlp-tiny", **arguments)


TINY = ["--set", "data.limit=300", "--set", "train.epochs=2", "--set", "teacher.train.epochs=2",
        "--set", "pate.queries=20", "--quiet"]


def test_the_builtin_recipe_runs_from_the_command(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    assert main(["run", "pate", "--out", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    assert "noiseless vote %" in printed and "ε data-independent" in printed
    privacy = json.loads((out / "privacy.json").read_text())
    assert privacy[0]["asked"] == 20 and privacy[0]["delta"] == 1e-5
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["models"]) == {"teacher", "student"}
    assert main(["eval", str(out)]) == 0  # both models load from their checkpoints
    evaluated = capsys.readouterr().out
    assert "\nstudent " in evaluated and "\nteacher " in evaluated


@pytest.mark.parametrize(("override", "message"), [
    ("pate.sigma=0", r"recipe key 'pate.sigma': .*greater than 0"),
    ("pate.delta=1.5", r"recipe key 'pate.delta': .*less than 1"),
    ("pate.aggregator=laplace", r"recipe key 'pate.aggregator'"),
    ("pate.teachers=1000", r"'teachers' parameter of PATE \(1000\) is more than the 300 private"),
    ("teacher.checkpoint=teacher.pt", r"recipe key 'teacher.checkpoint': PATE trains its teachers"),
    ("student=null", r"a pate recipe needs teacher and student; missing student"),
    ("teacher.train={clip_grad_norm: 1.0}", r"PATE teachers may not clip the gradient norm"),
])
def test_bad_recipe_values_exit_with_one_line(override: str, message: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    assert main(["run", "pate", "--out", str(tmp_path / "run"), *TINY, "--set", override]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert __import__("re").search(message, error), error
    assert not (tmp_path / "run").exists()


def test_a_pate_recipe_takes_no_knowledge() -> None:
    with pytest.raises(MentorError, match=r"a pate recipe needs teacher and student and no knowledge"):
        load_recipe("pate", ["knowledge={method: kd}"])


def test_self_training_adds_the_students_confident_labels_on_unasked_inputs() -> None:
    import numpy as np
    import torch

    from mentor.engine import FitSettings, MetricsLog, OptimizerSettings
    from mentor.pipelines.pate_steps import train_student
    from mentor.teachers.pate import UNANSWERED, Answers

    torch.manual_seed(0)
    targets = torch.arange(40) % 2
    inputs = (targets.float()[:, None] * 8.0 - 4.0) + 0.3 * torch.randn(40, 2)  # two far-apart clusters
    pool = mentor.data.ArrayDataset(inputs, targets)
    labels = np.array([int(t) for t in targets[:10]] + [UNANSWERED] * 2)  # 10 answers, 2 declined, 28 unasked
    answers = Answers(labels, 1.0, 2.0, 3.0, 1e-5)
    settings = FitSettings(epochs=30, batch_size=10, optimizer=OptimizerSettings(lr=0.05), progress=False)
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    student, added = train_student(lambda: model, pool, answers, True, settings, MetricsLog(), None)
    assert student is model and 0 < added <= 30  # the 28 unasked and the 2 declined inputs can be labelled
    assert (student(inputs).argmax(dim=1) == targets).all()


def test_a_mean_teacher_student_learns_the_answers_and_the_rest_of_the_pool_unlabelled(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np
    import torch

    from mentor.engine import FitSettings, MetricsLog, OptimizerSettings
    from mentor.pipelines import pate_steps
    from mentor.teachers.pate import UNANSWERED, Answers

    torch.manual_seed(0)
    targets = torch.arange(40) % 2
    inputs = (targets.float()[:, None] * 8.0 - 4.0) + 0.3 * torch.randn(40, 2)  # two far-apart clusters
    pool = mentor.data.ArrayDataset(inputs, targets)
    labels = np.array([1 - int(t) for t in targets[:10]] + [UNANSWERED] * 2)  # 10 answers (all wrong), 2 declined
    answers = Answers(labels, 1.0, 2.0, 3.0, 1e-5)
    seen: list[mentor.data.ArrayDataset] = []
    real_fit = pate_steps.fit
    monkeypatch.setattr(pate_steps, "fit", lambda scheme, train, *a, **k: (seen.append(train), real_fit(
        scheme, train, *a, **k))[1])
    settings = FitSettings(epochs=30, batch_size=10, optimizer=OptimizerSettings(lr=0.05), progress=False)
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    params = {"consistency": 1.0, "shift": 0, "noise": 0.1, "labelled_share": 0.5}
    student, added = pate_steps.train_student(lambda: model, pool, answers, False, settings, MetricsLog(), None,
                                              params)
    assert student is model and added == 0 and len(seen) == 1
    assert torch.equal(seen[0].targets[:10], torch.from_numpy(labels[:10]))  # the answers, as answered
    assert bool((seen[0].targets[10:] == -1).all()) and torch.equal(seen[0].inputs, inputs)
    # it learned the answers it was given: the averaged teacher's weights, wrong labels and all
    assert (student(inputs).argmax(dim=1) == 1 - targets).float().mean() > 0.9


def test_the_recipe_takes_a_mean_teacher_student(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    semi = ["--set", "pate.self_training=false", "--set", "pate.mean_teacher={consistency: 1.0, shift: 1}"]
    assert main(["run", "pate", "--out", str(out), *TINY, *semi]) == 0
    assert "student" in json.loads((out / "summary.json").read_text())["models"]
    assert (out / "checkpoints" / "seed0" / "student" / "mean-teacher").is_dir()


def test_the_recipe_names_each_aggregator_with_its_noise() -> None:
    from mentor.recipes.pate import aggregator_of
    from mentor.teachers import LNMax

    def spec(*overrides: str) -> object:
        return load_recipe("pate", list(overrides)).pate

    assert aggregator_of(spec("pate.aggregator=lnmax", "pate.gamma=0.1")) == LNMax(gamma=0.1)
    assert aggregator_of(spec("pate.sigma=3")) == GNMax(sigma=3.0)
    confident = spec("pate.aggregator=confident-gnmax", "pate.threshold=7", "pate.sigma1=2", "pate.sigma=1")
    assert aggregator_of(confident) == ConfidentGNMax(threshold=7.0, sigma1=2.0, sigma2=1.0)
