"""Every knowledge method that applies to the pair against the student trained alone, tuned on validation, 3 seeds.

    mentor bench knowledge [--epochs 20] [--seeds 0,1,2] [--methods kd,at] [--jobs 2] [--out DIR]
                           [--limit N] [--no-sweep crd,sskd]

The setting leaves room for distillation to show: Fashion-MNIST (54,000 training images, 6,000 held out
for validation, the 10,000 test images), a teacher CNN of 288k parameters trained once with ±2-pixel
jitter (≥ 93% test accuracy) and a student CNN of 6.3k parameters (1/46 of it) that, trained alone to
convergence, stays several points below it. Every run is a separate ``mentor run`` process; runs go
``--jobs`` at a time with one thread each.

Protocol, the same tuning budget for the baseline and for every method:

1. The student alone tries 3 learning rates (seed 0); the best on validation is every run's learning rate.
2. Each method tries 3 multipliers of its distillation weight, 1/4, 1 and 4 times its default (the
   paper's released-code value), seed 0; the best on validation is kept. The test set is never looked at.
   Where the best lies on the grid's edge, one more value past it is tried (half the lowest or twice the
   highest learning rate; a quarter of 1/4 or four times 4 the weight), the same rule for both.
   Methods named in ``--no-sweep`` (the costly ones, when time is short) keep their default weight.
3. The chosen configurations (and the student alone) run with the other seeds; seed 0's run is the
   sweep's. A seed fixes the validation split, the student's initial weights and the batch order, so
   the student alone and each method start from the same weights.

Reported: test accuracy mean ± std over seeds, the gain over the student alone and whether it exceeds
the seeds' spread (gain > √(std_method² + std_alone²)), the epoch time relative to the student alone,
and the sweep (validation accuracy of each configuration). Written into BENCHMARKS.md between
``<!-- knowledge:start -->`` / ``<!-- knowledge:end -->`` and ``<!-- knowledge-sweep:start -->`` /
``<!-- knowledge-sweep:end -->``. Finished runs are kept in ``--out`` and reused, so an interrupted
benchmark continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

from mentor.knowledge import KNOWLEDGE  # noqa: E402
from mentor.report import mean_std  # noqa: E402

TEACHER = {"model": "cnn", "options": {"channels": [32, 64, 128], "depth": 2}}
STUDENT = {"model": "cnn", "options": {"channels": [8, 16, 32], "depth": 1}}
TEACHER_TRAIN = {"epochs": 30, "batch_size": 128, "jitter": 2, "scheduler": {"name": "cosine"},
                 "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4}}
LEARNING_RATES = [0.02, 0.05, 0.1]
MULTIPLIERS = [0.25, 1.0, 4.0]
LAYERS = ["stage1", "stage2", "stage3"]
FIRST_STAGE = 2  # epochs of a multi-stage method's first stage (hint, init, paraphraser, head)
PARAMS: dict[str, dict[str, Any]] = {
    "kd": {"temperature": 4.0, "alpha": 0.9},
    "logit_mse": {},
    "dkd": {},
    "fitnet": {"hint": "stage2", "guided": "stage2", "hint_epochs": FIRST_STAGE},
    "at": {"student": LAYERS, "teacher": LAYERS},
    "ft": {"student": "stage3", "teacher": "stage3", "paraphraser_epochs": FIRST_STAGE},
    "ab": {"student": ["stage2.relu1:input", "stage3.relu1:input"],
           "teacher": ["stage2.relu2:input", "stage3.relu2:input"], "init_epochs": FIRST_STAGE},
    "rkd": {}, "darkrank": {}, "cc": {}, "pkt": {},
    "sp": {"student_layers": ["stage3"], "teacher_layers": ["stage3"]},
    "nst": {"student_layer": "stage3", "teacher_layer": "stage3"},
    "vid": {"student_layers": ["stage2", "stage3"], "teacher_layers": ["stage2", "stage3"]},
    "crd": {"negatives": 4096},
    "sskd": {"head_epochs": FIRST_STAGE},
    "internal": {"layers": [{"student": "stage2", "teacher": "stage2"}, {"student": "stage3", "teacher": "stage3"}]},
    "adversarial": {},
    "general": {"ce": 0.1, "kl": {"temperature": 4.0, "weight": 0.9},
                "distances": [{"student": "stage3", "teacher": "stage3", "adapter": "conv1x1", "weight": 1.0}]},
}
NOT_APPLICABLE = {
    "fsp": "its FSP matrices (channels × channels between two layers) match only when the student's layers have "
           "the teacher's widths (the paper's pairs differ in depth); here they are 4× narrower",
}
ALONE = "student alone"
FAILED = _common.FAILED


def base_recipe(epochs: int) -> dict[str, Any]:
    return {
        "name": "bench-knowledge",
        "data": {"name": "fashion-mnist", "validation": 0.1},
        "teacher": {**TEACHER, "train": TEACHER_TRAIN},
        "student": STUDENT,
        "knowledge": {"method": "kd"},
        "train": {"epochs": epochs, "batch_size": 128, "scheduler": {"name": "cosine"},
                  "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4}},
        "compare": {"student_alone": False},
        "latency_batch": 1,
    }


class Bench:
    """The benchmark's runs: one `mentor run` child each, reused from ``out`` when already finished."""

    def __init__(self, out: Path, epochs: int, jobs: int, overrides: list[str]) -> None:
        self.out, self.jobs, self.overrides = out, jobs, overrides
        out.mkdir(parents=True, exist_ok=True)
        self.base = out / "base.yaml"
        self.base.write_text(yaml.safe_dump(base_recipe(epochs), sort_keys=False))

    def teacher(self) -> tuple[Path, float]:
        """The teacher's checkpoint (trained once, seed 0) and its test accuracy."""
        folder = self.out / "teacher"
        overrides = ["seeds=[0]", "train.epochs=1", "knowledge={method: general, params: {ce: 1.0}}"]
        self.run_all([(folder, overrides)])
        summary = json.loads((folder / "summary.json").read_text())
        return folder / "checkpoints" / "seed0" / "teacher" / "best.pt", summary["models"]["teacher"]["accuracy"][0]

    def run_all(self, runs: list[tuple[Path, list[str]]], sweep: bool = False) -> None:
        """Run what is not finished yet, ``jobs`` at a time, one thread each.

        In a ``sweep`` a configuration whose loss diverges is recorded (``FAILED`` in its folder) and
        scored as failed; anywhere else a failure stops the benchmark.
        """
        todo = [(folder, overrides) for folder, overrides in runs if not _common.finished(folder, overrides)]
        commands = []
        for folder, overrides in todo:
            command = [sys.executable, "-m", "mentor", "run", str(self.base), "--out", str(folder), "--quiet",
                       "--force"]
            for override in [*self.overrides, *overrides]:
                command += ["--set", override]
            commands.append(command)
        for child, (folder, _) in zip(_common.run_children(commands, self.jobs, threads=1), todo, strict=True):
            if sweep and child.returncode != 0 and "diverged" in child.stderr:
                (folder / FAILED).write_text(child.stderr.strip().splitlines()[-1] + "\n")
            else:
                child.check(f"run {folder.name}")
            print(f"  {folder.name}: {child.seconds:.0f} s{' (diverged)' if child.returncode else ''}", flush=True)


def distilled(folder: Path) -> dict[str, float]:
    """Test accuracy, best validation accuracy and median epoch seconds of a run's student (NaN if it diverged)."""
    if (folder / FAILED).is_file():
        return {"test": math.nan, "validation": math.nan, "seconds": math.nan}
    summary = json.loads((folder / "summary.json").read_text())
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines() if line.strip()]
    records = [r for r in records if r.get("run") == "student-distilled"]
    last_stage = records[-1]["stage"]
    validation = max(r["val/student/accuracy"] for r in records if r["stage"] == last_stage)
    return {"test": summary["models"]["student distilled"]["accuracy"][0], "validation": validation,
            "seconds": statistics.median(r["seconds"] for r in records)}


def past_edge(grid: list[float], best: float, step: float) -> list[float]:
    """One value past ``grid``'s edge when ``best`` lies on it (``best·step`` below, ``best/step`` above)."""
    if best == min(grid):
        return [best * step]
    if best == max(grid):
        return [best / step]
    return []


def knowledge_override(method: str, multiplier: float) -> str:
    return "knowledge=" + json.dumps({"method": method, "params": PARAMS[method], "weight": multiplier})


def main() -> None:
    parser = argparse.ArgumentParser(prog="mentor bench knowledge", description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=20, help="epochs of every student run")
    parser.add_argument("--seeds", default="0,1,2", help="the first seed is the sweep's")
    parser.add_argument("--methods", default=",".join(m for m in KNOWLEDGE.names() if m not in NOT_APPLICABLE))
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (one thread each)")
    parser.add_argument("--out", default="runs/bench-knowledge")
    parser.add_argument("--no-write", action="store_true", help="print the tables only")
    parser.add_argument("--limit", type=int, default=None,
                        help="train the students on the first N training images only (the teacher keeps all)")
    parser.add_argument("--no-sweep", default="", metavar="METHODS",
                        help="methods that keep their default weight, without the sweep (e.g. the costly crd,sskd)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a recipe override for every run, the teacher's included (e.g. data.limit=2000 to try "
                             "the benchmark out)")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = [m for m in args.methods.split(",") if m]
    if any(m in NOT_APPLICABLE for m in methods):
        raise SystemExit("; ".join(f"{m} does not apply to this pair: {NOT_APPLICABLE[m]}"
                                   for m in methods if m in NOT_APPLICABLE))
    missing = [m for m in methods if m not in PARAMS]
    if missing:
        raise SystemExit(f"no benchmark parameters for {missing}; add them to PARAMS")
    out = Path(args.out)
    bench = Bench(out, args.epochs, args.jobs, args.set)
    checkpoint, teacher_accuracy = bench.teacher()
    teacher_minutes = run_minutes([out / "teacher"])
    common = [f"teacher.checkpoint={checkpoint}", *([f"data.limit={args.limit}"] if args.limit else [])]
    alone = "knowledge={method: general, params: {ce: 1.0}}"

    # 1. the learning rate, tuned for the student alone on validation (one step further past an edge)
    lr_runs: dict[float, Path] = {}
    lr_scores: dict[float, float] = {}

    def try_rates(rates: list[float]) -> float:
        lr_runs.update({value: out / f"alone-lr{value}-seed{seeds[0]}" for value in rates})
        bench.run_all([(lr_runs[value], [*common, f"seeds=[{seeds[0]}]", f"train.optimizer.lr={value}", alone])
                       for value in rates])
        lr_scores.update({value: distilled(lr_runs[value])["validation"] for value in rates})
        return max(lr_scores, key=lambda value: (lr_scores[value], -value))

    lr = try_rates(LEARNING_RATES)
    lr = try_rates(past_edge(LEARNING_RATES, lr, 1 / 2))
    common.append(f"train.optimizer.lr={lr}")

    # 2. each method's weight multiplier, on validation (one step further past an edge)
    unswept = {m for m in args.no_sweep.split(",") if m}
    sweep_runs: dict[tuple[str, float], Path] = {}
    sweep: dict[tuple[str, float], dict[str, float]] = {}

    def try_multipliers(grids: dict[str, list[float]]) -> dict[str, float]:
        todo = {(m, k): out / f"{m}-x{k}-seed{seeds[0]}" for m, grid in grids.items() for k in grid}
        bench.run_all([(folder, [*common, f"seeds=[{seeds[0]}]", knowledge_override(m, k)])
                       for (m, k), folder in todo.items()], sweep=True)
        sweep_runs.update(todo)
        sweep.update({key: distilled(folder) for key, folder in todo.items()})
        score = {key: -1.0 if math.isnan(value["validation"]) else value["validation"]
                 for key, value in sweep.items()}
        return {m: max((k for (name, k) in sweep if name == m), key=lambda k, m=m: (score[m, k], k == 1.0))
                for m in methods}

    chosen = try_multipliers({m: [1.0] if m in unswept else MULTIPLIERS for m in methods})
    chosen = try_multipliers({m: past_edge(MULTIPLIERS, chosen[m], 1 / 4) for m in methods if m not in unswept})
    sweep_minutes = run_minutes([*lr_runs.values(), *sweep_runs.values()])

    # 3. the other seeds with the chosen configurations
    seed_runs: dict[str, list[Path]] = {ALONE: [lr_runs[lr]]}
    seed_runs.update({m: [sweep_runs[m, chosen[m]]] for m in methods})
    todo = []
    for seed in seeds[1:]:
        folder = out / f"alone-lr{lr}-seed{seed}"
        todo.append((folder, [*common, f"seeds=[{seed}]", alone]))
        seed_runs[ALONE].append(folder)
        for m in methods:
            folder = out / f"{m}-x{chosen[m]}-seed{seed}"
            todo.append((folder, [*common, f"seeds=[{seed}]", knowledge_override(m, chosen[m])]))
            seed_runs[m].append(folder)
    bench.run_all(todo)
    table_minutes = run_minutes([folder for folder, _ in todo])

    results = {name: [distilled(folder) for folder in folders] for name, folders in seed_runs.items()}
    write(args, seeds, lr, lr_scores, sweep, chosen, results, teacher_accuracy,
          (teacher_minutes, sweep_minutes, table_minutes))


def write(args: argparse.Namespace, seeds: list[int], lr: float, lr_scores: dict[float, float],
          sweep: dict[tuple[str, float], dict[str, float]], chosen: dict[str, float],
          results: dict[str, list[dict[str, float]]], teacher_accuracy: float,
          minutes: tuple[float, float, float]) -> None:
    alone = [r["test"] for r in results[ALONE]]
    alone_seconds = statistics.median(r["seconds"] for r in results[ALONE])
    papers = {entry.name: entry.summary for entry in KNOWLEDGE}
    rows = [["teacher", "", f"{100 * teacher_accuracy:.2f}", "", "", "", ""],
            [ALONE, "", mean_std(alone, 100), "", "", "1.00", f"lr {lr}"]]
    ranked = sorted((name for name in results if name != ALONE),
                    key=lambda name: -statistics.fmean(r["test"] for r in results[name]))
    beyond = 0
    for name in ranked:
        accuracy = [r["test"] for r in results[name]]
        gain = 100 * (statistics.fmean(accuracy) - statistics.fmean(alone))
        spread = 100 * math.hypot(_std(accuracy), _std(alone))
        significant = gain > spread
        beyond += significant
        ratio = statistics.median(r["seconds"] for r in results[name]) / alone_seconds
        rows.append([f"`{name}`", _authors(papers.get(name, "")), mean_std(accuracy, 100), f"{gain:+.2f}",
                     "yes" if significant else ("no" if gain > 0 else "—"), f"{ratio:.2f}", f"×{chosen[name]:g}"])
    header = ["method", "paper", f"test acc. % ({len(seeds)} seeds)", "gain", "beyond spread",
              "epoch time ×alone", "chosen"]
    teacher_minutes, sweep_minutes, table_minutes = minutes
    command = _common.invocation("knowledge")
    body = _common.section_body(command, [
        f"Fashion-MNIST: {_training_images(args.limit)} (10% held out for validation, drawn by the seed), the "
        f"{min(args.limit or 10_000, 10_000):,} test images; no augmentation for the students, so every method "
        f"reads its teacher's outputs from the cache. "
        f"Teacher `cnn` {TEACHER['options']} (288k parameters; SGD, ±2-pixel jitter, 30 epochs, "
        f"{teacher_minutes:.0f} min, reused when present); student `cnn` {STUDENT['options']} (6.3k parameters, "
        f"1/46 of the teacher). Every student: {args.epochs} epochs, batch 128, SGD with Nesterov momentum 0.9, "
        f"weight decay 5e-4, cosine schedule, learning rate {lr} (chosen for the student alone, below); "
        f"multi-stage methods spend {FIRST_STAGE} of the epochs on their first stage. Seeds {args.seeds}; "
        f"{args.jobs} runs at a time, one thread each; the runs' own times add up to {sweep_minutes:.0f} min for "
        f"the sweep and {table_minutes:.0f} min for the other seeds (wall time about 1/{args.jobs} of that).",
        "",
        _common.table(header, rows),
        "",
        f"**{beyond} of {len(ranked)} methods** gain more than the seeds' spread (gain > √(std² + std_alone²)). "
        "*chosen*: the multiplier of the method's default distillation weight picked on validation (seed 0)"
        + (f"; not swept (default weight): {args.no_sweep}." if args.no_sweep else ".")
        + "".join(f" Not run: `{m}`, {why}." for m, why in NOT_APPLICABLE.items()),
    ])
    tried = sorted({k for _, k in sweep})
    sweep_header = ["method", *(f"×{k:g}" for k in tried)]
    sweep_rows = []
    for name in sorted(chosen):
        cells = [_cell(sweep.get((name, k))) for k in tried]
        sweep_rows.append([f"`{name}`", *(f"**{cell}**" if k == chosen[name] else cell
                                          for k, cell in zip(tried, cells, strict=True))])
    sweep_body = "\n".join([
        "Validation accuracy % (best epoch, seed 0) of each configuration tried; bold: chosen. Student alone, "
        "learning rate " + ", ".join(f"{v:g}: {100 * lr_scores[v]:.2f}" for v in sorted(lr_scores))
        + f" (chosen: {lr:g}).",
        "", _common.table(sweep_header, sweep_rows)])
    print(body, "\n", sweep_body, sep="\n")
    if not args.no_write:
        _common.write_section("knowledge", "Knowledge methods (`mentor bench knowledge`)", body)
        _common.write_section("knowledge-sweep", "Knowledge methods: the validation sweep", sweep_body)


def _training_images(limit: int | None) -> str:
    return "all 60,000 training images" if limit is None else f"the first {limit:,} of the 60,000 training images"


def _authors(summary: str) -> str:
    """``Tian, Krishnan & Isola 2020`` of a registry summary (up to its first year), else its first clause."""
    match = re.match(r"([^(]*?\b(19|20)\d\d)\b", summary)
    return match.group(1) if match else summary.split(":")[0]


def run_minutes(folders: list[Path]) -> float:
    """The training time the finished runs in ``folders`` recorded (``summary.json``), in minutes."""
    return sum(json.loads((folder / "summary.json").read_text())["seconds"] for folder in folders
               if (folder / "summary.json").is_file()) / 60


def _cell(result: dict[str, float] | None) -> str:
    """A sweep table cell: validation accuracy %, "diverged", or "—" for a configuration not tried."""
    if result is None:
        return "—"
    return "diverged" if math.isnan(result["validation"]) else f"{100 * result['validation']:.2f}"


def _std(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


if __name__ == "__main__":
    main()
