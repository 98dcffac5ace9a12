"""Online and self-learning schemes (survey §5) against independent training, on Fashion-MNIST.

    mentor bench schemes [--budget-minutes 45] [--schemes dml,byot] [--seeds 0,1,2] [--out DIR]

Every scheme runs its built-in recipe as ``mentor run NAME`` (a child process, so the recipe machinery
is what is measured) with ``compare.independent`` on: the same peers are also trained alone, one after
the other, and their plain ensemble is measured. All schemes share the data subset, epochs, batch size,
optimizer and schedule. Those are chosen to fit the time budget: each scheme first runs once on a tiny
subset (one seed, two epochs) to measure its cost, then ``data.limit`` and ``train.epochs`` are solved
from a cost model (per-process start-up + per-seed overhead + seconds per trained sample-epoch).

Reported per scheme: test accuracy (mean ± std over seeds) of each of its predictors and of the peers
trained alone, its best single-model predictor against the best peer alone, its ensemble against the
plain ensemble of the peers alone, and its training time relative to the peers trained alone (from
the per-epoch training seconds of ``metrics.jsonl``, validation excluded: each model's or stage's
fastest epoch over all seeds × its epochs). The table is written into
BENCHMARKS.md between ``<!-- schemes:start -->`` and ``<!-- schemes:end -->``. With the default
45-minute budget on 2 CPU cores the whole run takes about 40 minutes (calibration about 4 of them).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STARTED = time.perf_counter()  # the budget counts from here: torch, mentor and the recipes load after it
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    BENCHMARKS_MD,
    Child,
    invocation,
    run_children,
    section_body,
    table,
    write_section,
)

from mentor.recipes import builtin_recipes, load_recipe  # noqa: E402
from mentor.report import mean_std  # noqa: E402
from mentor.schemes import SCHEMES  # noqa: E402

ORDER = ["dml", "one", "ffl", "pcl", "okddip", "kdcl", "afd", "mcl", "afi",  # online
         "tfkd-self", "tfkd-virtual", "byot", "born-again", "oskd", "pseudo-labels"]  # self-learning
SHARED = {"data.name": "fashion-mnist", "data.validation": 0.1, "train.batch_size": 128,
          "train.optimizer.name": "adam", "train.optimizer.lr": 0.003, "train.scheduler.name": "cosine",
          "compare.independent": "true",
          "latency_batch": 1}  # inference latency is not reported here: keep its timing off the budget
VALIDATION = 0.1
FULL_TRAIN = 60_000  # Fashion-MNIST training images; a larger limit changes nothing
CALIBRATION = {"limit": 500, "epochs": 2}
MIN_LIMIT, MAX_EPOCHS = 300, 30
SAFETY = 0.85  # share of the remaining budget the plan fills (the machine is shared; timings drift)
ALONE = re.compile(r"^peer\d+-alone$")
COMBINED = ("ensemble", "fused", "interacted")  # predictors made of several networks
BASELINE_PREDICTORS = {"pretrained"}  # tfkd-self's teacher is a peer trained alone, not the scheme's product
NOTES = {"pseudo-labels": "semi-supervised: the scheme sees 10% of the labels, the peer alone all of them",
         "tfkd-self": "`pretrained` is the teacher trained alone (not counted as the scheme's best peer)",
         "mean-teacher": "semi-supervised: the scheme and the peer alone see the same 100 labels (the peer "
                         "nothing else); `mentor bench semi` compares them at 1,000 labels"}


@dataclass
class Cost:
    """What one scheme's `mentor run` costs: process start, per-seed overhead, training per sample-epoch."""

    startup: float
    per_seed: float
    per_sample_epoch: float


@dataclass
class Outcome:
    """One finished `mentor run` of a scheme and its independent baseline."""

    name: str
    returncode: int
    wall: float
    inside: float = 0.0  # seconds of the run itself (summary.json), start-up excluded
    models: dict[str, Any] = field(default_factory=dict)
    scheme_seconds: float = 0.0  # training time of one seed's run of the scheme, all stages
    alone_seconds: float = 0.0  # the same for training every peer alone
    error: str = ""


def scheme_recipes() -> list[str]:
    """Built-in recipes that run a scheme: the known order first, then any newer ones."""
    found = [name for name in builtin_recipes() if load_recipe(name).scheme is not None]
    return [name for name in ORDER if name in found] + sorted(set(found) - set(ORDER))


def run_command(name: str, out: Path, seeds: list[int], limit: int, epochs: int) -> list[str]:
    """``mentor run NAME`` with the shared settings."""
    settings = {**SHARED, "seeds": f"[{','.join(map(str, seeds))}]", "data.limit": limit, "train.epochs": epochs}
    command = [sys.executable, "-m", "mentor", "run", name, "--out", str(out), "--quiet", "--force"]
    for key, value in settings.items():
        command += ["--set", f"{key}={value}"]
    return command


def mentor_runs(runs: list[tuple[str, Path]], seeds: list[int], limit: int, epochs: int, jobs: int,
                threads: int | None = None) -> list[Outcome]:
    """The ``mentor run`` of every ``(recipe, out)``, ``jobs`` at a time; their summaries and training seconds."""
    commands = [run_command(name, out, seeds, limit, epochs) for name, out in runs]
    children = run_children(commands, jobs, threads)
    return [outcome(name, out, command, child, seeds)
            for (name, out), command, child in zip(runs, commands, children, strict=True)]


def mentor_run(name: str, out: Path, seeds: list[int], limit: int, epochs: int) -> Outcome:
    """One ``mentor run NAME`` on its own (all threads)."""
    return mentor_runs([(name, out)], seeds, limit, epochs, 1)[0]


def outcome(name: str, out: Path, command: list[str], child: Child, seeds: list[int]) -> Outcome:
    """What a finished run reports; its output goes to ``OUT.log``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    log = out.parent / f"{out.name}.log"
    log.write_text(" ".join(command) + "\n" + child.stdout + child.stderr, encoding="utf-8")
    outcome = Outcome(name, child.returncode, child.seconds)
    if child.returncode != 0:
        outcome.error = (child.stderr or child.stdout).strip().splitlines()[-1][:200]
        return outcome
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    outcome.models, outcome.inside = summary["models"], summary["seconds"]
    paces: dict[tuple[str, str], list[float]] = {}
    for record in read_metrics(out / "metrics.jsonl"):
        paces.setdefault((record["run"], record["stage"]), []).append(record["seconds"])
    for (run, _), seconds in paces.items():
        # fastest epoch (over all seeds) x epochs per seed: other work on the machine only ever adds time,
        # so the fastest epoch is the closest to the model's own cost (and leaves out one-off start-up)
        per_seed = min(seconds) * len(seconds) / len(seeds)
        if ALONE.match(run):
            outcome.alone_seconds += per_seed
        else:
            outcome.scheme_seconds += per_seed
    return outcome


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The per-epoch records of a run directory (every run name: the scheme's stages and the peers alone)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def calibrate(name: str, out: Path) -> Cost | Outcome:
    """Cost of one scheme from a tiny one-seed run; the failed outcome when the run fails."""
    limit, epochs = CALIBRATION["limit"], CALIBRATION["epochs"]
    outcome = mentor_run(name, out, [0], limit, epochs)
    if outcome.returncode != 0:
        return outcome
    paces: dict[tuple[str, str], list[float]] = {}
    for record in read_metrics(out / "metrics.jsonl"):
        paces.setdefault((record["run"], record["stage"]), []).append(record["seconds"])
    # the process's first epoch carries one-off start-up work (allocator, kernels): leave it out of the pace
    first = next(iter(paces), None)
    steady = sum(statistics.fmean(seconds[1:] if key == first and len(seconds) > 1 else seconds) * len(seconds)
                 for key, seconds in paces.items())
    return Cost(startup=max(outcome.wall - outcome.inside, 0.0), per_seed=max(outcome.inside - steady, 0.0),
                per_sample_epoch=steady / (epochs * trained_samples(limit)))


def trained_samples(limit: int) -> int:
    """Training samples left by ``data.limit`` once the validation part is held out."""
    return min(limit, FULL_TRAIN) - round(min(limit, FULL_TRAIN) * VALIDATION)


def evaluation_share(epochs: int) -> float:
    """Evaluation time as a share of training: validation every epoch, the test set once per seed."""
    return 0.1 + 0.75 / epochs


def estimate(costs: dict[str, Cost], seeds: int, limit: int, epochs: int) -> float:
    """Seconds of the whole table at these settings."""
    pace = sum(cost.per_sample_epoch for cost in costs.values()) * (1 + evaluation_share(epochs))
    fixed = sum(cost.startup + seeds * cost.per_seed for cost in costs.values())
    return fixed + seeds * epochs * trained_samples(limit) * pace


def plan(costs: dict[str, Cost], seeds: int, seconds: float, limit: int | None,
         epochs: int | None) -> tuple[int, int]:
    """``(data.limit, train.epochs)`` filling ``seconds``: more data first, epochs ~ sqrt(sample-epochs)."""
    def largest_limit(epochs: int) -> int:
        low, high = 1, FULL_TRAIN
        while low < high:  # estimate() grows with the limit: bisect the largest one that fits
            middle = (low + high + 1) // 2
            low, high = (middle, high) if estimate(costs, seeds, middle, epochs) <= seconds else (low, middle - 1)
        return low

    if epochs is None and limit is not None:
        epochs = max((e for e in range(1, MAX_EPOCHS + 1) if estimate(costs, seeds, limit, e) <= seconds), default=1)
    if epochs is None:
        epochs = min(max(round(math.sqrt(largest_limit(1) / 400)), 1), MAX_EPOCHS)
        while epochs < MAX_EPOCHS and largest_limit(epochs + 1) >= FULL_TRAIN:
            epochs += 1  # the whole training set fits: spend the rest on epochs
    if limit is None:
        found = largest_limit(epochs)
        limit = max(found - found % (100 if found >= 1000 else 50), MIN_LIMIT)
    return limit, epochs


def accuracy(entry: dict[str, Any]) -> str:
    return mean_std(entry["accuracy"], scale=100.0)


def predictors(models: dict[str, Any], alone: bool) -> dict[str, dict[str, Any]]:
    """``{predictor: summary entry}`` of the scheme's models, or (``alone``) of the peers trained alone and
    their plain ensemble (named ``peer0 alone``, ``ensemble alone``)."""
    return {role.removesuffix(" alone"): entry for role, entry in models.items()
            if role.endswith(" alone") == alone}


def best_single(entries: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]] | None:
    """The single-network predictor with the best mean accuracy (ensembles and baselines left out)."""
    single = {name: entry for name, entry in entries.items()
              if not name.startswith(COMBINED) and name not in BASELINE_PREDICTORS}
    return max(single.items(), key=lambda item: item[1]["accuracy_mean"]) if single else None


def versus(ours: dict[str, Any] | None, theirs: dict[str, Any] | None, label: str = "") -> str:
    """``ours vs theirs: gain``, marked when the gain exceeds the seeds' spread √(std² + std²)."""
    if ours is None or theirs is None:
        return "—"
    gain = 100 * (ours["accuracy_mean"] - theirs["accuracy_mean"])
    spread = 100 * math.hypot(ours.get("accuracy_std", 0.0), theirs.get("accuracy_std", 0.0))
    mark = " (beyond spread)" if gain > spread > 0 else ""
    return (f"{100 * ours['accuracy_mean']:.2f}{label} vs {100 * theirs['accuracy_mean']:.2f}: "
            f"**{gain:+.2f}**{mark}")


def time_ratio(outcome: Outcome) -> str:
    if outcome.alone_seconds <= 0:
        return "—"
    ratio = outcome.scheme_seconds / outcome.alone_seconds
    return f"{ratio:.2f}× ({outcome.scheme_seconds:.1f} s / {outcome.alone_seconds:.1f} s)"


def peers_of(name: str) -> str:
    """The recipe's peers, e.g. ``2× cnn-small`` or ``cnn-small, cnn[8, 16]``."""
    labels = [peer.model + (str(list(peer.options.get("channels", []))) if peer.options else "")
              for peer in load_recipe(name).peers or []]
    groups: list[list[str]] = []
    for label in labels:
        if groups and groups[-1][0] == label:
            groups[-1].append(label)
        else:
            groups.append([label])
    return ", ".join(f"{len(g)}× {g[0]}" if len(g) > 1 else g[0] for g in groups)


def row(outcome: Outcome, papers: dict[str, str]) -> tuple[list[str], list[str]]:
    """A table row and its warnings."""
    scheme = load_recipe(outcome.name).scheme
    scheme_name = scheme.name if scheme else outcome.name
    head = [f"`{outcome.name}`", papers.get(scheme_name, ""), peers_of(outcome.name)]
    if outcome.returncode != 0:
        return head + [f"failed: {outcome.error}", "—", "—", "—", "—"], []
    ours, alone = predictors(outcome.models, alone=False), predictors(outcome.models, alone=True)
    best, best_alone = best_single(ours), best_single(alone)
    ensemble, plain = ours.get("ensemble"), alone.get("ensemble")
    warnings = []
    peers = [entry["accuracy"] for key, entry in alone.items() if key != "ensemble"]
    if len(peers) > 1 and all(accuracies == peers[0] for accuracies in peers) and len(set(
            entry["parameters"] for key, entry in alone.items() if key != "ensemble")) == 1:
        warnings.append(f"`{outcome.name}`: the peers trained alone came out identical (same initial weights), "
                        "so the independent ensemble is one peer")
    if outcome.name in NOTES:
        warnings.append(f"`{outcome.name}`: {NOTES[outcome.name]}")
    return head + [
        "<br>".join(f"{key} {accuracy(entry)}" for key, entry in ours.items()),
        "<br>".join(f"{key} {accuracy(entry)}" for key, entry in alone.items()),
        versus(best[1] if best else None, best_alone[1] if best_alone else None, f" ({best[0]})" if best else ""),
        versus(ensemble, plain),
        time_ratio(outcome),
    ], warnings


def report(outcomes: list[Outcome], settings: list[str], argv: list[str], path: Path) -> None:
    """Write the section of BENCHMARKS.md."""
    papers = {entry.name: entry.summary for entry in SCHEMES}
    rows, warnings = [], []
    for outcome in outcomes:
        cells, notes = row(outcome, papers)
        rows.append(cells)
        warnings += notes
    header = ["scheme", "paper", "peers", "scheme's predictors: test acc. %", "peers alone: test acc. %",
              "best single network: scheme vs alone (gain, points)", "ensemble: scheme vs plain (gain)",
              "training time vs alone"]
    lines = [*settings, "", table(header, rows), "",
             "Accuracy: mean ± std over the seeds, in %. *Best single network*: the best of the scheme's "
             "predictors that are one network (not `ensemble`, `fused`, `interacted*`) against the best peer "
             "trained alone; *beyond spread*: the gain exceeds √(std² + std_alone²) of the seeds. "
             "*Training time*: training seconds of the scheme (all its stages) over those "
             "of training the same peers alone one after the other, in the same process (for each model or stage, its "
             "fastest epoch over all seeds × its epochs, from the per-epoch `seconds` of `metrics.jsonl`, "
             "validation excluded: other work on a shared machine only adds time); the seconds per seed in "
             "brackets. Phased schemes train several models in turn "
             "(born-again: 3 generations, tfkd-self: teacher then student) and single-network schemes "
             "compare with one network alone, so a ratio above 1 is expected there.",
             "",
             "These numbers are from one run on a shared machine: timings drift with the machine's load, "
             "and the small subset and few epochs the budget allows make gains of a few tenths of a point "
             "indistinguishable from seed noise.",
             *(["", "Notes:", *(f"- {warning}" for warning in warnings)] if warnings else [])]
    write_section("schemes", "Online and self-learning schemes vs independent training",
                  section_body(invocation("schemes", argv), lines), path)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mentor bench schemes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget-minutes", type=float, default=45.0, help="the whole table's wall time (default 45)")
    parser.add_argument("--schemes", help="comma-separated built-in scheme recipes (default: all)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--out", default="runs/bench-schemes", help="folder for the run directories and logs")
    parser.add_argument("--limit", type=int, help="fix data.limit instead of fitting it to the budget")
    parser.add_argument("--epochs", type=int, help="fix train.epochs instead of fitting it to the budget")
    parser.add_argument("--markdown", type=Path, default=BENCHMARKS_MD, help="file to write (default BENCHMARKS.md)")
    parser.add_argument("--dry-run", action="store_true", help="calibrate and print the plan; train nothing more")
    parser.add_argument("--jobs", type=int, default=1, help="schemes run at a time, one thread each when > 1")
    args = parser.parse_args(argv)
    available = scheme_recipes()
    args.names = args.schemes.split(",") if args.schemes else available
    unknown = [name for name in args.names if name not in available]
    if unknown:
        parser.error(f"unknown scheme recipe(s) {', '.join(unknown)}; valid: {', '.join(available)}")
    try:
        args.seed_list = [int(seed) for seed in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds must be comma-separated integers, e.g. 0,1,2; got {args.seeds!r}")
    if args.budget_minutes <= 0 or any(v is not None and v < 1 for v in (args.limit, args.epochs)):
        parser.error("--budget-minutes, --limit and --epochs must be positive")
    return args


def choose(args: argparse.Namespace, out: Path) -> tuple[int, int, dict[str, Cost], dict[str, Outcome]]:
    """``(data.limit, train.epochs)`` from the command line or from calibration; the costs; failed schemes."""
    if args.limit is not None and args.epochs is not None:
        return args.limit, args.epochs, {}, {}
    costs: dict[str, Cost] = {}
    failed: dict[str, Outcome] = {}
    for name in args.names:
        cost = calibrate(name, out / "calibration" / name)
        if isinstance(cost, Outcome):
            failed[name] = cost
            print(f"calibration of {name} FAILED (see {out / 'calibration' / name}.log): {cost.error}", flush=True)
            continue
        costs[name] = cost
        print(f"calibrated {name}: start {cost.startup:.1f} s, per seed {cost.per_seed:.1f} s, "
              f"{1000 * cost.per_sample_epoch:.2f} ms per training sample-epoch", flush=True)
    if not costs:
        raise SystemExit("every scheme failed its calibration run; see the logs under " + str(out / "calibration"))
    left = 60 * args.budget_minutes - (time.perf_counter() - STARTED)
    limit, epochs = plan(costs, len(args.seed_list), SAFETY * left, args.limit, args.epochs)
    expected = estimate(costs, len(args.seed_list), limit, epochs)
    print(f"plan: data.limit={limit}, train.epochs={epochs}: about {expected / 60:.1f} min for the table "
          f"({left / 60:.1f} min of the budget left after calibration)", flush=True)
    if expected > left:
        print("warning: even the smallest settings exceed the budget; raise --budget-minutes", flush=True)
    return limit, epochs, costs, failed


def main(argv: list[str]) -> None:
    args = parse(argv)
    out = Path(args.out)
    limit, epochs, costs, failed = choose(args, out)
    calibration = time.perf_counter() - STARTED
    if args.dry_run:
        return
    todo = [(name, out / name) for name in args.names if name not in failed]
    done = dict(zip((name for name, _ in todo), mentor_runs(todo, args.seed_list, limit, epochs, args.jobs,
                                                             threads=1 if args.jobs > 1 else None), strict=True))
    outcomes = [failed.get(name) or done[name] for name in args.names]
    for result in outcomes:
        state = "done" if result.returncode == 0 else f"FAILED ({result.error})"
        print(f"{result.name}: {state} in {result.wall:.0f} s", flush=True)
    total = time.perf_counter() - STARTED
    test = min(limit, 10_000)
    settings = [
        f"Settings, identical for every scheme and its peers alone: Fashion-MNIST, the first {limit:,} training "
        f"images ({trained_samples(limit):,} trained on, {VALIDATION:.0%} held out for model selection) and the "
        f"first {test:,} test images; {epochs} epochs; batch 128; Adam, lr 0.003, cosine schedule; "
        f"seeds {args.seeds}. "
        + (f"Limit and epochs given on the command line (whole run {total / 60:.1f} min)."
           if args.limit and args.epochs else
           f"Limit and epochs chosen by the script from a calibration run of each scheme to fit a "
           f"{args.budget_minutes:g}-minute budget (calibration {calibration / 60:.1f} min, "
           f"whole run {total / 60:.1f} min)."),
    ]
    report(outcomes, settings, argv, args.markdown)
    print(f"wrote the schemes section of {args.markdown} ({total / 60:.1f} min)")


if __name__ == "__main__":
    main(sys.argv[1:])
