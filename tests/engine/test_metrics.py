"""metrics.jsonl: strict JSON lines, a torn last line dropped, a damaged line a one-line error."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from mentor.engine.metrics import MetricsLog, finite_or_null, read
from mentor.errors import MentorError, MentorWarning

GOOD = '{"run": "teacher", "epoch": 1}\n{"run": "teacher", "epoch": 2}\n'


def strict(line: str) -> dict:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    return json.loads(line, parse_constant=refuse)


def test_non_finite_numbers_are_written_as_null(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path / "metrics.jsonl", run="teacher")
    log.write(epoch=1, **{"val/student/loss": math.nan, "train/kl": math.inf, "train/ce": -math.inf, "lr": 0.1})
    record = strict((tmp_path / "metrics.jsonl").read_text())
    assert record == {"run": "teacher", "epoch": 1, "val/student/loss": None, "train/kl": None, "train/ce": None,
                      "lr": 0.1}
    assert finite_or_null({"a": [1.0, math.nan], "b": (math.inf,)}) == {"a": [1.0, None], "b": [None]}


def test_a_torn_last_line_is_left_out_when_read(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text(GOOD + '{"run": "teacher", "ep')
    assert [record["epoch"] for record in read(path)] == [1, 2]


def test_a_torn_last_line_is_dropped_before_the_next_record(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text(GOOD + '{"run": "teacher", "epoch": 3, "train/loss": 0.')
    with pytest.warns(MentorWarning, match="dropped the unfinished last line"):
        log = MetricsLog(path, run="teacher")
    log.write(epoch=3)
    assert [strict(line)["epoch"] for line in path.read_text().splitlines()] == [1, 2, 3]


@pytest.mark.parametrize("line", ['{"run": "teacher", "epoch": 1', "[1, 2]", '"text"', "42", "\x00\x01", "[" * 5000])
def test_a_damaged_line_is_a_one_line_error(line: str, tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text(line + "\n" + GOOD)
    with pytest.raises(MentorError, match="record 1 is not a JSON object; the file is damaged") as error:
        read(path)
    assert "\n" not in str(error.value)


def test_resuming_a_stage_drops_damaged_lines_and_rewrites_its_records(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"run": "teacher", "stage": "train", "epoch": 1}\n{"run": "tea\x00\n'
                    '{"run": "student", "stage": "train", "epoch": 1}\n')
    with pytest.warns(MentorWarning, match="dropped 1 damaged line"):
        MetricsLog(path, run="teacher").drop_after("train", 0)
    assert [strict(line)["run"] for line in path.read_text().splitlines()] == ["student"]
