"""Distillation from several teachers, end to end: the Python API with an Ensemble, and the built-in recipe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import mentor
from mentor.cli import main
from mentor.errors import MentorError
from mentor.pipelines.multi import Subset, subset_of
from mentor.recipes import schema
from mentor.teachers import Ensemble


@pytest.fixture(scope="module")
def data() -> mentor.data.Splits:
    return mentor.data.load("digits", validation=0.2, seed=0, limit=160)


def test_python_api_distills_an_ensemble_and_reports_every_teacher(data: mentor.data.Splits) -> None:
    torch.manual_seed(0)
    teachers = [mentor.models.create(name, data.num_classes, data.input_shape) for name in ("cnn-tiny", "mlp-small")]
    for teacher in teachers:
        mentor.train(teacher, data, epochs=1, batch_size=32, progress=False)
    student = mentor.models.create("mlp-tiny", data.num_classes, data.input_shape)
    knowledge = mentor.knowledge.create("multi-teacher", teachers=2, weighting="reinforced", combine="vote")
    result = mentor.distill(Ensemble(teachers), student, data, knowledge, epochs=2, batch_size=32, progress=False)
    assert list(result.accuracies()) == ["teacher0", "teacher1", "teacher", "student distilled"]
    assert {"train/kl", "train/policy"} <= set(result.history("student distilled")[-1])


def test_a_teacher_with_other_classes_fails_before_training(data: mentor.data.Splits) -> None:
    teachers = [mentor.models.create("mlp-tiny", data.num_classes, data.input_shape),
                mentor.models.create("mlp-tiny", 5, data.input_shape)]
    student = mentor.models.create("mlp-tiny", data.num_classes, data.input_shape)
    knowledge = mentor.knowledge.create("multi-teacher", teachers=2)
    with pytest.raises(MentorError, match=r"the teachers\[1\] outputs shape \(5,\) but digits has 10 classes"):
        mentor.distill(Ensemble(teachers), student, data, knowledge, epochs=1, progress=False)


def test_subsets_are_deterministic_per_seed_and_split_by_fraction_and_class(data: mentor.data.Splits) -> None:
    first, second = Subset(0.0, 0.5), Subset(0.5, 1.0)
    a, b = subset_of(data.train, first, seed=3), subset_of(data.train, second, seed=3)
    assert len(a) + len(b) == len(data.train)
    assert torch.equal(a.inputs, subset_of(data.train, first, seed=3).inputs)
    assert not torch.equal(a.inputs, subset_of(data.train, first, seed=4).inputs)
    assert set(subset_of(data.train, Subset(classes=(1, 2)), seed=0).targets.tolist()) == {1, 2}


@pytest.mark.parametrize(("change", "message"), [
    ({"teacher": {"model": "mlp-tiny"}}, "give teacher .one. or teachers .several., not both"),
    ({"teachers": []}, "teachers"),
    ({"teachers": [{"model": "mlp-tiny", "subset": {"start": 0.5, "stop": 0.2}}]}, "stop .0.2. must be above"),
])
def test_bad_teachers_sections_are_refused(change: dict, message: str) -> None:
    recipe = {"teachers": [{"model": "mlp-tiny"}], "student": {"model": "mlp-tiny"},
              "knowledge": {"method": "multi-teacher"}, **change}
    with pytest.raises(ValueError, match=message):
        schema.Recipe.model_validate(recipe)


def test_builtin_recipe_runs_every_teacher_on_its_subset(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    tiny = ["--set", "data.limit=200", "--set", "train.epochs=1", "--set", "teachers.2.train.epochs=1", "--quiet"]
    assert main(["run", "multi-teacher", "--out", str(out), *tiny]) == 0
    models = json.loads((out / "summary.json").read_text())["models"]
    assert {"teacher0", "teacher1", "teacher2", "teacher", "student alone", "student distilled"} <= set(models)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    distilled = [r for r in records if r.get("run") == "student-distilled"]
    assert "train/hints" in distilled[-1] and "train/kl" in distilled[-1]
    capsys.readouterr()
    assert main(["eval", str(out)]) == 0  # the run directory rebuilds every teacher and their ensemble
    printed = capsys.readouterr().out
    assert all(f"\n{role} " in printed for role in ("teacher0", "teacher1", "teacher2", "teacher"))


@pytest.mark.parametrize(("sets", "message"), [
    (["weighting.name=adaptve"], "unknown weighting 'adaptve'; nearest: adaptive"),
    (["weighting.name=fixed", "weighting.params={weights: [1, -1, 1]}"], "'weights' parameter of weighting 'fixed'"),
    (["knowledge.params.teachers=2"], "recipe key 'knowledge.params.teachers' is 2 but teachers: lists 3"),
    (["teachers.1.options={num_classes: 5}"], r"teachers\[1\] outputs shape \(5,\)"),
    (["teachers.0.subset.classes=[42]"], r"recipe key 'teachers\[0\].subset' keeps no training sample"),
    (["knowledge.0.method=kd"], "recipe key 'weighting' .adaptive. needs a knowledge method that weighs teachers"),
])
def test_recipe_mistakes_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture, sets: list[str],
                                             message: str) -> None:
    arguments = [part for item in sets for part in ("--set", item)]
    assert main(["run", "multi-teacher", "--out", str(tmp_path / "run"), "--set", "data.limit=100", *arguments]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and __import__("re").search(message, err), err
    assert not (tmp_path / "run").exists()


def test_a_recipe_gives_the_domain_weighting_each_teachers_subset(data: mentor.data.Splits) -> None:
    from mentor.engine import FitSettings
    from mentor.pipelines.multi import Member, fit_domains

    members = [Member(lambda: torch.nn.Identity(), None, FitSettings(), subset)
               for subset in (Subset(classes=(0, 1)), None)]
    plan = mentor.knowledge.create("multi-teacher", teachers=2, weighting="domain")
    fit_domains(plan, members, data, seed=0)
    weights = plan.terms["kl"].weighting.weights
    assert weights.sum().item() == pytest.approx(1.0)
    assert weights[1] > weights[0]  # all of the student's data resembles the target more than two classes of it
    with pytest.raises(MentorError, match="weighting 'domain' needs each teacher's training inputs"):
        fit_domains(mentor.knowledge.create("multi-teacher", teachers=2, weighting="domain"), None, data, seed=0)
