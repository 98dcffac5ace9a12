"""TAKD: stage order, each stage taught by the previous stage's trained model, recipes, run directories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

import mentor
from mentor.cli import main
from mentor.errors import MentorError
from mentor.recipes import validate


@pytest.fixture(scope="module")
def data() -> mentor.data.Splits:
    return mentor.data.load("digits", validation=0.2, seed=0, limit=120)


def build(data: mentor.data.Splits, name: str, **options: object) -> nn.Module:
    return mentor.models.create(name, data.num_classes, data.input_shape, **options)


def test_each_stage_is_taught_by_the_previous_trained_model(data: mentor.data.Splits,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    stages = importlib.import_module("mentor.pipelines.distill")
    real_fit_plan = stages.fit_plan
    calls: list[tuple[str, nn.Module, nn.Module | None, dict[str, torch.Tensor]]] = []

    def recording(model, data, settings, plan=None, teacher=None, log=None, checkpoints=None):  # noqa: ANN001, ANN202
        taught_by = {k: v.clone() for k, v in teacher.state_dict().items()} if teacher is not None else {}
        calls.append((str(log.fields["run"]), model, teacher, taught_by))
        return real_fit_plan(model, data, settings, plan, teacher, log=log, checkpoints=checkpoints)

    torch.manual_seed(0)
    teacher = build(data, "cnn-small")
    mentor.train(teacher, data, epochs=1, batch_size=32, progress=False)
    monkeypatch.setattr(stages, "fit_plan", recording)
    student = build(data, "cnn-tiny")
    first, second = build(data, "cnn", channels=[12, 24]), build(data, "cnn", channels=[8, 16])
    untrained = {id(model): {k: v.clone() for k, v in model.state_dict().items()} for model in (first, second)}
    result = mentor.distill(teacher, student, data, mentor.knowledge.create("kd"), assistants=[first, second],
                            epochs=1, batch_size=32, progress=False, latency_batch=4)
    assert [run for run, *_ in calls] == ["student-distilled", "assistant0", "assistant1", "student-via-assistants"]
    assert calls[0][1] is student and calls[0][2] is teacher
    assert calls[1][1] is first and calls[1][2] is teacher
    assert calls[2][1] is second and calls[2][2] is first
    assert calls[3][1] is result.models["student via assistants"] and calls[3][2] is second
    assert calls[3][1] is not student  # a fresh copy of the untrained student
    # each stage's teacher is the previous stage's model after its training (weights moved from the initial ones)
    for _, _, taught_by, weights in (calls[2], calls[3]):
        initial = untrained[id(taught_by)]
        assert any(not torch.equal(value, initial[key]) for key, value in weights.items() if value.is_floating_point())
    assert list(result.accuracies()) == ["teacher", "student distilled", "assistant0", "assistant1",
                                         "student via assistants"]
    table = result.table()
    assert "assistant1" in table and "student via assistants" in table


def test_every_stage_gets_a_fresh_plan(data: mentor.data.Splits) -> None:
    from mentor.teachers.assistant import Assistant, Chain, train_chain

    torch.manual_seed(0)
    plans: list[object] = []

    def plan() -> object:
        plans.append(mentor.knowledge.create("kd", temperature=4.0, alpha=0.9))
        return plans[-1]

    measured: list[str] = []
    chain = Chain([Assistant(lambda: build(data, "cnn", channels=[8, 16]))], lambda: build(data, "cnn-tiny"), plan,
                  mentor.engine.FitSettings(epochs=1, batch_size=32, progress=False), latency_batch=4)
    final = train_chain(chain, build(data, "cnn-small"), data, 0, log=mentor.engine.MetricsLog(),
                        folder=lambda role: None, report=lambda row, model: measured.append(row.role))
    assert measured == ["assistant0", "student via assistants"]
    assert len(plans) == 2 and plans[0] is not plans[1]
    assert isinstance(final, nn.Module)


def test_assistants_must_be_models_and_belong_to_distillation(data: mentor.data.Splits) -> None:
    teacher, student = build(data, "cnn-tiny"), build(data, "cnn-tiny")
    with pytest.raises(MentorError, match="The 'assistants' parameter of mentor.distill must be a list of nn.Module"):
        mentor.distill(teacher, student, data, mentor.knowledge.create("kd"), assistants=["cnn-small"], epochs=1)
    with pytest.raises(MentorError, match="assistants belong to a distillation recipe"):
        validate({"scheme": {"name": "dml"}, "peers": [{"model": "cnn-tiny"}], "assistants": [{"model": "cnn"}]})
    with pytest.raises(MentorError, match=r"unknown recipe key 'assistants.0.epochs'"):
        validate({"teacher": {"model": "cnn-small"}, "student": {"model": "cnn-tiny"}, "knowledge": {"method": "kd"},
                  "assistants": [{"model": "cnn", "epochs": 3}]})


def test_a_method_that_cannot_pair_two_chain_models_fails_before_training(data: mentor.data.Splits) -> None:
    teacher, student, assistant = build(data, "cnn-medium"), build(data, "cnn-small"), build(data, "cnn-small")
    before = {key: value.clone() for key, value in assistant.state_dict().items()}
    plan = mentor.knowledge.create("fitnet", hint="stage3", guided="stage2")  # the assistant has no stage3
    with pytest.raises(MentorError, match="stage3") as error:
        mentor.distill(teacher, student, data, plan, assistants=[assistant], epochs=5, progress=False)
    assert "\n" not in str(error.value)
    assert all(torch.equal(value, assistant.state_dict()[key]) for key, value in before.items())


def test_an_assistant_that_runs_code_needs_consent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "takd", "--out", str(tmp_path / "run"), "--set", "assistants.0.model=os:getcwd", "--quiet"])
    assert code == 2
    assert "assistants.0.model" in capsys.readouterr().err


def test_a_python_run_directory_evaluates_every_model(data: mentor.data.Splits, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(0)
    teacher, student = build(data, "cnn-small"), build(data, "cnn-tiny")
    assistant = build(data, "cnn", channels=[8, 16])
    mentor.distill(teacher, student, data, mentor.knowledge.create("kd"), assistants=[assistant], epochs=1,
                   batch_size=32, progress=False, latency_batch=4, out=tmp_path / "run")
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "run"), "--model", "assistant0"]) == 0
    assert main(["eval", str(tmp_path / "run"), "--model", "student-via-assistants"]) == 0
    assert "student-via-assistants (seed 0)" in capsys.readouterr().out


def test_builtin_recipe_runs_evaluates_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "takd"
    quick = ["--set", "seeds=[0]", "--set", "data.limit=120", "--set", "train.epochs=1", "--set",
             "teacher.train.epochs=1", "--set", "compare.student_alone=false", "--set", "teacher.model=cnn-small",
             "--set", "latency_batch=4",
             "--set", "assistants.0.options.channels=[8, 16]", "--set", "assistants.0.train={epochs: 2}", "--quiet"]
    assert main(["run", "takd", "--out", str(out), *quick]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["models"]) == ["teacher", "student distilled", "assistant0", "student via assistants"]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert max(r["epoch"] for r in records if r["run"] == "assistant0") == 2  # its own train section
    assert max(r["epoch"] for r in records if r["run"] == "student-via-assistants") == 1
    assert (out / "checkpoints" / "seed0" / "assistant0" / "best.pt").is_file()
    capsys.readouterr()
    assert main(["eval", str(out)]) == 0
    table = capsys.readouterr().out
    assert "assistant0" in table and "student-via-assistants" in table
    assert main(["resume", str(out), "--quiet"]) == 0
    resumed = json.loads((out / "summary.json").read_text())["models"]
    assert resumed["student via assistants"]["accuracy"] == summary["models"]["student via assistants"]["accuracy"]
