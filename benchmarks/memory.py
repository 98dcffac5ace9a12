"""Peak memory of KD: a hand-written loop against Mentor with the teacher-output cache and with a live teacher.

``mentor bench memory``. Fashion-MNIST (``--limit`` train samples before the 10 % validation split), teacher
cnn-large (1.1M parameters, untrained: its weights do not change the memory of a forward pass), student cnn-small,
KD (τ=4, α=0.9), Adam, batch 128, ``--epochs`` epochs, then the student is evaluated on validation and test. Each
run is its own process, started from the same state; its peak resident memory (``ru_maxrss``) covers loading the
data, the cache build (Mentor-cache, into a fresh cache folder), training and evaluation. The target: Mentor's
peak RSS at most 1.2 × the hand-written loop's, cached and live.
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

RUNS = ("plain", "mentor-cache", "mentor-live")
TARGET = 1.2


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mentor bench memory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="first N training samples (default: all 60,000)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--teacher", default="cnn-large")
    parser.add_argument("--student", default="cnn-small")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of every run")
    parser.add_argument("--worker", choices=RUNS, help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="print the table only; leave BENCHMARKS.md alone")
    return parser.parse_args(argv)


def worker(args: argparse.Namespace) -> None:
    """One run in this process: load, train, evaluate; print the accuracy as JSON."""
    import torch
    import torch.nn.functional as F

    from mentor.data import load
    from mentor.engine import FitSettings, OptimizerSettings, evaluate, fit
    from mentor.knowledge import create as knowledge
    from mentor.models import create
    from mentor.schemes import Offline

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = load("fashion-mnist", validation=0.1, limit=args.limit)
    teacher = create(args.teacher, 10, data.input_shape).eval()
    student = create(args.student, 10, data.input_shape)
    if args.worker == "plain":
        inputs, targets = data.train.inputs, data.train.targets
        optimizer = torch.optim.Adam(student.parameters(), lr=0.001)
        generator = torch.Generator().manual_seed(0)
        for _ in range(args.epochs):
            student.train()
            order = torch.randperm(len(inputs), generator=generator)
            for start in range(0, len(inputs), args.batch_size):
                index = order[start : start + args.batch_size]
                x, y = inputs[index], targets[index]
                with torch.no_grad():
                    teacher_logits = teacher(x)
                logits = student(x)
                soft = F.kl_div(F.log_softmax(logits / 4, dim=1), F.log_softmax(teacher_logits / 4, dim=1),
                                reduction="batchmean", log_target=True)
                loss = 0.1 * F.cross_entropy(logits, y) + 0.9 * 16 * soft
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            student.eval()
            with torch.no_grad():  # validation each epoch, like the loop
                correct = sum(int((student(data.validation.inputs[s : s + 1024]).argmax(1)
                                   == data.validation.targets[s : s + 1024]).sum())
                              for s in range(0, len(data.validation), 1024))
        accuracy = correct / len(data.validation)
    else:
        settings = FitSettings(epochs=args.epochs, batch_size=args.batch_size, progress=False, seed=0,
                               teacher_cache=args.worker == "mentor-cache", optimizer=OptimizerSettings("adam", 0.001))
        fit(Offline(student, knowledge("kd", temperature=4.0, alpha=0.9), teacher), data.train, data.validation,
            settings)
        accuracy = evaluate(student, data.validation)["accuracy"]
    print(json.dumps({"validation_accuracy": accuracy}))


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.worker:
        worker(args)
        return
    rows, peaks = [], {}
    passed = [f"--limit={args.limit}"] if args.limit else []
    passed += [f"--epochs={args.epochs}", f"--batch-size={args.batch_size}", f"--teacher={args.teacher}",
               f"--student={args.student}", f"--threads={args.threads}"]
    for name in RUNS:
        with tempfile.TemporaryDirectory(prefix="mentor-memory-") as cache:
            env = {**os.environ, "MENTOR_CACHE": cache}
            child = _common.run_child([sys.executable, str(Path(__file__).resolve()), "--worker", name, *passed],
                                      env=env).check(name)
        peaks[name] = child.peak_rss_mb
        accuracy = json.loads(child.stdout.strip().splitlines()[-1])["validation_accuracy"]
        rows.append([name, f"{child.peak_rss_mb:.0f}", f"{child.peak_rss_mb / peaks['plain']:.2f}",
                     f"{100 * accuracy:.2f}", f"{child.seconds:.1f}"])
        print(f"{name}: peak RSS {child.peak_rss_mb:.0f} MB, {child.seconds:.1f} s", flush=True)
    table = _common.table(["run", "peak RSS MB", "÷ plain", "val acc %", "wall s"], rows)
    worst = max(peaks["mentor-cache"], peaks["mentor-live"]) / peaks["plain"]
    verdict = f"Worst Mentor / plain: {worst:.2f} (target ≤ {TARGET}: {'met' if worst <= TARGET else 'missed'})."
    print(table + "\n" + verdict)
    if not args.no_write:
        size = f"the first {args.limit:,} samples" if args.limit else "all 60,000 samples"
        body = _common.section_body(_common.invocation("memory", argv), [
            f"Fashion-MNIST ({size}, 10 % validation), teacher {args.teacher} -> student {args.student}, KD τ=4 "
            f"α=0.9, Adam, batch {args.batch_size}, {args.epochs} epoch(s), {args.threads} thread(s); each run in "
            "its own process, peak RSS over loading, cache build, training and evaluation.", "", table, "",
            verdict])
        _common.write_section("memory", "Memory: peak RSS against a hand-written loop", body)


if __name__ == "__main__":
    main()
