"""TensorBoard scalars for every epoch record of a run (optional extra: ``pip install 'mentor[tensorboard]'``).

A :class:`TensorBoardSink` given to :class:`~mentor.engine.MetricsLog` writes each epoch record's
``train/*`` and ``val/*`` values (and the learning rate as ``lr``) as scalars, with the record's epoch as the
step. Each model of a run gets its own TensorBoard run, a folder ``<run>/seed<S>[/<stage>]`` under the log
directory (the stage only when it is not the default ``train``), so the same metric of the teacher, the student
alone and the student distilled is drawn in one chart: ``tensorboard --logdir RUN_DIR/tensorboard``.

``torch.utils.tensorboard`` is imported only when a sink is created; without the ``tensorboard`` package the
sink raises a :class:`~mentor.errors.MentorError` saying what to install.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

from mentor.errors import MentorError

PREFIXES = ("train/", "val/")
"""Record keys starting with these are written as scalars (plus ``lr``)."""


def summary_writer_class() -> Any:
    """``torch.utils.tensorboard.SummaryWriter``, or a :class:`MentorError` telling how to install it."""
    try:
        return importlib.import_module("torch.utils.tensorboard").SummaryWriter
    except ImportError:
        raise MentorError("TensorBoard logging (recipe key log.tensorboard) needs the tensorboard package; "
                          "install it with: pip install 'mentor[tensorboard]'") from None


def scalars(record: dict[str, Any]) -> dict[str, float]:
    """The values of ``record`` written as scalars: numbers under ``train/``, ``val/`` and ``lr``."""
    return {key: float(value) for key, value in record.items()
            if (key.startswith(PREFIXES) or key == "lr")
            and isinstance(value, (int, float)) and not isinstance(value, bool)}


def run_name(record: dict[str, Any]) -> str:
    """The TensorBoard run of a record: ``<run>/seed<S>[/<stage>]`` from its fields (``main`` if none)."""
    parts = []
    if "run" in record:
        parts.append(str(record["run"]))
    if "seed" in record:
        parts.append(f"seed{record['seed']}")
    if record.get("stage", "train") != "train":
        parts.append(str(record["stage"]))
    safe = [re.sub(r"[^\w.+-]+", "-", part).strip(".") or "-" for part in parts]
    return "/".join(safe) or "main"


class TensorBoardSink:
    """Writes every epoch record's scalars to TensorBoard event files under ``log_dir``.

    Args:
        log_dir: the folder TensorBoard reads (``RUN_DIR/tensorboard``); created on the first record.

    Raises:
        MentorError: when the ``tensorboard`` package is not installed (checked here, before any run starts).
    """

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = Path(log_dir)
        self._writer_class = summary_writer_class()
        self._writers: dict[str, Any] = {}

    def write(self, record: dict[str, Any]) -> None:
        """Add the record's scalars at step ``record["epoch"]``; records without an epoch are skipped."""
        step = record.get("epoch")
        values = scalars(record)
        if not isinstance(step, int) or isinstance(step, bool) or not values:
            return
        name = run_name(record)
        if name not in self._writers:
            self._writers[name] = self._writer_class(log_dir=str(self.log_dir / name))
        writer = self._writers[name]
        for tag, value in values.items():
            writer.add_scalar(tag, value, global_step=step)
        writer.flush()  # one flush per epoch: an interrupted run keeps every epoch it logged

    def close(self) -> None:
        """Flush and close every event file (a later record opens a new one)."""
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
