"""Metrics written as JSON lines, one record per epoch (and per event), flushed as they come.

Every line is strict JSON (a non-finite number is written as ``null``). A kill or a full disk can leave the last
line half written: it is dropped, with a warning, before the next record is appended and when the file is read.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from mentor.errors import MentorError, warn, writing


def finite_or_null(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by ``None`` (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite_or_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(item) for item in value]
    return value


def drop_torn_tail(path: Path) -> None:
    """Cut a last line that has no newline (what a kill or a full disk leaves) off ``path``, with a warning."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with path.open("rb+") as file:
        file.seek(-1, os.SEEK_END)
        if file.read(1) == b"\n":
            return
        file.seek(0)
        data = file.read()
        keep = data.rfind(b"\n") + 1
        file.truncate(keep)
    warn(f"dropped the unfinished last line of {str(path)!r} ({len(data) - keep} bytes; a run was interrupted "
         "while writing it)")


class Sink(Protocol):
    """Somewhere else every record goes (e.g. :class:`mentor.engine.tensorboard.TensorBoardSink`)."""

    def write(self, record: dict[str, Any]) -> None:
        """Receive one record (the log's fixed fields included), right after it is written to the file."""

    def close(self) -> None:
        """Flush and release what the sink holds."""


class MetricsLog:
    """Append-only JSONL file; ``None`` path keeps records in memory only.

    ``sinks`` also receive every record (shared with the logs made by :meth:`bind`); :meth:`close`
    closes them.
    """

    def __init__(self, path: Path | None = None, *, sinks: Sequence[Sink] = (), **fields: Any) -> None:
        self.path = path
        self.fields = fields
        self.sinks = list(sinks)
        self.records: list[dict[str, Any]] = []
        if path is not None:
            drop_torn_tail(path)

    def bind(self, **fields: Any) -> MetricsLog:
        """A log writing to the same file and sinks with extra fixed fields (``run="student"``)."""
        child = MetricsLog(self.path, sinks=self.sinks, **{**self.fields, **fields})
        child.records = self.records
        return child

    def write(self, **values: Any) -> dict[str, Any]:
        record = {**self.fields, **values}
        self.records.append(record)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with writing(self.path), self.path.open("a", encoding="utf-8") as file:
                file.write(json.dumps(finite_or_null(record), sort_keys=False, allow_nan=False) + "\n")
        for sink in self.sinks:
            sink.write(record)
        return record

    def close(self) -> None:
        """Close the sinks (the JSONL file is never held open)."""
        for sink in self.sinks:
            sink.close()

    def drop_after(self, stage: str, epoch: int) -> None:
        """Forget this log's records of ``stage`` past ``epoch`` (a resumed run writes them again).

        A line that is not a record is dropped too, with a warning: every record is rewritten from the
        checkpoints when its stage resumes.
        """
        def stale(record: dict[str, Any]) -> bool:
            mine = all(record.get(k) == v for k, v in self.fields.items())
            return mine and record.get("stage") == stage and record.get("epoch", 0) > epoch

        self.records[:] = [r for r in self.records if not stale(r)]
        if self.path is not None and self.path.exists():
            lines, _ = _lines(self.path)
            kept = [line for line, record in lines if record is not None and not stale(record)]
            damaged = sum(record is None for _, record in lines)
            if damaged:
                warn(f"dropped {damaged} damaged line(s) of {str(self.path)!r}; their stages write them again "
                     "from the checkpoints")
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
            temporary.replace(self.path)


def _record(line: str) -> dict[str, Any] | None:
    """The record on ``line``, or ``None`` when it is not a JSON object."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) else None


def _lines(path: Path) -> tuple[list[tuple[str, dict[str, Any] | None]], bool]:
    """The non-empty lines of ``path`` with their records (``None`` for a damaged line), and whether the last
    line is unfinished (no newline)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise MentorError(f"cannot read {str(path)!r}: {error.strerror}") from None
    lines = [(line, _record(line)) for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines, bool(data) and not data.endswith(b"\n")


def read(path: Path) -> list[dict[str, Any]]:
    """All records of a metrics file (none when it does not exist).

    An unfinished last line (a kill or a full disk) is left out; any other damaged line is a one-line error.
    """
    if not path.is_file():
        return []
    lines, torn = _lines(path)
    if torn and lines[-1][1] is None:
        lines = lines[:-1]
    for number, (_, record) in enumerate(lines, start=1):
        if record is None:
            raise MentorError(f"{str(path)!r} record {number} is not a JSON object; the file is damaged "
                              "(`mentor resume` rewrites the records of a run from its checkpoints)")
    return [record for _, record in lines if record is not None]
