"""The student's training step on the CPU: optimizer kernels and ``torch.compile`` (``mentor bench student_step``).

Fashion-MNIST (54,000 training images), a student trained alone with cross-entropy through
:func:`mentor.engine.fit`, SGD 0.05 / momentum 0.9 / weight decay 5e-4, batch 128. The variants are interleaved
round after round in this one process, each a fresh copy of the same initial student:

* ``train.optimizer.kernel``: ``for-loop``, ``foreach`` and ``fused`` (``auto`` is torch's choice, the for-loop on
  the CPU), one epoch each;
* ``train.compile: true`` (default kernel): two epochs; the second is its steady epoch time, the first minus the
  second what compilation cost.

The loop's own epoch time is read (the ``seconds`` of its epoch record: batches, forward, loss, backward and
optimizer steps, without evaluation).
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

from mentor import data as datasets  # noqa: E402
from mentor.engine import FitSettings, OptimizerSettings, fit  # noqa: E402
from mentor.losses import CE, Objective  # noqa: E402
from mentor.models import create as model  # noqa: E402
from mentor.schemes import Offline  # noqa: E402


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mentor bench student_step", description=__doc__.split("\n\n")[0])
    parser.add_argument("--student", default="cnn-small")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="training samples (quick trials)")
    parser.add_argument("--no-write", action="store_true", help="print the table only; leave BENCHMARKS.md alone")
    return parser.parse_args(argv)


def epochs_seconds(student: torch.nn.Module, train: datasets.ArrayDataset, kernel: str, compile_: bool,
                   epochs: int) -> list[float]:
    """The loop's epoch times for a fresh copy of ``student``."""
    settings = FitSettings(epochs=epochs, batch_size=128, progress=False, compile=compile_, scale_probe=0,
                           optimizer=OptimizerSettings("sgd", 0.05, momentum=0.9, weight_decay=5e-4, kernel=kernel))
    scheme = Offline(copy.deepcopy(student), Objective(CE()))
    return [float(record["seconds"]) for record in fit(scheme, train, None, settings).history]


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    splits = datasets.load("fashion-mnist", validation=0.1, seed=0, limit=args.limit)
    torch.manual_seed(0)
    student = model(args.student, splits.num_classes, splits.input_shape)
    compile_first: list[float] = []

    def compiled() -> float:
        first, steady = epochs_seconds(student, splits.train, "auto", True, 2)
        compile_first.append(first - steady)
        return steady

    measures = {f"kernel {kernel}": (lambda kernel=kernel: epochs_seconds(student, splits.train, kernel, False, 1)[0])
                for kernel in ("for-loop", "foreach", "fused")}
    measures["compile (steady epoch)"] = compiled
    print(f"student_step: {args.student}, {len(splits.train)} images, {torch.get_num_threads()} threads", flush=True)
    times = _common.interleaved(measures, repeats=args.repeats)
    base = _common.median(times["kernel for-loop"])
    rows = [[name, _common.spread(values), f"{_common.median(values) / base:.3f}"] for name, values in times.items()]
    rows.append(["compile: first epoch minus steady", _common.spread(compile_first[1:]), ""])
    table = _common.table(["variant", "epoch seconds median (min-max)", "÷ for-loop"], rows)
    print(table)
    if not args.no_write:
        body = _common.section_body(_common.invocation("student_step", argv), [
            f"Fashion-MNIST, {len(splits.train):,} training images, student {args.student} alone (CE), SGD 0.05 / 0.9 "
            f"/ 5e-4, batch 128, {torch.get_num_threads()} threads, {args.repeats} interleaved rounds after 1 warm-up.",
            "", table])
        _common.write_section("student_step", "The student's step: optimizer kernels and torch.compile", body)


if __name__ == "__main__":
    main()
