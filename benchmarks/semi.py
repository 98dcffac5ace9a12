"""Semi-supervised learning with a mean teacher against the same student trained on its labelled samples alone.

    mentor bench semi [--budget-minutes 25] [--labels 1000] [--weights 1,10,100] [--shares 0.25]
                      [--channels 16,32] [--seeds 0,1,2] [--dataset fashion-mnist] [--limit N] [--epochs E]
                      [--jobs 1] [--device cpu] [--out DIR] [--dry-run]

Tarvainen & Valpola (2017), mean teacher (the ``mean-teacher`` scheme). On Fashion-MNIST (or MNIST) only
``--labels`` training images keep their label (class-balanced), the rest of the training subset is
unlabelled. Every run is the built-in recipe ``mean-teacher`` as ``mentor run`` (a child process), with
the settings below shared by the scheme and its baseline: batch 128, Adam lr 0.003, cosine schedule, the
paper's input noise (a random shift by up to 2 pixels, Gaussian noise 0.15) and a share of labelled samples
per batch (the paper's 0.25 unless ``--shares`` offers others); the student is a CNN with the stage widths
``--channels`` (the default 16,32 is ``cnn-small``). The baseline is ``compare.independent``: the same
student from the same initial weights trained on the labelled samples only (repeated to as many steps per
epoch), with the same noise.

1. Calibration (unless ``--limit`` is given): one seed on a 2,000-image subset, two epochs, scheme and
   baseline, measures seconds per trained sample-epoch (the fastest epoch); ``data.limit`` is then the
   largest subset whose whole run fits the budget.
2. Selection: one run per consistency weight of ``--weights`` and labelled share of ``--shares`` (seed 0, no
   baseline); the pair whose mean teacher reaches the best validation accuracy is kept (a single pair is used
   as given). The validation split (5 % of the subset) is labelled: it selects the pair here and the best
   epoch of every run, the baseline's included.
3. Comparison: one run per seed s with ``scheme.params.seed = s`` (a different labelled subset per seed) and
   the baseline. Reported: test accuracy, mean ± std over the seeds, of the mean teacher, its student and
   the baseline, and each gain over the baseline, marked *beyond spread* when it exceeds √(std² + std_b²).

``--jobs`` runs the selection's and the comparison's runs that many at a time.

The table goes into BENCHMARKS.md between ``<!-- semi:start -->`` and ``<!-- semi:end -->``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

STARTED = time.perf_counter()  # the budget counts from here
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    BENCHMARKS_MD,
    gain_and_spread,
    invocation,
    paired_gain,
    percent,
    run_children,
    section_body,
    table,
    write_section,
)

import mentor.models  # noqa: E402

VALIDATION = 0.05
SHARED = {"data.validation": VALIDATION, "train.batch_size": 128, "train.optimizer.name": "adam",
          "train.optimizer.lr": 0.003, "train.scheduler.name": "cosine", "scheme.params.shift": 2,
          "scheme.params.noise": 0.15, "latency_batch": 1}
FULL_TRAIN = 60_000  # Fashion-MNIST and MNIST training images
CALIBRATION = {"limit": 2_000, "epochs": 2}
SAFETY = 0.85  # share of the remaining budget the plan fills (the machine is shared; timings drift)
PREDICTORS = {"teacher": "mean teacher", "student": "its student", "peer0 alone": "labelled only (baseline)"}


def command(out: Path, settings: dict[str, Any]) -> list[str]:
    """``mentor run mean-teacher`` with the shared settings and ``settings``."""
    line = [sys.executable, "-m", "mentor", "run", "mean-teacher", "--out", str(out), "--quiet", "--force"]
    for key, value in {**SHARED, **settings}.items():
        line += ["--set", f"{key}={value}"]
    return line


Result = tuple[dict[str, Any], list[dict[str, Any]], float]
"""A finished run: its summary's models, its metrics records and its wall seconds."""


def run(out: Path, settings: dict[str, Any]) -> Result:
    """One child run (exit on failure)."""
    return run_all({out: settings}, jobs=1)[0]


def run_all(runs: dict[Path, dict[str, Any]], jobs: int) -> list[Result]:
    """Child runs, ``jobs`` at a time, in the order given (exit on the first failure)."""
    lines = [command(out, settings) for out, settings in runs.items()]
    for out in runs:
        out.parent.mkdir(parents=True, exist_ok=True)
    threads = None if jobs == 1 else max(1, (os.cpu_count() or 1) // jobs)  # parallel runs share the cores
    children = run_children(lines, jobs, threads)
    results = []
    for out, line, child in zip(runs, lines, children, strict=True):
        (out.parent / f"{out.name}.log").write_text(" ".join(line) + "\n" + child.stdout + child.stderr,
                                                    encoding="utf-8")
        child.check(f"mentor run mean-teacher ({out.name})")
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        records = [json.loads(row) for row in (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines() if row]
        results.append((summary["models"], records, child.seconds))
    return results


def trained_per_epoch(limit: int, labels: int, share: float = 0.25) -> int:
    """Samples per epoch of the scheme (and its baseline): the unlabelled ones plus the labelled ones repeated."""
    train = min(limit, FULL_TRAIN) - round(min(limit, FULL_TRAIN) * VALIDATION)
    unlabelled = max(train - labels, 0)
    return unlabelled + labels * max(1, round(share * unlabelled / ((1 - share) * labels)))


def calibrate(args: argparse.Namespace, out: Path) -> tuple[float, float, float]:
    """(start-up seconds of a run, scheme seconds and baseline seconds per trained sample-epoch)."""
    labels = min(args.labels, CALIBRATION["limit"] // 4)
    settings = {**student(args), "data.name": args.dataset, "data.limit": CALIBRATION["limit"],
                "train.epochs": CALIBRATION["epochs"], "seeds": "[0]", "scheme.params.labels": labels,
                "scheme.params.consistency": 10.0, "scheme.params.labelled_share": 0.25,
                "compare.independent": "true", "train.device": args.device}
    _, records, wall = run(out / "calibration", settings)
    samples = trained_per_epoch(CALIBRATION["limit"], labels)
    # the fastest epoch: the first carries one-off start-up work, and other work on the machine only adds time
    scheme = min(r["seconds"] for r in records if r["run"] == "mean-teacher") / samples
    alone = min(r["seconds"] for r in records if r["run"] == "peer0-alone") / samples
    return max(wall - (scheme + alone) * samples * CALIBRATION["epochs"] * 1.2, 0.0), scheme, alone


def plan(args: argparse.Namespace, costs: tuple[float, float, float], seconds: float) -> int:
    """The largest ``data.limit`` whose selection and comparison runs fit ``seconds``."""
    startup, scheme, alone = costs
    runs = len(args.pairs) + len(args.seeds)

    def estimate(limit: int) -> float:
        per_epoch = trained_per_epoch(limit, args.labels, max(args.shares))
        pace = len(args.pairs) * scheme + len(args.seeds) * (scheme + alone)
        return runs * startup + 1.2 * args.epochs * per_epoch * pace  # 1.2: validation and test

    low, high = args.labels * 2, FULL_TRAIN
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if estimate(middle) <= seconds else (low, middle - 1)
    if estimate(low) > seconds:
        print(f"warning: even data.limit={low} needs about {estimate(low) / 60:.0f} min, over the budget; "
              "raise --budget-minutes or lower --epochs", flush=True)
    return low - low % 100


Pair = tuple[float, float]
"""A configuration the selection chooses from: (consistency weight, labelled share)."""


def pair_settings(pair: Pair) -> dict[str, float]:
    """The recipe keys of a (consistency weight, labelled share) pair."""
    return {"scheme.params.consistency": pair[0], "scheme.params.labelled_share": pair[1]}


def describe(pair: Pair) -> str:
    return f"consistency {pair[0]:g}, labelled share {pair[1]:g}"


def student(args: argparse.Namespace) -> dict[str, str]:
    """The recipe keys of the student CNN (scheme and baseline alike)."""
    widths = ", ".join(map(str, args.channels))
    return {"peers.0.model": "cnn", "peers.0.options": f"{{channels: [{widths}]}}"}


def parameters(args: argparse.Namespace) -> str:
    """The student's parameter count, as words."""
    model = mentor.models.create("cnn", 10, (1, 28, 28), channels=args.channels)
    return f"{sum(p.numel() for p in model.parameters()):,} parameters"


def per_seed(ours: list[float], baseline: list[float]) -> str:
    """The paired reading: each seed's gain over its own baseline, then their mean ± std."""
    gains, mean, std = paired_gain(ours, baseline)
    return ", ".join(f"{g:+.2f}" for g in gains) + f" ({mean:+.2f} ± {std:.2f})"


def best_validation(records: list[dict[str, Any]]) -> float:
    """The mean teacher's best validation accuracy over the epochs (the weights a run keeps)."""
    return max(r["val/teacher/accuracy"] for r in records if r["run"] == "mean-teacher")


def gain(ours: list[float], baseline: list[float]) -> str:
    """Points gained over the baseline, marked when beyond the seeds' spread √(std² + std_b²)."""
    difference, spread = gain_and_spread(ours, baseline)
    return f"{difference:+.2f}" + (" (beyond spread)" if difference > spread > 0 else "")


def main(argv: list[str]) -> None:
    args = parse(argv)
    out = Path(args.out)
    limit = args.limit
    if limit is None:
        costs = calibrate(args, out)
        limit = plan(args, costs, SAFETY * (60 * args.budget_minutes - (time.perf_counter() - STARTED)))
        print(f"calibrated: {1000 * costs[1]:.2f} ms (scheme), {1000 * costs[2]:.2f} ms (baseline) per sample-epoch; "
              f"plan: data.limit={limit}", flush=True)
    if args.dry_run:
        return
    base = {**student(args), "data.name": args.dataset, "data.limit": limit, "train.epochs": args.epochs,
            "train.device": args.device, "scheme.params.labels": args.labels}
    chosen: dict[Pair, float] = {}
    if len(args.pairs) > 1:  # one pair given: nothing to choose
        selection = {out / f"weight{w:g}-share{s:g}": {**base, **pair_settings((w, s)), "seeds": "[0]",
                                                        "compare.independent": "false"} for w, s in args.pairs}
        for pair, (_, records, wall) in zip(args.pairs, run_all(selection, args.jobs), strict=True):
            chosen[pair] = best_validation(records)
            print(f"{describe(pair)}: validation {100 * chosen[pair]:.2f} % ({wall:.0f} s)", flush=True)
    pair = max(chosen, key=lambda p: chosen[p]) if chosen else args.pairs[0]
    accuracies: dict[str, list[float]] = {name: [] for name in PREDICTORS}
    comparison = {out / f"seed{seed}": {**base, **pair_settings(pair), "seeds": f"[{seed}]",
                                        "scheme.params.seed": seed, "compare.independent": "true"}
                  for seed in args.seeds}
    for seed, (models, _, wall) in zip(args.seeds, run_all(comparison, args.jobs), strict=True):
        for name in PREDICTORS:
            accuracies[name] += models[name]["accuracy"]
        print(f"seed {seed}: " + ", ".join(f"{n} {100 * models[n]['accuracy'][0]:.2f} %" for n in PREDICTORS)
              + f" ({wall:.0f} s)", flush=True)
    report(args, argv, limit, pair, chosen, accuracies)


def report(args: argparse.Namespace, argv: list[str], limit: int, pair: Pair, chosen: dict[Pair, float],
           accuracies: dict[str, list[float]]) -> None:
    baseline = accuracies["peer0 alone"]
    rows = [[f"`{name}` ({label})", percent(accuracies[name]), *(["—", "—"] if name == "peer0 alone" else
             [gain(accuracies[name], baseline), per_seed(accuracies[name], baseline)])]
            for name, label in PREDICTORS.items()]
    train = min(limit, FULL_TRAIN) - round(min(limit, FULL_TRAIN) * VALIDATION)
    minutes = (time.perf_counter() - STARTED) / 60
    lines = [
        f"Settings: {args.dataset}, the first {limit:,} training images ({train:,} trained on, of which "
        f"{args.labels:,} labelled, class-balanced, the rest unlabelled; {VALIDATION:.0%} held out, labelled, for "
        f"model selection) and the first {min(limit, 10_000):,} test images; "
        f"student: a CNN of stage widths {args.channels} ({parameters(args)}); "
        f"{args.epochs} epoch{'s' if args.epochs > 1 else ''} of "
        f"{trained_per_epoch(limit, args.labels, pair[1]):,} samples (the labelled "
        f"ones repeated to a share {pair[1]:g} of each epoch; the paper's batches hold 0.25); batch 128; Adam, lr "
        f"0.003, cosine schedule; input noise: shift ≤ 2 px and Gaussian 0.15 for the scheme and the baseline alike; a "
        f"different labelled subset per seed ({', '.join(map(str, args.seeds))}); device {args.device}. Whole run "
        f"{minutes:.1f} min.",
        "",
        ("Chosen on validation (mean teacher, seed 0): "
         + "; ".join(f"{describe(p)}: {100 * a:.2f} %" for p, a in chosen.items()) + f" → **{describe(pair)}**."
         if chosen else f"{describe(pair).capitalize()}: given (`--weights`, `--shares`), not chosen in this run."),
        "",
        table(["model", "test acc. % (mean ± std over seeds)", "gain over the baseline (points)",
               "per seed (paired): gains, mean ± std"], rows),
        "",
        "The baseline is the same student from the same initial weights trained on the labelled samples only "
        "(as many steps per epoch, same noise, epochs and optimizer). *Beyond spread*: the gain exceeds "
        "√(std² + std_baseline²) of the seeds. A seed's scheme and baseline share its labelled subset, validation "
        "split and initial weights, so the per-seed gains are the paired reading of the same runs.",
    ]
    write_section("semi", "Semi-supervised: mean teacher vs labelled samples only",
                  section_body(invocation("semi", argv), lines), args.markdown)
    print(f"wrote the semi section of {args.markdown} ({minutes:.1f} min)")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mentor bench semi", description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget-minutes", type=float, default=25.0, help="the whole run's wall time (default 25)")
    parser.add_argument("--labels", type=int, default=1000, help="labelled training images (default 1000)")
    parser.add_argument("--weights", default="1,10,100", help="consistency weights to choose from (default 1,10,100)")
    parser.add_argument("--shares", default="0.25", help="labelled shares of an epoch to choose from (default 0.25)")
    parser.add_argument("--channels", default="16,32", help="the student CNN's stage widths (default 16,32)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "mnist"])
    parser.add_argument("--limit", type=int, help="fix data.limit instead of fitting it to the budget")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs of every run (default 10)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (default 1)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"], help="where every run trains")
    parser.add_argument("--out", default="runs/bench-semi", help="folder for the run directories and logs")
    parser.add_argument("--dry-run", action="store_true", help="calibrate and print the plan; train nothing more")
    parser.add_argument("--markdown", type=Path, default=BENCHMARKS_MD, help="file to write (default BENCHMARKS.md)")
    args = parser.parse_args(argv)
    try:
        args.weights = [float(w) for w in args.weights.split(",")]
        args.shares = [float(s) for s in args.shares.split(",")]
        args.channels = [int(c) for c in args.channels.split(",")]
        args.seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--weights, --shares, --channels and --seeds must be comma-separated numbers; got "
                     f"{args.weights!r}, {args.shares!r}, {args.channels!r}, {args.seeds!r}")
    if args.budget_minutes <= 0 or args.epochs < 1 or args.jobs < 1 or args.labels < 10 or \
            (args.limit is not None and args.limit < 1):
        parser.error("--budget-minutes, --epochs, --jobs and --limit must be positive and --labels at least 10 (the "
                     "classes)")
    if any(w < 0 for w in args.weights):
        parser.error(f"--weights must be 0 or more; got {args.weights}")
    if any(not 0 < s < 1 for s in args.shares) or any(c < 1 for c in args.channels):
        parser.error(f"--shares must lie strictly between 0 and 1 and --channels be positive; got {args.shares}, "
                     f"{args.channels}")
    args.pairs = [(w, s) for w in args.weights for s in args.shares]
    return args


if __name__ == "__main__":
    main(sys.argv[1:])
