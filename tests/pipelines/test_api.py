"""The Python API at parity with recipes: every train key, checks before training, history, run directories."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from torch import nn

import mentor
from mentor.cli import main
from mentor.engine import FitSettings, OptimizerSettings
from mentor.errors import MentorError
from mentor.pipelines.options import settings
from mentor.recipes import schema


@pytest.fixture(scope="module")
def data() -> mentor.data.Splits:
    return mentor.data.load("digits", validation=0.2, seed=0, limit=160)


def trained_teacher(data: mentor.data.Splits) -> nn.Module:
    torch.manual_seed(0)
    teacher = mentor.models.create("cnn-tiny", data.num_classes, data.input_shape)
    mentor.train(teacher, data, epochs=1, batch_size=32, progress=False)
    return teacher


def test_every_recipe_train_key_is_a_keyword() -> None:
    keys = {*schema.Train.model_fields, *schema.Optimizer.model_fields, *schema.Scheduler.model_fields} - {"name"}
    assert keys <= set(mentor.pipelines.options.valid_keywords())
    fit = settings(epochs=3, batch_size=16, optimizer="sgd", lr=0.05, momentum=0.8, nesterov=True,
                   weight_decay=1e-4, scheduler="step", step_size=2, gamma=0.5, clip_grad_norm=5.0, jitter=1,
                   device="cpu", precision="bf16", channels_last=True, compile=True, teacher_cache=False, seed=7,
                   progress=False)
    assert (fit.epochs, fit.batch_size, fit.seed, fit.progress) == (3, 16, 7, False)
    assert fit.optimizer == OptimizerSettings("sgd", 0.05, 0.8, 1e-4, True)
    assert (fit.scheduler.name, fit.scheduler.step_size, fit.scheduler.gamma) == ("step", 2, 0.5)
    assert fit.clip_grad_norm == 5.0 and fit.augment.pixels == 1
    assert (fit.precision, fit.channels_last, fit.compile, fit.teacher_cache) == ("bf16", True, True, False)
    assert settings(optimizer={"name": "adamw", "lr": 0.2}).optimizer.lr == 0.2  # a recipe's mapping works too
    ready = FitSettings(epochs=2)
    assert settings(ready) is ready


@pytest.mark.parametrize(("options", "message"), [
    ({"lr": -1.0}, "The 'lr' setting of mentor.train is invalid: Input should be greater than 0"),
    ({"optimizer": "lbfgs"}, "The 'optimizer' setting of mentor.train is invalid"),
    ({"epoch": 3}, "unknown training keyword 'epoch' of mentor.train; nearest: epochs"),
    ({"device": "tpu"}, "The 'device' setting"),
    ({"settings": FitSettings(), "epochs": 2}, "either settings=FitSettings(...) or training keywords"),
])
def test_bad_settings_are_one_line_errors(options: dict, message: str) -> None:
    with pytest.raises(MentorError) as error:
        settings(**options)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_distill_returns_every_model_and_each_epochs_loss_terms(data: mentor.data.Splits) -> None:
    teacher = trained_teacher(data)
    student = mentor.models.create("mlp-tiny", data.num_classes, data.input_shape)
    knowledge = mentor.knowledge.create("kd", temperature=2.0, alpha=0.5)
    result = mentor.distill(teacher, student, data, knowledge, baseline=True, epochs=2, batch_size=32,
                            optimizer="sgd", lr=0.05, momentum=0.9, nesterov=True, clip_grad_norm=1.0,
                            progress=False)
    assert list(result.models) == ["teacher", "student alone", "student distilled"]
    assert result.models["student distilled"] is student and result.models["teacher"] is teacher
    history = result.history("student distilled")
    assert [record["epoch"] for record in history] == [1, 2]
    assert {"train/loss", "train/ce", "train/kl", "val/student/accuracy"} <= set(history[0])
    assert history[0]["train/loss"] == pytest.approx(history[0]["train/ce"] + history[0]["train/kl"], rel=1e-5)
    assert set(result.accuracies()) == set(result.models)
    with pytest.raises(MentorError, match="unknown run 'student'"):
        result.history("student")


def test_teacher_and_student_mistakes_fail_before_anything_trains(data: mentor.data.Splits) -> None:
    teacher = trained_teacher(data)
    knowledge = mentor.knowledge.create("kd")
    few = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    with pytest.raises(MentorError, match=r"the student outputs shape \(3,\) but digits has 10 classes"):
        mentor.distill(teacher, few, data, knowledge, epochs=1, progress=False)

    class Dictionary(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(64, 10)

        def forward(self, inputs: torch.Tensor) -> dict:
            return {"logits": [self.linear(inputs.flatten(1))]}

    with pytest.raises(MentorError, match="output 'logits' of the student is a list, not a tensor"):
        mentor.distill(teacher, Dictionary(), data, knowledge, epochs=1, progress=False)
    student = mentor.models.create("cnn-tiny", data.num_classes, data.input_shape)
    before = {key: value.clone() for key, value in student.state_dict().items()}
    wrong_path = mentor.knowledge.create("fitnet", hint="stage2", guided="stage5")
    with pytest.raises(MentorError, match="unknown module path 'stage5' in student; nearest: stage2"):
        mentor.distill(teacher, student, data, wrong_path, baseline=True, epochs=2, progress=False)
    assert all(torch.equal(before[key], value) for key, value in student.state_dict().items())  # nothing trained
    with pytest.raises(MentorError, match="train.device is 'cuda' but no CUDA device is available"):
        if torch.cuda.is_available():
            raise MentorError("train.device is 'cuda' but no CUDA device is available (skipped on CUDA)")
        mentor.distill(teacher, student, data, knowledge, epochs=1, device="cuda", progress=False)


def test_collaborate_returns_accuracies_and_the_peers_alone(data: mentor.data.Splits) -> None:
    torch.manual_seed(0)
    peers = [mentor.models.create("cnn-tiny", data.num_classes, data.input_shape) for _ in range(2)]
    result = mentor.collaborate("dml", peers, data, baseline=True, epochs=1, batch_size=32, progress=False)
    assert list(result.models) == ["peer0", "peer1", "ensemble", "peer0 alone", "peer1 alone", "ensemble alone"]
    assert result.models["peer0"] is peers[0]  # trained in place
    assert all(0.0 <= value <= 1.0 for value in result.accuracies().values())
    assert {"train/peer0/ce", "val/ensemble/accuracy"} <= set(result.history("dml")[0])
    assert "peer0 alone" in result.table() and "±" not in result.table()  # one seed: no spread to show


def test_a_python_run_directory_is_evaluated_exported_reported_and_resumed(
    data: mentor.data.Splits, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    teacher = trained_teacher(data)
    torch.manual_seed(1)
    student = mentor.models.create("mlp-tiny", data.num_classes, data.input_shape)
    knowledge = mentor.knowledge.create("kd", temperature=2.0, alpha=0.5)
    out = tmp_path / "kd"
    result = mentor.distill(teacher, student, data, knowledge, out=out, baseline=True, epochs=2, batch_size=32,
                            progress=False)
    summary = json.loads((out / "summary.json").read_text())["models"]
    assert summary["student distilled"]["accuracy"] == [result.accuracies()["student distilled"]]
    assert main(["eval", str(out), "--model", "student-distilled"]) == 0
    printed = capsys.readouterr().out
    assert f"accuracy {100 * result.accuracies()['student distilled']:.2f}%" in printed
    assert main(["eval", str(out), "--model", "teacher"]) == 0  # the given teacher's weights are kept with the run
    assert f"accuracy {100 * result.accuracies()['teacher']:.2f}%" in capsys.readouterr().out
    assert main(["export", str(out), "--format", "torchscript"]) == 0
    assert (out / "export" / "student-distilled-seed0.pt").is_file()
    with pytest.raises(MentorError, match="already exists; pass resume=True"):
        mentor.distill(teacher, student, data, knowledge, out=out, epochs=2, progress=False)
    (out / "summary.json").unlink()
    again = mentor.distill(teacher, student, data, knowledge, out=out, baseline=True, resume=True, epochs=2,
                           batch_size=32, progress=False)  # every model finished: loaded, not trained again
    assert again.accuracies() == pytest.approx(result.accuracies())
    assert main(["resume", str(out), "--quiet"]) == 0  # the recipe it wrote is complete
    assert "student distilled" in capsys.readouterr().out


def test_a_python_run_of_python_objects_says_what_no_recipe_describes(
    data: mentor.data.Splits, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    teacher = trained_teacher(data)
    student = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    out = tmp_path / "objects"
    mentor.distill(teacher, student, data, mentor.Objective(mentor.terms.CE()), out=out, epochs=1, progress=False)
    assert main(["eval", str(out), "--model", "teacher"]) == 0
    assert main(["eval", str(out), "--model", "student-distilled"]) == 2
    error = capsys.readouterr().err
    assert "made from Python by mentor.distill; no recipe describes its knowledge, student" in error
    assert error.count("\n") == 1
    if importlib.util.find_spec("matplotlib") is not None:  # the report notes what it cannot rebuild
        assert main(["report", str(out)]) == 0
        assert "no recipe describes its knowledge, student" in (out / "report.html").read_text(encoding="utf-8")
