"""What the training loop itself costs per step, against a hand-written loop (``mentor bench step_cost``).

The models are a single linear layer (784 -> 10, 7,850 parameters), so that a step's arithmetic takes a few
hundred microseconds and whatever ``mentor.engine.fit`` does beyond a hand-written loop (batching, the scheme
and objective calls, the finiteness check, the logged sums) is a visible share of it. Two trainings, each as
``fit`` and as the hand-written loop of ``mentor bench overhead`` (both timed by that benchmark's functions), on
the same batches (Mentor's epoch order, the last partial batch dropped), one thread, interleaved round after
round in this one process:

* the student alone, cross-entropy, Adam;
* KD (τ = 4, α = 0.9) from a live teacher of the same shape, Adam.

Per step: the loop's own epoch time (for ``fit``, the ``seconds`` of its epoch record, without its set-up and
evaluation) divided by the steps of the epoch. The difference, in microseconds, is the loop's cost per step;
on a real model it is to be set against that model's step time (the overhead table's epochs).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
from overhead import epoch_seconds, hand_epoch  # noqa: E402

from mentor.data import ArrayDataset  # noqa: E402
from mentor.knowledge import create as knowledge  # noqa: E402
from mentor.losses import CE, Objective  # noqa: E402

BATCH = 128


def linear(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="mentor bench step_cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000, help="steps per epoch (default 1000)")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds (default 7)")
    parser.add_argument("--no-write", action="store_true", help="print the table only; leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    size = args.steps * BATCH
    data = ArrayDataset(torch.randn(size, 1, 28, 28, generator=generator),
                        torch.randint(0, 10, (size,), generator=generator))
    teacher = linear(0).eval()
    student, kd = linear(1), knowledge("kd", temperature=4.0, alpha=0.9)
    measures: dict[str, Callable[[], float]] = {
        "alone, hand": lambda: hand_epoch(student, data, BATCH, 0),
        "alone, Mentor": lambda: epoch_seconds(student, data, Objective(CE()), None, BATCH, cache=False),
        "KD, hand": lambda: hand_epoch(student, data, BATCH, 0, teacher=teacher),
        "KD, Mentor": lambda: epoch_seconds(student, data, kd, teacher, BATCH, cache=False)}
    times = _common.interleaved(measures, args.repeats)
    rows = []
    for label, name in (("student alone (cross-entropy)", "alone"), ("KD, live teacher", "KD")):
        hand = [1e6 * s / args.steps for s in times[f"{name}, hand"]]
        mentor = [1e6 * s / args.steps for s in times[f"{name}, Mentor"]]
        difference = _common.median(mentor) - _common.median(hand)
        rows.append([label, _common.spread(hand, digits=1), _common.spread(mentor, digits=1), f"{difference:+.1f}",
                     f"{_common.median(mentor) / _common.median(hand):.3f}"])
    text = _common.table(["training", "hand-written µs/step: median (min-max)", "Mentor µs/step: median (min-max)",
                          "Mentor − hand, µs/step", "Mentor ÷ hand"], rows)
    print("\n" + text)
    if args.no_write:
        return
    body = _common.section_body(_common.invocation("step_cost", argv), [
        f"A linear student and teacher (784 -> 10), random data, batch {BATCH}, {args.steps:,} steps per epoch, "
        f"Adam, one thread; KD τ=4 α=0.9; the same batches for both loops; {args.repeats} rounds "
        "interleaved after 1 warm-up, medians. Per step: the loop's own epoch time (without set-up) ÷ steps.",
        "", text])
    _common.write_section("step_cost", "The loop's own cost per step", body)
    print(f"\nwritten to {_common.BENCHMARKS_MD}")


if __name__ == "__main__":
    main()
