"""Metrics written as JSON lines, one record per epoch (and per event), flushed as they come."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from mentor.errors import MentorError


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
            with self.path.open("a", encoding="utf-8") as file:
                file.write(json.dumps(record, sort_keys=False) + "\n")
        for sink in self.sinks:
            sink.write(record)
        return record

    def close(self) -> None:
        """Close the sinks (the JSONL file is never held open)."""
        for sink in self.sinks:
            sink.close()

    def drop_after(self, stage: str, epoch: int) -> None:
        """Forget this log's records of ``stage`` past ``epoch`` (a resumed run writes them again)."""
        def stale(record: dict[str, Any]) -> bool:
            mine = all(record.get(k) == v for k, v in self.fields.items())
            return mine and record.get("stage") == stage and record.get("epoch", 0) > epoch

        self.records[:] = [r for r in self.records if not stale(r)]
        if self.path is not None and self.path.exists():
            kept = [line for line in self.path.read_text(encoding="utf-8").splitlines()
                    if line.strip() and not stale(json.loads(line))]
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
            temporary.replace(self.path)


def read(path: Path) -> list[dict[str, Any]]:
    """All records of a metrics file (none when it does not exist); a damaged line is a clear error."""
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                raise MentorError(f"{str(path)!r} line {number} is not valid JSON; the file is corrupt") from None
    return records
