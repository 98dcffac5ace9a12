"""Overhead of offline KD over training the student alone, per epoch (``mentor bench overhead``).

Fashion-MNIST, teacher cnn-medium, student cnn-small, batch 128, KD (Hinton et al. 2015, τ=4,
α=0.9). One epoch of each variant is timed by the training loop itself (``mentor.engine.fit``, the
``seconds`` of its epoch record: the batches, forward, loss, backward and optimizer steps, without
evaluation), and the variants are interleaved round after round in this one process:

* student alone: cross-entropy only;
* KD with the teacher-output cache: the teacher's logits are read from the cache (built once, before
  the rounds; its build time, one teacher pass over the training set, is reported apart);
* KD with a live teacher (``teacher_cache`` off): a teacher forward pass on every batch;
* the teacher forward passes alone over one epoch's batches (inference mode), whose time divided by
  the student-alone epoch is the *teacher-forward share*: a live teacher cannot cost less than
  ``1 + share`` times the student alone, so the live target is ``1.05 × (1 + share)``;
* the same three trainings as hand-written loops (``fit``'s batches, the loss written out, Adam):
  the student alone, KD reading the teacher's logits from a tensor computed once, KD with the teacher under
  ``inference_mode`` on every batch; Mentor's epochs are compared with them (target: ≤ 1.0×);
* the hand-written loop's "cache": the teacher's logits over the training set in one ``inference_mode`` pass
  (batch ``--batch-size``), timed once beside Mentor's cache build.

The teacher is left untrained: its weights do not change the cost of a forward pass.
"""

from __future__ import annotations

import argparse
import atexit
import copy
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

from mentor import data as datasets  # noqa: E402
from mentor.data import ArrayDataset, BatchIterator  # noqa: E402
from mentor.data.batches import epoch_generator  # noqa: E402
from mentor.engine import FitSettings, OptimizerSettings, fit  # noqa: E402
from mentor.knowledge import create as knowledge  # noqa: E402
from mentor.losses import CE, Objective  # noqa: E402
from mentor.models import create as model  # noqa: E402
from mentor.schemes import Offline  # noqa: E402
from mentor.teachers.cache import TeacherCache  # noqa: E402
from mentor.teachers.frozen import freeze  # noqa: E402

LIVE_MARGIN = 1.05


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mentor bench overhead", description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="train on the first N samples (default: all 60,000)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (each: one epoch of every variant)")
    parser.add_argument("--warmup", type=int, default=1, help="rounds run first and not kept")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    parser.add_argument("--no-write", action="store_true", help="print the table only; leave BENCHMARKS.md alone")
    return parser.parse_args(argv)


def epoch_seconds(student: torch.nn.Module, train: ArrayDataset, objective: Objective,
                  teacher: torch.nn.Module | None, batch_size: int, cache: bool) -> float:
    """One epoch of a fresh copy of ``student`` through the training loop; the loop's own epoch time."""
    settings = FitSettings(epochs=1, batch_size=batch_size, progress=False, teacher_cache=cache,
                           optimizer=OptimizerSettings("adam", 1e-3))
    scheme = Offline(copy.deepcopy(student), objective, teacher)
    return float(fit(scheme, train, None, settings).history[0]["seconds"])


def teacher_seconds(teacher: torch.nn.Module, train: ArrayDataset, batch_size: int) -> float:
    """The teacher forward passes alone over one epoch's shuffled batches (batching not counted)."""
    frozen = freeze(teacher)
    total = 0.0
    for inputs, _ in BatchIterator(train, batch_size, shuffle=True, seed=0):
        with _common.stopwatch() as elapsed:
            frozen.outputs(inputs)
        total += elapsed()
    return total


def hand_epoch(student: torch.nn.Module, train: ArrayDataset, batch_size: int, seed: int,
               teacher: torch.nn.Module | None = None, logits: torch.Tensor | None = None) -> float:
    """One epoch of a hand-written loop on a fresh copy of ``student``: cross-entropy alone, or KD (τ=4, α=0.9) with
    the teacher's ``logits`` read by index or ``teacher`` run on every batch. Its batches are ``fit``'s with
    ``seed`` (the epoch order of ``epoch_generator``, the last partial batch dropped), so both take as many
    steps. Timed from the first batch on."""
    model = copy.deepcopy(student).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    inputs, targets = train.inputs, train.targets
    tau, alpha = 4.0, 0.9
    started = time.perf_counter()
    order = torch.randperm(len(inputs), generator=epoch_generator(seed, 0))
    for start in range(0, len(inputs) - batch_size + 1, batch_size):
        index = order[start:start + batch_size]
        x, y = inputs[index], targets[index]
        z = model(x)
        if teacher is None and logits is None:
            loss = F.cross_entropy(z, y)
        else:
            if logits is not None:
                t = logits[index]
            else:
                with torch.inference_mode():
                    t = teacher(x)  # type: ignore[misc]
            soft = F.kl_div(F.log_softmax(z / tau, dim=1), F.log_softmax(t / tau, dim=1), reduction="batchmean",
                            log_target=True)
            loss = (1 - alpha) * F.cross_entropy(z, y) + alpha * tau * tau * soft
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - started


def hand_pass(teacher: torch.nn.Module, train: ArrayDataset, batch_size: int) -> tuple[torch.Tensor, float]:
    """The hand-written loop's cache: the teacher's logits over ``train`` in one inference-mode pass, and its time."""
    started = time.perf_counter()
    with torch.inference_mode():
        logits = torch.cat([teacher(train.inputs[start:start + batch_size])
                            for start in range(0, len(train), batch_size)])
    return logits.clone(), time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    splits = datasets.load("fashion-mnist", validation=0.0, seed=0, limit=args.limit)
    train = splits.train
    torch.manual_seed(0)
    teacher = model("cnn-medium", splits.num_classes, splits.input_shape)
    student = model("cnn-small", splits.num_classes, splits.input_shape)
    kd = knowledge("kd", temperature=4.0, alpha=0.9)
    print(f"overhead: fashion-mnist, {len(train)} training samples, batch {args.batch_size}, "
          f"{args.repeats} rounds after {args.warmup} warm-up; {torch.get_num_threads()} threads", flush=True)

    fresh = tempfile.mkdtemp(prefix="mentor-overhead-")  # an empty cache: its build is measured, not looked up
    atexit.register(shutil.rmtree, fresh, True)
    os.environ["MENTOR_CACHE"] = fresh
    with _common.stopwatch() as build:
        cache = TeacherCache.build(freeze(teacher), train)  # the entry the cached variant reads
    cache_build = build()
    cache_mb = sum(path.stat().st_size for path in cache.folder.iterdir()) / 2**20
    teacher.eval()
    logits, hand_build = hand_pass(teacher, train, args.batch_size)
    rounds = iter(range(10**6))  # a fresh shuffle each round for the hand-written loops

    measures: dict[str, Callable[[], float]] = {
        "student alone": lambda: epoch_seconds(student, train, Objective(CE()), None, args.batch_size, False),
        "KD, cached teacher": lambda: epoch_seconds(student, train, kd, teacher, args.batch_size, True),
        "KD, live teacher": lambda: epoch_seconds(student, train, kd, teacher, args.batch_size, False),
        "teacher forward": lambda: teacher_seconds(teacher, train, args.batch_size),
        "hand alone": lambda: hand_epoch(student, train, args.batch_size, next(rounds)),
        "hand cached": lambda: hand_epoch(student, train, args.batch_size, next(rounds), logits=logits),
        "hand live": lambda: hand_epoch(student, train, args.batch_size, next(rounds), teacher=teacher),
    }
    times = _common.interleaved(measures, args.repeats, args.warmup)
    alone = _common.median(times["student alone"])
    share = _common.median(times["teacher forward"]) / alone
    cached = _common.median(times["KD, cached teacher"]) / alone
    live = _common.median(times["KD, live teacher"]) / alone
    live_target = LIVE_MARGIN * (1 + share)

    rows = [
        ["student alone (cross-entropy)", _common.spread(times["student alone"]), "1.00", ""],
        ["KD, teacher-output cache", _common.spread(times["KD, cached teacher"]), f"{cached:.2f}", ""],
        ["KD, live teacher", _common.spread(times["KD, live teacher"]), f"{live:.2f}",
         f"≤ {LIVE_MARGIN:.2f} × (1 + {share:.2f}) = {live_target:.2f}: {'met' if live <= live_target else 'MISSED'}"],
        ["teacher forward passes of one epoch", _common.spread(times["teacher forward"]),
         f"{share:.2f} (share)", ""],
        ["teacher-output cache build (once)", f"{cache_build:.3f}", f"{cache_build / alone:.2f}", ""],
    ]
    text = _common.table(["variant", "seconds per epoch: median (min-max)", "÷ student alone", "target"], rows)

    def versus(mentor: str, hand: str) -> float:
        return _common.median(times[mentor]) / _common.median(times[hand])

    pairs = [("student alone", "hand alone", "student alone (cross-entropy)"),
             ("KD, cached teacher", "hand cached", "KD, cached teacher logits"),
             ("KD, live teacher", "hand live", "KD, live teacher")]
    hand_rows = [[label, _common.spread(times[hand]), _common.spread(times[mentor]), f"{versus(mentor, hand):.3f}",
                  "met" if versus(mentor, hand) <= 1.0 else "missed"] for mentor, hand, label in pairs]
    hand_rows.append(["the teacher's logits over the training set, once", f"{hand_build:.3f}", f"{cache_build:.3f}",
                      f"{cache_build / hand_build:.3f}", ""])
    text += "\n\nAgainst hand-written loops (the same rounds):\n\n" + _common.table(
        ["training", "hand-written s: median (min-max)", "Mentor s: median (min-max)", "Mentor ÷ hand",
         "≤ 1.0"], hand_rows)
    print("\n" + text)
    if args.no_write:
        return
    command = _common.invocation("overhead", argv)
    body = _common.section_body(command, [
        f"Fashion-MNIST ({len(train):,} training samples), teacher cnn-medium, student cnn-small, batch "
        f"{args.batch_size}, KD τ=4 α=0.9, Adam; one epoch per variant and round, {args.repeats} rounds "
        f"interleaved after {args.warmup} warm-up, medians. Epoch time is the loop's own (no evaluation).",
        "",
        text,
        "",
        "The teacher-forward share is the time of the teacher's forward passes over one epoch divided by the "
        "student-alone epoch; a live teacher costs at least 1 + share, hence the target. "
        f"Memory: the cache entry takes {cache_mb:.1f} MB on disk (memory-mapped, read by index); the whole "
        f"benchmark process peaked at {_common.peak_rss_mb():.0f} MB RSS.",
    ])
    _common.write_section("overhead", "Distillation overhead per epoch", body)
    print(f"\nwritten to {_common.BENCHMARKS_MD}")


if __name__ == "__main__":
    main()
