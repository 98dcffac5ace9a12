"""Metrics sinks, and TensorBoard scalars read back from the event files."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from mentor.data import ArrayDataset
from mentor.engine import FitSettings, MetricsLog, OptimizerSettings, fit
from mentor.engine.tensorboard import TensorBoardSink, run_name, scalars
from mentor.errors import MentorError
from mentor.losses import CE, Objective
from mentor.models import MLP
from mentor.schemes import Offline

needs_tensorboard = pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None,
                                       reason="the tensorboard package is not installed")


class Recorder:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.closed = 0

    def write(self, record: dict[str, Any]) -> None:
        self.records.append(dict(record))

    def close(self) -> None:
        self.closed += 1


def read_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(event.step, event.value) for event in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_sinks_receive_every_record_with_bound_fields_and_the_file_is_unchanged(tmp_path: Path) -> None:
    sink = Recorder()
    log = MetricsLog(tmp_path / "metrics.jsonl", sinks=[sink])
    child = log.bind(run="student", seed=3)
    child.write(stage="train", epoch=1, **{"train/loss": 0.5})
    log.write(event="done")
    assert sink.records == [{"run": "student", "seed": 3, "stage": "train", "epoch": 1, "train/loss": 0.5},
                            {"event": "done"}]
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert lines == sink.records and log.records == sink.records
    child.close()
    assert sink.closed == 1
    assert MetricsLog().sinks == [] and MetricsLog(None, run="x").fields == {"run": "x"}


def test_scalars_and_run_names() -> None:
    record = {"run": "student distilled", "seed": 0, "stage": "hint", "epoch": 2, "lr": 0.1, "seconds": 1.5,
              "train/loss": 1, "train/ce": 0.25, "val/student/accuracy": 0.75, "val/flag": True, "note": "x"}
    assert scalars(record) == {"lr": 0.1, "train/loss": 1.0, "train/ce": 0.25, "val/student/accuracy": 0.75}
    assert run_name(record) == "student-distilled/seed0/hint"
    assert run_name({"run": "teacher", "seed": 1, "stage": "train"}) == "teacher/seed1"
    assert run_name({}) == "main"


def test_missing_tensorboard_is_a_one_line_error_naming_the_extra(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # what an absent package looks like
    with pytest.raises(MentorError, match=r"pip install 'mentor\[tensorboard\]'") as error:
        TensorBoardSink(tmp_path / "tensorboard")
    assert "\n" not in str(error.value)
    assert not (tmp_path / "tensorboard").exists()


@needs_tensorboard
def test_sink_writes_each_record_as_scalars_at_its_epoch(tmp_path: Path) -> None:
    sink = TensorBoardSink(tmp_path / "tb")
    log = MetricsLog(sinks=[sink])
    teacher, student = log.bind(run="teacher", seed=0), log.bind(run="student-alone", seed=0)
    for epoch, loss in ((1, 2.0), (2, 1.5)):
        teacher.write(stage="train", epoch=epoch, lr=0.01, seconds=0.3, **{"train/loss": loss,
                                                                          "val/student/accuracy": 0.25 * epoch})
    student.write(stage="hint", epoch=1, **{"train/hint": 0.125})
    log.write(event="no epoch", **{"train/loss": 9.0})  # not an epoch record: skipped
    sink.close()
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == ["student-alone", "teacher"]
    teacher_scalars = read_scalars(tmp_path / "tb" / "teacher" / "seed0")
    assert teacher_scalars == {"lr": [(1, pytest.approx(0.01)), (2, pytest.approx(0.01))],
                               "train/loss": [(1, 2.0), (2, 1.5)],
                               "val/student/accuracy": [(1, 0.25), (2, 0.5)]}
    assert read_scalars(tmp_path / "tb" / "student-alone" / "seed0" / "hint") == {"train/hint": [(1, 0.125)]}


@needs_tensorboard
def test_a_fit_logs_every_epoch_of_metrics_jsonl_to_tensorboard(tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(48, 4, generator=generator)
    train = ArrayDataset(inputs[:32], (inputs[:32, 0] > 0).long())
    validation = ArrayDataset(inputs[32:], (inputs[32:, 0] > 0).long())
    torch.manual_seed(0)
    log = MetricsLog(tmp_path / "metrics.jsonl", sinks=[TensorBoardSink(tmp_path / "tensorboard")])
    settings = FitSettings(epochs=3, batch_size=8, progress=False, optimizer=OptimizerSettings("adam", 0.05))
    fit(Offline(MLP((4,), 2, hidden=(8,)), Objective(CE())), train, validation, settings,
        log=log.bind(run="student", seed=0))
    log.close()
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    written = read_scalars(tmp_path / "tensorboard" / "student" / "seed0")
    expected_tags = {key for key in records[0] if key.startswith(("train/", "val/"))} | {"lr"}
    assert set(written) == expected_tags and {"train/loss", "train/ce", "val/student/accuracy"} <= expected_tags
    for tag in expected_tags:
        assert written[tag] == [(r["epoch"], pytest.approx(r[tag], rel=1e-6)) for r in records]
