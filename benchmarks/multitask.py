"""Multi-task learning on Fashion-MNIST, MNIST and MNIST ink (``mentor bench multitask``): MuST's multi-head student
against its specialist teachers, with cross-task KD and the same student trained on the ground truth.

    mentor bench multitask [--seeds 0,1,2] [--limit N] [--teacher-epochs 20] [--student-epochs 20] [--no-write]

Three tasks, each with its own specialist teacher (an MLP 784-256-256, ``mlp-medium``): Fashion-MNIST classes,
MNIST digits, and MNIST ink (the percentage of pixels above half intensity, a regression). Each dataset's 60,000
training images lose 10% to the validation split; half of the rest is the teachers' labelled data (27,000 each),
the other half, without labels, is the shared pool (27,000 Fashion-MNIST and 27,000 MNIST images). The
multi-task student (the same MLP body, one head per task, ``mlp-multi-head``) learns the soft/value pseudo labels
of all three teachers on the whole pool (MuST); the cross-task student adds the quadruplet ranking losses on
auxiliary heads and calibrated pseudo labels (λ = 1, temperature/affine calibration on each task's validation
split); the ground-truth student learns the
teachers' labelled data directly. Each model is tested on its task's own test set (10,000 images).

Settings are fixed before looking at any test number, none tuned on the test sets: Adam with learning rate
3e-3, batches of 128, ``--teacher-epochs`` for the teachers (their weights selected on validation) and
``--student-epochs`` for the students (last weights; the pool has no labels to select on). With the defaults the
run took 14.7 minutes (3 seeds) on a 2-core machine shared with other jobs. ``--limit`` and few epochs make a
smoke run; ``--ablation`` trains the first seed's cross-task student with calibration only and with ranking only.
The table goes into BENCHMARKS.md between ``<!-- multitask:start -->`` and ``<!-- multitask:end -->``.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import invocation, section_body, table, write_section  # noqa: E402

import mentor  # noqa: E402
from mentor.engine import FitSettings, OptimizerSettings  # noqa: E402
from mentor.pipelines.multitask import MultiTaskJob, MultiTaskResult, check_job, run  # noqa: E402
from mentor.pipelines.multitask_data import Task, task_data  # noqa: E402
from mentor.pipelines.multitask_steps import CrossTask  # noqa: E402

TASKS = [Task("fashion", "fashion-mnist"), Task("digits", "mnist"), Task("ink", "mnist", "ink")]
STUDENTS = ("student", "cross-task student", "ground-truth student")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mentor bench multitask", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--limit", type=int, default=None, help="first N training and test images of each dataset")
    parser.add_argument("--teacher-epochs", type=int, default=20)
    parser.add_argument("--student-epochs", type=int, default=20)
    parser.add_argument("--pool-fraction", type=float, default=0.5)
    parser.add_argument("--ablation", action="store_true", help="instead: the first seed's cross-task student with "
                        "calibration only and with ranking only (printed, not written)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    return parser.parse_args(argv)


def cell(values: list[float], scale: float) -> str:
    return f"{statistics.fmean(values) * scale:.2f} ± {statistics.stdev(values) * scale:.2f}" if len(values) > 1 \
        else f"{values[0] * scale:.2f}"


def verdict(student: list[float], teacher: list[float], lower_is_better: bool) -> str:
    """The student's difference to the specialist, and whether it lies beyond the two seeds' spreads summed."""
    difference = statistics.fmean(student) - statistics.fmean(teacher)
    spread = sum(statistics.stdev(values) if len(values) > 1 else 0.0 for values in (student, teacher))
    better = -difference if lower_is_better else difference
    word = "within the spread" if abs(difference) <= spread else ("better" if better > 0 else "worse")
    return f"{difference:+.2f} ({word})"


def rows_of(result: MultiTaskResult) -> list[list[str]]:
    by_role = result.by_role()
    rows = []
    for task in TASKS:
        def values(role: str, task: Task = task) -> list[float]:
            measured = by_role[f"{task.name} {role}"]
            return [m.errors["mse"] if task.regression else m.accuracy for m in measured]
        scale = 1.0 if task.regression else 100.0
        teacher = values("teacher")
        row = [task.name, "test MSE" if task.regression else "test accuracy %", cell(teacher, scale)]
        row += [cell(values(role), scale) for role in STUDENTS]
        row += [verdict([v * scale for v in values(role)], [v * scale for v in teacher], task.regression)
                for role in STUDENTS[:2]]
        row.append(f"{by_role[f'{task.name} teacher'][0].parameters:,}")
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    started = time.perf_counter()
    seeds = [int(seed) for seed in args.seeds.split(",")]
    settings = FitSettings(epochs=args.student_epochs, batch_size=128, progress=False,
                           optimizer=OptimizerSettings(name="adam", lr=3e-3))
    job = MultiTaskJob(
        name="multitask", seeds=seeds, tasks=TASKS,
        load_data=functools.lru_cache(maxsize=1)(
            lambda seed: task_data(TASKS, seed, 0.1, args.limit, args.pool_fraction)),
        teacher=lambda outputs, shape: mentor.models.create("mlp-medium", outputs, shape),
        student=lambda heads, shape: mentor.models.create("mlp-multi-head", 1, shape, heads=heads),
        teacher_settings=FitSettings(**{**settings.__dict__, "epochs": args.teacher_epochs}),
        settings=settings, cross_task=CrossTask(), ground_truth=True, latency_batch=256)
    check_job(job)
    if args.ablation:
        ablation(job, seeds[0])
        return
    result = MultiTaskResult()
    for done, seed in enumerate(seeds, start=1):  # the section is rewritten after every seed: a stopped run keeps some
        result.rows += run(replace(job, seeds=[seed]), None, echo=lambda line: print(f"  {line}", flush=True)).rows
        write(args, argv, job, result, seeds[:done], len(seeds), time.perf_counter() - started)


def ablation(job: MultiTaskJob, seed: int) -> None:
    """The cross-task student of one seed with each of its two parts alone: which one costs what it costs.

    The teachers and the MuST student train once into a temporary run directory; each variant then resumes it
    with its cross-task student's folder removed, so only that stage trains again."""
    variants = {"calibration only (λ = 0)": CrossTask(ranking_weight=0.0), "ranking only (no calibration)":
                CrossTask(calibrate=False), "both (the benchmark's)": CrossTask()}
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        for index, (name, cross) in enumerate(variants.items()):
            shutil.rmtree(out / "checkpoints" / f"seed{seed}" / "cross-task-student", ignore_errors=True)
            result = run(replace(job, seeds=[seed], cross_task=cross, ground_truth=False), out,
                         echo=lambda line: None, resume=index > 0)
            by_role = result.by_role()
            rows.append([name] + [f"{by_role[f'{task.name} cross-task student'][0].errors['mse']:.2f}"
                                  if task.regression else
                                  f"{100 * by_role[f'{task.name} cross-task student'][0].accuracy:.2f}"
                                  for task in TASKS])
            print(f"  {' | '.join(rows[-1])}", flush=True)
    print(table(["cross-task student, seed " + str(seed), *(task.name for task in TASKS)], rows))


def write(args: argparse.Namespace, argv: list[str] | None, job: MultiTaskJob, result: MultiTaskResult,
          seeds: list[int], planned: int, seconds: float) -> None:
    """Print the section of the seeds done so far and write it to BENCHMARKS.md (unless ``--no-write``)."""
    header = ["task", "metric", "specialist teacher", "MuST student", "cross-task student", "ground-truth student",
              "MuST − teacher", "cross-task − teacher", "teacher parameters"]
    student_parameters = result.by_role()["fashion student"][0].parameters
    data = job.load_data(seeds[-1])
    partial = "" if len(seeds) == planned else f" PARTIAL: {len(seeds)} of the {planned} seeds asked for."
    lines = [f"Pool: {len(data.pool):,} unlabelled images; teachers' labelled data: "
             + ", ".join(f"{task.name} {len(data.tasks[task.name].train):,}" for task in TASKS)
             + f". Teachers: mlp-medium ({args.teacher_epochs} epochs); students: mlp-multi-head 784-256-256 with "
             f"3 heads ({args.student_epochs} epochs), {student_parameters:,} parameters; student / sum of the "
             f"specialists' parameters = {result.parameter_ratio():.3f}. {len(seeds)} seed(s) "
             f"({', '.join(map(str, seeds))}), mean ± std; a difference counts only beyond the two rows' stds summed. "
             f"{seconds / 60:.1f} minutes in all.{partial}", "", table(header, rows_of(result))]
    body = section_body(invocation("multitask", argv), lines)
    print(body, flush=True)
    if not args.no_write:
        write_section("multitask", "Multi-task learning: MuST and cross-task KD against specialist teachers", body)

if __name__ == "__main__":
    main(sys.argv[1:])
