"""Knowledge adaptation end to end on tiny MNIST -> digits-28: the Python API, the recipe through the command,
resuming at the stage where a run stopped, and the one-line errors of bad input."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import mentor
from mentor.cli import main
from mentor.engine import FitSettings
from mentor.errors import MentorError
from mentor.pipelines.adapt import AdaptJob, run
from mentor.recipes import load_recipe
from mentor.recipes.schema import Adapt

FAST = {"epochs": 1, "batch_size": 32, "lr": 3e-3, "progress": False}
TINY = ["--set", "data.limit=300", "--set", "adapt.target.limit=200", "--set", "teacher.train.epochs=1",
        "--set", "train.epochs=1", "--set", "teacher.model=mlp-tiny", "--set", "student.model=mlp-tiny",
        "--set", "latency_batch=8", "--quiet"]


@pytest.fixture(scope="module")
def domains() -> tuple[mentor.data.Splits, mentor.data.Splits]:
    return (mentor.data.load("mnist", validation=0.1, seed=0, limit=300),
            mentor.data.load("digits-28", validation=0.1, seed=0, limit=200))


def tiny_model() -> torch.nn.Module:
    return mentor.models.create("mlp-tiny", num_classes=10, input_shape=(1, 28, 28))


def test_the_python_api_measures_teacher_students_and_oracle(domains: tuple) -> None:
    source, target = domains
    methods = ["teacher-student", "curriculum", "mean-teacher", "adversarial", "multi-source"]
    result = mentor.pipelines.adapt(source, target, tiny_model, methods=methods, tasks=2, interval=2, latency_batch=8,
                                    **FAST)
    roles = set(result.accuracies())
    assert {"teacher", "oracle", *(f"student {m}" for m in methods)} <= roles
    assert {"teacher low-resolution", "teacher inverted", "teachers weighted"} <= roles
    assert all(0.0 <= value <= 1.0 for value in result.accuracies().values())


def test_no_adapted_student_reads_a_target_label(domains: tuple) -> None:
    source, target = domains
    shuffled = replace(target, train=mentor.data.ArrayDataset(target.train.inputs, target.train.targets.flip(0)))
    weights = []
    for data in (target, shuffled):
        result = mentor.pipelines.adapt(source, data, tiny_model, methods=["teacher-student", "adversarial"],
                                        oracle=False, **FAST)
        weights.append([model.state_dict() for role, model in result.models.items() if role.startswith("student")])
    for first, second in zip(*weights, strict=True):
        assert all(torch.equal(first[key], second[key]) for key in first)


def job_of(domains: tuple, methods: list[str], oracle: bool = False) -> AdaptJob:
    settings = FitSettings(epochs=1, batch_size=32, progress=False)
    return AdaptJob(name="adapt", seeds=[0], load_domains=lambda seed: domains, teacher=tiny_model,
                    student=tiny_model, teacher_settings=settings, settings=settings,
                    spec=Adapt(methods=methods, oracle=oracle))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_resume_loads_the_finished_stages_and_trains_the_rest(domains: tuple, tmp_path: Path) -> None:
    first = run(job_of(domains, ["teacher-student"]), tmp_path, echo=lambda line: None)
    stages = tmp_path / "checkpoints" / "seed0"
    before = {stage: digest(stages / stage / "last.pt") for stage in ("teacher", "student-teacher-student")}
    full = run(job_of(domains, ["teacher-student", "adversarial"], oracle=True), tmp_path, echo=lambda line: None,
               resume=True)
    assert {stage: digest(stages / stage / "last.pt") for stage in before} == before  # loaded, not retrained
    for role in ("teacher", "student teacher-student"):
        old, new = first.models[role].state_dict(), full.models[role].state_dict()
        assert all(torch.equal(old[key], new[key]) for key in old)
    assert (stages / "student-adversarial" / "last.pt").is_file() and (stages / "oracle" / "best.pt").is_file()


def test_the_builtin_recipe_runs_and_resumes_from_the_command_line(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["run", "adapt-digits", "--out", str(out), *TINY]) == 0
    table = capsys.readouterr().out
    assert all(role in table for role in ("teacher", "student teacher-student", "student mean-teacher",
                                          "student adversarial", "oracle"))
    stages = out / "checkpoints" / "seed0"
    teacher = digest(stages / "teacher" / "last.pt")
    shutil.rmtree(stages / "oracle")  # as if the run had stopped before its last stage
    assert main(["resume", str(out), "--quiet"]) == 0
    assert digest(stages / "teacher" / "last.pt") == teacher and (stages / "oracle" / "last.pt").is_file()
    assert "oracle" in capsys.readouterr().out


def test_a_target_of_another_shape_names_both_shapes(domains: tuple) -> None:
    source, _ = domains
    digits = mentor.data.load("digits", validation=0.1, seed=0, limit=100)
    with pytest.raises(MentorError, match=r"target digits has inputs of shape \(1, 8, 8\) but the source mnist "
                                          r"\(the teacher's data\) has \(1, 28, 28\)"):
        mentor.pipelines.adapt(source, digits, tiny_model, **FAST)


def test_a_target_with_other_classes_is_refused(domains: tuple) -> None:
    source, target = domains
    with pytest.raises(MentorError, match=r"target digits-28 has 5 classes but the source mnist has 10"):
        mentor.pipelines.adapt(source, replace(target, num_classes=5), tiny_model, **FAST)


@pytest.mark.parametrize(("changes", "message"), [
    ({"settings": FitSettings(epochs=0)}, r"train.epochs must be at least 1 \(every stage trains\); got 0"),
    ({"epochs": 0}, r"The 'epochs' setting of mentor.pipelines.adapt is invalid"),
    ({"methods": ["self-ensembling"]}, r"The 'methods' parameter of mentor.pipelines.adapt is invalid"),
    ({"methods": ["adversarial"], "student": "other"}, r"start the student from the teacher's weights, but the "
                                                       r"student is another architecture"),
])
def test_bad_arguments_fail_before_training(domains: tuple, changes: dict, message: str) -> None:
    source, target = domains
    if changes.get("student") == "other":
        changes["student"] = lambda: mentor.models.create("mlp", num_classes=10, input_shape=(1, 28, 28))
    arguments = {**({} if "settings" in changes else FAST), **changes}
    with pytest.raises(MentorError, match=message):
        mentor.pipelines.adapt(source, target, tiny_model, **arguments)


def test_a_recipe_mixing_adapt_with_knowledge_is_refused() -> None:
    with pytest.raises(MentorError, match="an adapt recipe needs teacher and student and no knowledge"):
        load_recipe("adapt-digits", ["knowledge.method=kd"])
