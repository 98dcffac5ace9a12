"""Every registered knowledge method on one teacher -> student pair of CNNs on Fashion-MNIST.

    mentor bench knowledge [--limit 20000] [--epochs 5] [--teacher-epochs 6] [--seeds 0,1,2] [--methods kd,at]

For each seed a teacher is trained once; then the student is trained alone and with every method
(same data, epochs, optimizer and schedule), each run a separate `mentor run` process so that its
peak memory (max RSS) is its own. Reported: test accuracy mean ± std over seeds, the gain over the
student alone, the median epoch wall time relative to the student alone (teacher outputs come from the
teacher-output cache where a method only reads them), and peak memory. The table is written into
BENCHMARKS.md between the markers ``<!-- knowledge:start -->`` and ``<!-- knowledge:end -->``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

from mentor.knowledge import KNOWLEDGE
from mentor.report import mean_std, render

# teacher: 2 convs per stage, student: 1 conv per stage, same widths (the FitNets/FSP setting: a shallower student)
TEACHER = {"model": "cnn", "options": {"channels": [16, 32, 64], "depth": 2}}
STUDENT = {"model": "cnn", "options": {"channels": [16, 32, 64], "depth": 1}}
LAYERS = ["stage1", "stage2", "stage3"]
PARAMS: dict[str, dict[str, Any]] = {
    "kd": {"temperature": 4.0, "alpha": 0.9},
    "logit_mse": {"alpha": 0.5},
    "dkd": {"warmup": 1.0},
    "fitnet": {"hint": "stage2", "guided": "stage2", "hint_epochs": 1},
    "fsp": {"student": [["stage1.conv1:input", "stage1"], ["stage1", "stage2"]],
            "teacher": [["stage1.conv1:input", "stage1"], ["stage1", "stage2"]], "fsp_epochs": 1},
    "at": {"student": LAYERS, "teacher": LAYERS},
    "ft": {"student": "stage3", "teacher": "stage3", "paraphraser_epochs": 1},
    "ab": {"student": ["stage2.relu1:input", "stage3.relu1:input"],
           "teacher": ["stage2.relu2:input", "stage3.relu2:input"], "init_epochs": 1},
    "rkd": {}, "darkrank": {"variant": "soft", "list_size": 4}, "cc": {}, "pkt": {},
    "sp": {"student_layers": ["stage3"], "teacher_layers": ["stage3"]},
    "nst": {"student_layer": "stage3", "teacher_layer": "stage3"},
    "vid": {"student_layers": ["stage2", "stage3"], "teacher_layers": ["stage2", "stage3"]},
    "crd": {"feature_dim": 64, "negatives": 4096, "kd_weight": 0.9},
    "sskd": {"head_epochs": 1},
    "internal": {"layers": [{"student": "stage2", "teacher": "stage2"}, {"student": "stage3", "teacher": "stage3"}]},
    "adversarial": {},
    "general": {"ce": 0.1, "kl": {"temperature": 4.0, "weight": 0.9},
                "distances": [{"student": "stage3", "teacher": "stage3", "weight": 1.0}]},
}
ALONE = "student alone"


def recipe(args: argparse.Namespace) -> dict[str, Any]:
    train = {"epochs": args.epochs, "batch_size": 128, "optimizer": {"name": "adam", "lr": 0.003},
             "scheduler": {"name": "cosine"}}
    return {
        "name": "bench-knowledge",
        "data": {"name": "fashion-mnist", "validation": 0.1, "limit": args.limit},
        "teacher": {**TEACHER, "train": {**train, "epochs": args.teacher_epochs}},
        "student": STUDENT,
        "knowledge": {"method": "kd"},
        "train": train,
        "compare": {"student_alone": False},
    }


def run(base: Path, out: Path, overrides: list[str]) -> dict[str, Any]:
    """One `mentor run` process: its summary, metrics and peak resident memory."""
    command = [sys.executable, "-m", "mentor", "run", str(base), "--out", str(out), "--quiet", "--force"]
    for override in overrides:
        command += ["--set", override]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{process.stderr.read() if process.stderr else ''}")
    summary = json.loads((out / "summary.json").read_text())
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {"summary": summary, "records": records, "peak_mb": usage.ru_maxrss / 1024}


def student_row(result: dict[str, Any]) -> dict[str, float]:
    model = result["summary"]["models"]["student distilled"]
    seconds = [r["seconds"] for r in result["records"] if r["run"] == "student-distilled"]
    return {"accuracy": model["accuracy"][0], "epoch_seconds": statistics.median(seconds), "peak_mb": result["peak_mb"]}


def main() -> None:
    parser = argparse.ArgumentParser(prog="mentor bench knowledge", description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=20000, help="training samples taken from Fashion-MNIST")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--teacher-epochs", type=int, default=6)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--methods", default=",".join(KNOWLEDGE.names()))
    parser.add_argument("--out", default="runs/bench-knowledge")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = [m for m in args.methods.split(",") if m]
    missing = [m for m in methods if m not in PARAMS]
    if missing:
        raise SystemExit(f"no benchmark parameters for {missing}; add them to PARAMS")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = out / "base.yaml"
    base.write_text(yaml.safe_dump(recipe(args), sort_keys=False))
    started = time.perf_counter()
    rows: dict[str, list[dict[str, float]]] = {}
    teachers: list[float] = []
    for seed in seeds:
        trained = run(base, out / f"teacher-seed{seed}", [f"seeds=[{seed}]", "train.epochs=1"])
        teachers.append(trained["summary"]["models"]["teacher"]["accuracy"][0])
        checkpoint = out / f"teacher-seed{seed}" / "checkpoints" / f"seed{seed}" / "teacher" / "best.pt"
        common = [f"seeds=[{seed}]", f"teacher.checkpoint={checkpoint}"]
        alone = run(base, out / f"alone-seed{seed}", [*common, "knowledge={method: general, params: {ce: 1.0}}"])
        rows.setdefault(ALONE, []).append(student_row(alone))
        for method in methods:
            knowledge = json.dumps({"method": method, "params": PARAMS[method]})
            result = run(base, out / f"{method}-seed{seed}", [*common, f"knowledge={knowledge}"])
            rows.setdefault(method, []).append(student_row(result))
            print(f"seed {seed} {method}: {rows[method][-1]['accuracy']:.4f}", flush=True)
    minutes = (time.perf_counter() - started) / 60
    base_accuracy = statistics.fmean(r["accuracy"] for r in rows[ALONE])
    base_seconds = statistics.median(r["epoch_seconds"] for r in rows[ALONE])  # medians: robust to a busy moment
    papers = {entry.name: entry.summary for entry in KNOWLEDGE}
    table = [["teacher", "", mean_std(teachers, 100), "", "", ""]]
    for name, values in rows.items():
        accuracy = [r["accuracy"] for r in values]
        gain = 100 * (statistics.fmean(accuracy) - base_accuracy)
        ratio = statistics.median(r["epoch_seconds"] for r in values) / base_seconds
        paper = re.match(r".*?\b(?:19|20)\d{2}\b", papers.get(name, ""))  # authors and year
        table.append([name, paper.group(0) if paper else "", mean_std(accuracy, 100),
                      "" if name == ALONE else f"{gain:+.2f}", f"{ratio:.2f}",
                      f"{max(r['peak_mb'] for r in values):.0f}"])
    header = ["method", "paper", f"test accuracy % ({len(seeds)} seeds)", "gain vs alone", "epoch time ×alone",
              "peak MB"]
    text = render(header, table)
    print(text)
    command = "mentor bench knowledge " + " ".join(sys.argv[1:])
    markdown = (f"Command: `{command.strip()}` ({os.cpu_count()} CPU cores, {minutes:.0f} min in all).\n"
                f"Fashion-MNIST, {args.limit} training samples (10% of them for validation), full test set; teacher "
                f"{TEACHER['options']}, student {STUDENT['options']}; {args.epochs} epochs (multi-stage methods spend "
                f"1 of them on their first stage), Adam 3e-3, cosine schedule, batch 128; teacher "
                f"{args.teacher_epochs} epochs, one per seed.\n\n```\n" + text + "\n```")
    if not args.no_write:
        _common.write_section("knowledge", "Knowledge methods (`mentor bench knowledge`)", markdown)


if __name__ == "__main__":
    main()
