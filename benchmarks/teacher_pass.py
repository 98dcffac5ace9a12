"""The teacher-output cache's build against a bare teacher pass, fp32 and bf16 (``mentor bench teacher_pass``).

Fashion-MNIST (all 60,000 training images), teacher cnn-medium trained for ``--epochs`` epochs (a trained
teacher, so that agreement means something). Timed, interleaved round after round in this one process:

* a bare pass: the teacher in ``inference_mode`` over the training set in order, at each batch size of
  ``--batch-sizes`` (the best one is the floor the build is measured against);
* the cache build (:meth:`mentor.teachers.cache.TeacherCache.build` into an empty folder: the pass, the
  memory-mapped shards, their checksums and the probe check), at its default batch size;
* the same two in bf16 (``train.teacher_precision: bf16``: autocast, outputs handed on as float32).

Agreement of the bf16 teacher with the fp32 one: the share of training and test images whose top-1 class is the
same, the largest absolute logit difference, and both test accuracies.
"""

from __future__ import annotations

import argparse
import atexit
import shutil
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

from mentor import data as datasets  # noqa: E402
from mentor.data import ArrayDataset  # noqa: E402
from mentor.engine import FitSettings, OptimizerSettings  # noqa: E402
from mentor.models import create as model  # noqa: E402
from mentor.pipelines import train as train_model  # noqa: E402
from mentor.teachers import freeze  # noqa: E402
from mentor.teachers.cache import TeacherCache  # noqa: E402
from mentor.teachers.frozen import FrozenTeacher  # noqa: E402


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mentor bench teacher_pass", description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=2, help="teacher training epochs")
    parser.add_argument("--batch-sizes", default="128,256,512,1024", help="bare-pass batch sizes tried")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="training and test samples (quick trials)")
    parser.add_argument("--no-write", action="store_true", help="print the table only; leave BENCHMARKS.md alone")
    return parser.parse_args(argv)


def bare_seconds(teacher: FrozenTeacher, train: ArrayDataset, batch_size: int) -> float:
    """One in-order inference pass of ``teacher`` over ``train``."""
    with _common.stopwatch() as elapsed:
        for start in range(0, len(train), batch_size):
            teacher.outputs(train.inputs[start:start + batch_size])
    return elapsed()


def build_seconds(teacher: FrozenTeacher, train: ArrayDataset) -> float:
    """One cache build into an empty folder (removed afterwards)."""
    root = Path(tempfile.mkdtemp(prefix="mentor-teacher-pass-"))
    try:
        with _common.stopwatch() as elapsed:
            if TeacherCache.build(teacher, train, root=root) is None:
                raise RuntimeError("the cache build failed (see the warning above)")
        return elapsed()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def logits(teacher: FrozenTeacher, inputs: torch.Tensor) -> torch.Tensor:
    return torch.cat([teacher.outputs(inputs[start:start + 1024]).logits for start in range(0, len(inputs), 1024)])


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    splits = datasets.load("fashion-mnist", validation=0.1, seed=0, limit=args.limit)
    torch.manual_seed(0)
    network = model("cnn-medium", splits.num_classes, splits.input_shape)
    settings = FitSettings(epochs=args.epochs, batch_size=128, progress=False,
                           optimizer=OptimizerSettings("sgd", 0.05, momentum=0.9, weight_decay=5e-4))
    train_model(network, splits, settings=settings)
    everything = ArrayDataset(torch.cat([splits.train.inputs, splits.validation.inputs]),
                              torch.cat([splits.train.targets, splits.validation.targets]))
    fp32, bf16 = freeze(network), freeze(network)
    bf16.precision = "bf16"
    atexit.register(lambda: (fp32.release(), bf16.release()))
    sizes = [int(size) for size in args.batch_sizes.split(",")]
    print(f"teacher_pass: {len(everything)} training images, {torch.get_num_threads()} threads", flush=True)
    measures = {f"bare fp32, batch {size}": (lambda size=size: bare_seconds(fp32, everything, size)) for size in sizes}
    best_guess = 128  # the build's default batch size
    measures |= {
        "cache build fp32": lambda: build_seconds(fp32, everything),
        f"bare bf16, batch {best_guess}": lambda: bare_seconds(bf16, everything, best_guess),
        "cache build bf16": lambda: build_seconds(bf16, everything),
    }
    times = _common.interleaved(measures, repeats=args.repeats)
    bare = {size: _common.median(times[f"bare fp32, batch {size}"]) for size in sizes}
    best = min(bare, key=bare.__getitem__)
    floor = bare[best]
    rows = [[name, _common.spread(values), f"{_common.median(values) / floor:.3f}"] for name, values in times.items()]
    timing = _common.table(["pass", "seconds median (min-max)", f"÷ bare fp32 at batch {best}"], rows)

    agreement_rows = []
    for part, inputs, targets in (("train", everything.inputs, everything.targets),
                                  ("test", splits.test.inputs, splits.test.targets)):
        full, half = logits(fp32, inputs), logits(bf16, inputs)
        same = (full.argmax(1) == half.argmax(1)).float().mean().item()
        agreement_rows.append([part, f"{len(inputs):,}", f"{100 * same:.3f}", f"{(full - half).abs().max():.4f}",
                               f"{100 * (full.argmax(1) == targets).float().mean():.2f}",
                               f"{100 * (half.argmax(1) == targets).float().mean():.2f}"])
    agreement = _common.table(["images", "count", "top-1 agreement %", "max |Δ logit|", "fp32 acc %", "bf16 acc %"],
                              agreement_rows)
    print(timing, "\n", agreement, sep="\n")
    if not args.no_write:
        body = _common.section_body(_common.invocation("teacher_pass", argv), [
            f"Fashion-MNIST, {len(everything):,} training images, teacher cnn-medium trained {args.epochs} epochs "
            f"(SGD 0.05), {torch.get_num_threads()} threads, {args.repeats} interleaved rounds after 1 warm-up. "
            f"Best bare batch size: {best}.", "", timing, "", "Agreement of the bf16 teacher pass with fp32:", "",
            agreement])
        _common.write_section("teacher_pass", "The teacher pass: cache build vs a bare pass, fp32 vs bf16", body)


if __name__ == "__main__":
    main()
