"""Data-parallel scaling on the CPU: 1 process vs several under torchrun (``mentor bench scale``).

cnn-small trained with cross-entropy on Fashion-MNIST by ``mentor.engine.fit`` with the same global
batch (128: one process takes 128 samples a step, each of two processes 64, and their gradients are
averaged), the same epochs, Adam and seed. Runs:

* 1 process, 1 thread: the unit of work;
* 1 process, all threads (torch's intra-op parallelism over the cores);
* P processes × 1 thread each for every P of ``--processes`` (default 2), started by
  ``python -m torch.distributed.run`` with the gloo backend.

Efficiency is the speed-up per core used (threads × processes, at most the machine's cores): 1.00 is
perfect scaling.

Throughput is training samples per second of the training loop (the epochs' own time, evaluation
excluded); accuracy is on the test set, measured by rank 0 after training. BatchNorm statistics stay
per process (as in DistributedDataParallel without SyncBatchNorm), so the 2-process accuracy may
differ a little from the single process's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mentor bench scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="first N train and test samples (default: all)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128, help="global batch (split over the processes)")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--model", default="cnn-small")
    parser.add_argument("--processes", default="2", help="comma-separated process counts, 1 thread each")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)  # where rank 0 writes its result
    return parser.parse_args(argv)


def worker(args: argparse.Namespace) -> None:
    """One process of a run (torchrun sets RANK and WORLD_SIZE): train, then rank 0 evaluates."""
    from mentor import data as datasets
    from mentor.engine import FitSettings, OptimizerSettings, evaluate, fit
    from mentor.engine.distributed import world
    from mentor.losses import CE, Objective
    from mentor.models import create
    from mentor.schemes import Offline

    current = world()
    if args.batch_size % current.size:
        raise SystemExit(f"--batch-size {args.batch_size} does not split over {current.size} processes")
    splits = datasets.load("fashion-mnist", validation=0.0, seed=0, limit=args.limit)
    torch.manual_seed(0)
    model = create(args.model, splits.num_classes, splits.input_shape)
    settings = FitSettings(epochs=args.epochs, batch_size=args.batch_size // current.size, progress=False,
                           optimizer=OptimizerSettings("adam", args.lr))
    result = fit(Offline(model, Objective(CE())), splits.train, None, settings)
    if current.is_main:
        seconds = sum(record["seconds"] for record in result.history)
        samples = (len(splits.train) // current.size) * current.size * args.epochs
        args.worker.write_text(json.dumps({
            "processes": current.size, "threads": torch.get_num_threads(), "seconds": seconds,
            "samples_per_s": samples / seconds, "accuracy": evaluate(model, splits.test)["accuracy"],
            "train": len(splits.train), "test": len(splits.test)}))


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.worker:
        worker(args)
        return
    script = str(Path(__file__).resolve())
    passed = ["--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--lr", str(args.lr),
              "--model", args.model] + (["--limit", str(args.limit)] if args.limit else [])
    cores = os.cpu_count() or 1
    base = {**os.environ, "MENTOR_BACKEND": "gloo"}
    runs = {
        "1 process × 1 thread": ([sys.executable, script], {**base, "OMP_NUM_THREADS": "1"}, 1),
        f"1 process × {cores} threads": ([sys.executable, script], {**base, "OMP_NUM_THREADS": str(cores)}, cores),
    }
    for processes in (int(count) for count in args.processes.split(",")):
        runs[f"{processes} processes × 1 thread (torchrun, gloo)"] = (
            [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}", script],
            {**base, "OMP_NUM_THREADS": "1"}, min(processes, cores))
    results = {}
    with tempfile.TemporaryDirectory(prefix="mentor-scale-") as folder:
        for name, (command, env, used) in runs.items():
            out = Path(folder) / "result.json"
            out.unlink(missing_ok=True)
            print(f"scale: {name} ...", flush=True)
            child = _common.run_child([*command, *passed, "--worker", str(out)], env=env).check(name)
            results[name] = {**json.loads(out.read_text()), "peak_mb": child.peak_rss_mb, "wall": child.seconds,
                             "cores": used}
            r = results[name]
            print(f"  {r['samples_per_s']:.0f} samples/s, test accuracy {r['accuracy']:.2%}, "
                  f"peak RSS {r['peak_mb']:.0f} MB per process", flush=True)

    unit = results["1 process × 1 thread"]["samples_per_s"]
    rows = [[name, f"{r['samples_per_s']:.0f}", f"{r['samples_per_s'] / unit:.2f}",
             f"{r['samples_per_s'] / unit / r['cores']:.2f}", f"{r['accuracy'] * 100:.2f}", f"{r['seconds']:.1f}",
             f"{r['peak_mb']:.0f}"] for name, r in results.items()]
    text = _common.table(["run", "train samples/s", "speed-up", "efficiency", "test acc %", "train s", "peak RSS MB"],
                         rows)
    print("\n" + text)
    if args.no_write:
        return
    first = next(iter(results.values()))
    body = _common.section_body(_common.invocation("scale", argv), [
        f"Fashion-MNIST ({first['train']:,} train / {first['test']:,} test), {args.model}, cross-entropy, Adam lr "
        f"{args.lr}, global batch {args.batch_size}, {args.epochs} epochs, seed 0. Samples/s over the training "
        "loop's epochs (no evaluation); speed-up against 1 process × 1 thread; efficiency: the speed-up per core "
        "used; peak RSS of the largest process.",
        "",
        text,
    ])
    _common.write_section("scale", "Data-parallel scaling on the CPU", body)
    print(f"\nwritten to {_common.BENCHMARKS_MD}")


if __name__ == "__main__":
    main()
