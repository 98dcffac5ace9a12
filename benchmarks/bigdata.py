"""Distilling from data larger than memory: peak RSS against dataset size (``mentor bench bigdata``).

A synthetic torch ``Dataset`` makes sample ``i`` on demand from a generator seeded by ``i`` (``--shape`` float32
images, label ``i % 10``), so a dataset of any size exists without being stored anywhere. For each size in
``--sizes``, one process distils a small teacher into a smaller student with KD (τ=4, α=0.9) for one epoch through
:func:`mentor.engine.fit`: the teacher-output cache is built into a fresh folder (sharded, memory-mapped), the
epoch reads its batches through a DataLoader with ``--workers`` processes, and the student is evaluated on a
held-out synthetic set. The table gives the data size it stands for (N × bytes per sample), the cache on disk,
the peak RSS of the process and of its largest loader worker: bounded means RSS stays flat while the data grows
past the machine's free memory.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mentor bench bigdata", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated sample counts")
    parser.add_argument("--shape", default="3,32,32", help="one sample's shape (C,H,W or D)")
    parser.add_argument("--teacher", default="cnn-medium")
    parser.add_argument("--student", default="cnn-small")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="print the table only; leave BENCHMARKS.md alone")
    return parser.parse_args(argv)


def synthetic(size: int, shape: tuple[int, ...], offset: int = 0):  # noqa: ANN201 - a torch Dataset
    import torch
    from torch.utils.data import Dataset

    class Synthetic(Dataset):
        """Sample i: a seeded normal tensor shifted by its label i % 10 (learnable); never stored."""

        def __len__(self) -> int:
            return size

        def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
            generator = torch.Generator().manual_seed(offset + index)
            label = (offset + index) % 10
            return torch.randn(shape, generator=generator) + 0.5 * label, label

    return Synthetic()


def worker(args: argparse.Namespace) -> None:
    import torch

    from mentor.engine import FitSettings, OptimizerSettings, evaluate, fit
    from mentor.knowledge import create as knowledge
    from mentor.models import create
    from mentor.schemes import Offline

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    shape = tuple(int(part) for part in args.shape.split(","))
    train, held_out = synthetic(args.worker, shape), synthetic(2000, shape, offset=10**9)
    teacher, student = create(args.teacher, 10, shape).eval(), create(args.student, 10, shape)
    settings = FitSettings(epochs=1, batch_size=args.batch_size, progress=False, num_workers=args.workers,
                           optimizer=OptimizerSettings("adam", 0.001), scale_probe=0)
    scheme = Offline(student, knowledge("kd", temperature=4.0, alpha=0.9), teacher)
    fit(scheme, train, None, settings)
    disk = sum(path.stat().st_size for path in scheme.cache.folder.iterdir()) if scheme.cache else 0
    accuracy = evaluate(student, held_out, 512)["accuracy"]
    print(json.dumps({"cache_bytes": disk, "accuracy": accuracy, "cached": scheme.cache is not None}))


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.worker:
        worker(args)
        return
    shape = tuple(int(part) for part in args.shape.split(","))
    sample_bytes = 4
    for dimension in shape:
        sample_bytes *= dimension
    passed = [f"--shape={args.shape}", f"--teacher={args.teacher}", f"--student={args.student}",
              f"--batch-size={args.batch_size}", f"--workers={args.workers}", f"--threads={args.threads}"]
    rows = []
    for size in (int(part) for part in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="mentor-bigdata-") as cache:
            child = _common.run_child([sys.executable, str(Path(__file__).resolve()), "--worker", str(size), *passed],
                                      env={**os.environ, "MENTOR_CACHE": cache}).check(f"size {size}")
        result = json.loads(child.stdout.strip().splitlines()[-1])
        rows.append([f"{size:,}", f"{size * sample_bytes / 2**30:.2f}", f"{result['cache_bytes'] / 2**20:.1f}",
                     f"{child.peak_rss_mb:.0f}", f"{100 * result['accuracy']:.1f}", f"{child.seconds:.0f}"])
        print(f"{size:,} samples: peak RSS {child.peak_rss_mb:.0f} MB, {child.seconds:.0f} s", flush=True)
    table = _common.table(["samples", "data GiB", "cache MiB", "peak RSS MB", "held-out acc %", "wall s"], rows)
    print(table)
    if not args.no_write:
        body = _common.section_body(_common.invocation("bigdata", argv), [
            f"Synthetic samples of shape {shape} made on demand, teacher {args.teacher} -> student {args.student}, "
            f"KD τ=4 α=0.9, 1 epoch, batch {args.batch_size}, {args.workers} loader worker(s); teacher-output "
            "cache built into a fresh folder. Peak RSS: the largest single process (the trainer or a worker).",
            "", table])
        _common.write_section("bigdata", "Data beyond memory: peak RSS against dataset size", body)


if __name__ == "__main__":
    main()
