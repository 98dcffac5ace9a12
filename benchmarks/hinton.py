"""Hinton et al. 2015 on MNIST, reproduced by the built-in recipe ``hinton-mnist`` (``mentor bench hinton``).

Runs ``mentor run hinton-mnist`` (extra ``--set KEY=VALUE`` overrides are passed on), then reads the run's
``summary.json`` and ``metrics.jsonl`` and reports the test errors (out of the test set's images, 10,000
for full MNIST) of the teacher, the student alone and the distilled student beside the paper's numbers
(67, 146 and 74), the training time of each model, and the whole run's wall time and peak memory.
Targets: the distilled student makes at most 74 errors, and the whole recipe takes at most 60 minutes.

Hyper-parameters are chosen on validation, never on the test set: ``--tune "KEY=VALUE KEY=VALUE"``
(repeated, one configuration each) trains the teacher once on 50,000 training images, then the distilled
student of every configuration on the same 50,000, and reports each one's errors on the 10,000 held-out
training images after its last epoch (the recipe keeps the last weights); the section ``hinton-sweep`` of
BENCHMARKS.md records them. Runs finished earlier in ``--out``-tune with the same values are reused. The chosen
configuration then runs on all 60,000 with ``--set``.

A teacher loaded with ``--set teacher.checkpoint=RUN/checkpoints/seed0/teacher/best.pt`` from a run of this
recipe (trained on all 60,000, e.g. while the sweep ran) is reported with the epochs and training minutes
that run recorded, and its wall time counts in the whole recipe's.

The run gets ``OMP_WAIT_POLICY=passive`` unless the environment sets it: on a machine whose cores are
shared with other jobs, OpenMP threads that spin while waiting slowed training steps several times
over in our measurements; sleeping threads cost little on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

PAPER = {"teacher": 67, "student alone": 146, "student distilled": 74}
TARGET_ERRORS = 74
BUDGET_MINUTES = 60.0
MNIST_TEST = 10_000


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mentor bench hinton", description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="recipe override passed to `mentor run` (e.g. --set train.epochs=1)")
    parser.add_argument("--out", type=Path, default=Path("runs") / "bench-hinton-mnist",
                        help="run directory (replaced)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    parser.add_argument("--tune", action="append", default=[], metavar="'KEY=VALUE ...'",
                        help="a configuration to score on the validation images (repeat for several)")
    parser.add_argument("--jobs", type=int, default=2, help="--tune: runs at a time, one thread each")
    return parser.parse_args(argv)


VALIDATION = 1 / 6  # 10,000 of the 60,000 training images


def tune(args: argparse.Namespace, argv: list[str] | None) -> None:
    """Score each ``--tune`` configuration by the distilled student's validation errors after its last epoch."""
    out = args.out.with_name(args.out.name + "-tune")
    held_out = [f"data.validation={VALIDATION!r}", "compare.student_alone=false", *args.set]
    teacher = out / "teacher"
    if not (teacher / "summary.json").is_file():
        command = [sys.executable, "-m", "mentor", "run", "hinton-mnist", "--out", str(teacher), "--force", "--quiet",
                   *(p for o in [*held_out, "train.epochs=1"] for p in ("--set", o))]
        _common.run_children([command], 1)[0].check("the tuning teacher")
    checkpoint = teacher / "checkpoints" / "seed0" / "teacher" / "best.pt"
    tries = [(out / f"try{index}", [*held_out, f"teacher.checkpoint={checkpoint}", *configuration.split()])
             for index, configuration in enumerate(args.tune)]
    todo = [(folder, overrides) for folder, overrides in tries if not _common.finished(folder, overrides)]
    commands = [[sys.executable, "-m", "mentor", "run", "hinton-mnist", "--out", str(folder), "--force", "--quiet",
                 *(p for o in overrides for p in ("--set", o))] for folder, overrides in todo]
    for (folder, _), child in zip(todo, _common.run_children(commands, args.jobs, threads=1), strict=True):
        child.check(f"the configuration in {folder}")
    rows = []
    for configuration, (folder, _) in zip(args.tune, tries, strict=True):
        records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines() if line.strip()]
        distilled = [r for r in records if r.get("run") == "student-distilled"]
        errors = round((1 - distilled[-1]["val/student/accuracy"]) * 10_000)
        minutes = sum(float(r.get("seconds", 0.0)) for r in distilled) / 60
        label = f"`{configuration}`" if configuration.strip() else "(the recipe as is)"
        rows.append([label, str(errors), f"{minutes:.1f}"])
    text = _common.table(["configuration (over the recipe)", "validation errors (of 10,000)", "train min"], rows)
    print(text)
    if not args.no_write:
        body = _common.section_body(_common.invocation("hinton", argv), [
            "The distilled student of `hinton-mnist` trained on 50,000 training images (teacher trained once on the "
            f"same 50,000), errors on the 10,000 held-out training images after the last epoch; {args.jobs} runs at a "
            "time, one thread each.", "", text])
        _common.write_section("hinton-sweep", "Hinton et al. 2015 on MNIST: the validation sweep", body)


def training_minutes(metrics: Path) -> dict[str, float]:
    """Minutes of training (the loop's epoch times) per model, from ``metrics.jsonl``."""
    minutes: dict[str, float] = {}
    for line in metrics.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            role = str(record.get("run", "?")).replace("-", " ")
            minutes[role] = minutes.get(role, 0.0) + float(record.get("seconds", 0.0)) / 60
    return minutes


def loaded_teacher_run(overrides: list[str]) -> Path | None:
    """The run folder of a teacher loaded with ``teacher.checkpoint=RUN/checkpoints/seed0/teacher/best.pt``
    (``None`` when the teacher is trained here, or the checkpoint is not in such a run)."""
    for override in overrides:
        key, _, value = override.partition("=")
        if key == "teacher.checkpoint":
            run = Path(value).resolve().parents[3]
            return run if (run / "metrics.jsonl").is_file() and (run / "summary.json").is_file() else None
    return None


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.tune:
        tune(args, argv)
        return
    command = [sys.executable, "-m", "mentor", "run", "hinton-mnist", "--out", str(args.out), "--force"]
    command += [part for override in args.set for part in ("--set", override)]
    command += ["--quiet"] if args.quiet else []
    print("hinton: " + " ".join(command[1:]), flush=True)
    env = {**os.environ}
    env.setdefault("OMP_WAIT_POLICY", "passive")
    child = _common.run_child(command, env=env, echo=True).check("mentor run hinton-mnist")

    summary = json.loads((args.out / "summary.json").read_text(encoding="utf-8"))
    recipe = yaml.safe_load((args.out / "recipe.yaml").read_text(encoding="utf-8"))
    limit = recipe["data"].get("limit")
    tested = min(limit, MNIST_TEST) if limit else MNIST_TEST
    epochs = {"teacher": (recipe["teacher"].get("train") or recipe["train"])["epochs"],
              "student alone": recipe["train"]["epochs"], "student distilled": recipe["train"]["epochs"]}
    minutes = training_minutes(args.out / "metrics.jsonl")
    total = child.seconds / 60
    teacher_run = loaded_teacher_run(args.set)
    if teacher_run is not None:
        minutes["teacher"] = training_minutes(teacher_run / "metrics.jsonl").get("teacher", 0.0)
        total += json.loads((teacher_run / "summary.json").read_text(encoding="utf-8"))["seconds"] / 60
    rows, errors = [], {}
    for role, model in summary["models"].items():
        errors[role] = round((1 - model["accuracy_mean"]) * tested)
        rows.append([role, str(errors[role]), str(PAPER.get(role, "")), f"{model['accuracy_mean'] * 100:.2f}",
                     f"{model['parameters']:,}", str(epochs.get(role, "")), f"{minutes.get(role, 0.0):.1f}"])
    met_errors = errors.get("student distilled", tested) <= TARGET_ERRORS
    verdict = (f"Distilled student: {errors.get('student distilled')} errors (target ≤ {TARGET_ERRORS}: "
               f"{'met' if met_errors else 'missed'}); whole recipe {total:.1f} min (target ≤ {BUDGET_MINUTES:.0f}: "
               f"{'met' if total <= BUDGET_MINUTES else 'missed'}); peak RSS {child.peak_rss_mb:.0f} MB.")
    text = _common.table(["model", f"test errors (of {tested:,})", "paper", "test acc %", "parameters", "epochs",
                          "train min"], rows)
    print(f"\n{text}\n\n{verdict}")
    if args.no_write:
        return
    overrides = f" Overrides: {', '.join(args.set)}." if args.set else ""
    if teacher_run is not None:
        overrides += (f" The teacher was trained by a run of this recipe in {teacher_run} (its minutes and wall time "
                      "are counted here).")
    clip = recipe["train"].get("clip_grad_norm")
    clipped = f", the students' gradient norm clipped at {clip:g}" if clip else ""
    body = _common.section_body(_common.invocation("hinton", argv), [
        "Built-in recipe `hinton-mnist`: full MNIST (60,000 train, 10,000 test), teacher 784-1200-1200-10 with "
        "dropout 0.5 and ±2-pixel jitter, student 784-800-800-10 without regularization, alone and distilled with "
        "KD at T=20 (α=0.9: 0.1·CE + 0.9·T²·KL), SGD with Nesterov momentum and a cosine schedule, batch 128"
        f"{clipped}; one seed; OMP_WAIT_POLICY={env['OMP_WAIT_POLICY']}. Paper: Hinton, Vinyals & Dean 2015, §3."
        f"{overrides}",
        "",
        text,
        "",
        verdict,
    ])
    _common.write_section("hinton", "Hinton et al. 2015 on MNIST", body)
    print(f"\nwritten to {_common.BENCHMARKS_MD}")


if __name__ == "__main__":
    main()
