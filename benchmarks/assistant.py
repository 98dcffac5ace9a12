"""Single-teacher variants on Fashion-MNIST: teacher assistants (TAKD) and student-friendly teachers (SFTN).

    mentor bench assistant [--epochs 15] [--teacher-epochs 12] [--limit 8000] [--seeds 0,1,2] [--jobs 2]
                           [--out DIR] [--no-write]

(a) TAKD (Mirzadeh et al. 2020) at a large capacity gap: a CNN teacher of 288k parameters, a CNN student of
1.7k (1/170 of it) and an assistant of 24k (about the geometric mean of the two). The student distilled
through the assistant is compared with the student distilled straight from the teacher and with the
student alone; every stage is KD with the same τ and weight, as in the paper.
(b) SFTN (Park et al. 2021): a teacher of the same architecture trained with branches of a 6.3k student
(cut after stage1 and stage2 of both; λ_T = 1, λ_R^CE = 1, τ = 1, and λ_R^KL chosen among ``--sftn-kl``, 1
and 3, by the validation accuracy of the seed-0 student distilled from each teacher: with 3, our reading of
the paper's value, the teacher trained far slower, 43% validation accuracy after 3 epochs against 84% with
1 and 88% without the KL), against the normally trained teacher of (a); both are distilled into the same
student with KD.

Protocol: each teacher is trained once (seed 0) on the training images (``--limit`` of them; the test
images too are the first ``--limit``), then shared by every seed, as a pre-trained teacher is. KD's
temperature is chosen among 2, 4 and 8 (weight α = 0.9) by the validation accuracy of the student
distilled straight from the teacher with seed 0; the test set is never looked at. The chosen τ serves
every KD stage of (a) and (b). Each student run (alone, direct KD, through the assistant, from either
teacher) is repeated with every seed; a seed fixes the validation split, the initial weights and the
batch order. Reported: test accuracy mean ± std, the gain of the method over its comparison and whether
it exceeds the seeds' spread (gain > √(std₁² + std₂²)). Every run is one ``mentor run`` process, ``--jobs``
at a time with one thread each; finished runs in ``--out`` are reused. Written into BENCHMARKS.md between
``<!-- assistant:start -->`` and ``<!-- assistant:end -->``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

from mentor.report import mean_std  # noqa: E402

TEACHER = {"model": "cnn", "options": {"channels": [32, 64, 128], "depth": 2}}
TINY_STUDENT = {"model": "cnn", "options": {"channels": [4, 8, 16]}}
ASSISTANT = {"model": "cnn", "options": {"channels": [16, 32, 64]}}
SFTN_STUDENT = {"model": "cnn", "options": {"channels": [8, 16, 32]}}
STUDENT_FRIENDLY = {"teacher_blocks": ["stage1", "stage2"], "student_blocks": ["stage1", "stage2"]}
SGD = {"name": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4}
TEMPERATURES = [2.0, 4.0, 8.0]
ALPHA = 0.9


def recipe(args: argparse.Namespace, teacher: dict[str, Any], student: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": "bench-assistant", "data": {"name": "fashion-mnist", "validation": 0.1, "limit": args.limit},
            "teacher": teacher, "student": student,
            "knowledge": {"method": "kd", "params": {"temperature": 4.0, "alpha": ALPHA}},
            "train": {"epochs": args.epochs, "batch_size": 128, "optimizer": SGD, "scheduler": {"name": "cosine"}},
            "compare": {"student_alone": False}, "latency_batch": 1, **extra}


class Bench:
    """The runs, one `mentor run` child each, reused from ``out`` when finished."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args, self.out = args, Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)

    def run_all(self, runs: dict[str, dict[str, Any]]) -> None:
        todo = {name: body for name, body in runs.items() if not self.finished(name, body)}
        commands = []
        for name, body in todo.items():
            (self.out / f"{name}.yaml").write_text(yaml.safe_dump(body, sort_keys=False))
            commands.append([sys.executable, "-m", "mentor", "run", str(self.out / f"{name}.yaml"), "--out",
                             str(self.out / name), "--quiet", "--force"])
        for child, name in zip(_common.run_children(commands, self.args.jobs, threads=1), todo, strict=True):
            child.check(f"run {name}")
            print(f"  {name}: {child.seconds:.0f} s", flush=True)

    def finished(self, name: str, body: dict[str, Any]) -> bool:
        folder = self.out / name
        saved = self.out / f"{name}.yaml"
        return (folder / "summary.json").is_file() and saved.is_file() and yaml.safe_load(saved.read_text()) == body

    def summary(self, name: str) -> dict[str, Any]:
        return json.loads((self.out / name / "summary.json").read_text())["models"]

    def validation(self, name: str, run: str) -> float:
        """The best validation accuracy of ``run`` (the weights a run keeps)."""
        lines = (self.out / name / "metrics.jsonl").read_text().splitlines()
        records = [json.loads(line) for line in lines if line.strip()]
        return max(r["val/student/accuracy"] for r in records if r.get("run") == run)

    def teachers(self) -> dict[str, Path]:
        """Train the normal and the student-friendly teacher once (seed 0); their checkpoints."""
        teacher_train = {"epochs": self.args.teacher_epochs, "batch_size": 128, "optimizer": SGD,
                         "scheduler": {"name": "cosine"}}
        one_epoch = {"train": {"epochs": 1, "batch_size": 128}}
        normal = recipe(self.args, {**TEACHER, "train": teacher_train}, TINY_STUDENT, seeds=[0])
        runs = {"teacher-normal": {**normal, **one_epoch}}
        for weight in self.args.sftn_kl:
            friendly = recipe(self.args, {**TEACHER, "train": teacher_train, "student_friendly": {
                **STUDENT_FRIENDLY, "branch_kl_weight": weight}}, SFTN_STUDENT, seeds=[0])
            runs[f"teacher-{sftn(weight)}"] = {**friendly, **one_epoch}
        self.run_all(runs)
        return {name.removeprefix("teacher-"): (self.out / name / "checkpoints" / "seed0" / "teacher" / "best.pt")
                .resolve() for name in runs}

    def temperature(self, teacher: Path) -> tuple[float, list[list[str]]]:
        """KD's τ with the best validation accuracy of the directly distilled tiny student (seed 0)."""
        runs = {f"sweep-t{t:g}": recipe(self.args, {**TEACHER, "checkpoint": str(teacher)}, TINY_STUDENT, seeds=[0],
                                        knowledge={"method": "kd", "params": {"temperature": t, "alpha": ALPHA}})
                for t in TEMPERATURES}
        self.run_all(runs)
        scores = {t: self.validation(f"sweep-t{t:g}", "student-distilled") for t in TEMPERATURES}
        best = max(scores, key=lambda t: scores[t])
        return best, [[f"{t:g}", f"{100 * scores[t]:.2f}", "chosen" if t == best else ""] for t in TEMPERATURES]

    def students(self, teachers: dict[str, Path], temperature: float) -> tuple[str, list[list[str]]]:
        """Every student run; λ_R^KL of the SFTN teacher chosen by its seed-0 student's validation accuracy."""
        kd = {"method": "kd", "params": {"temperature": temperature, "alpha": ALPHA}}

        def distilled(name: str, seed: int) -> dict[str, Any]:
            return recipe(self.args, {**TEACHER, "checkpoint": str(teachers[name])}, SFTN_STUDENT, seeds=[seed],
                          knowledge=kd, compare={"student_alone": name == "normal"})

        friendly = [sftn(weight) for weight in self.args.sftn_kl]
        self.run_all({f"{name}-kd-s{self.args.seeds[0]}": distilled(name, self.args.seeds[0]) for name in friendly})
        scores = {name: self.validation(f"{name}-kd-s{self.args.seeds[0]}", "student-distilled") for name in friendly}
        chosen = max(scores, key=lambda name: scores[name])
        runs = {}
        for seed in self.args.seeds:
            runs[f"takd-s{seed}"] = recipe(self.args, {**TEACHER, "checkpoint": str(teachers["normal"])},
                                           TINY_STUDENT, seeds=[seed], knowledge=kd, assistants=[ASSISTANT],
                                           compare={"student_alone": True})
            for name in ("normal", chosen):
                runs[f"{name}-kd-s{seed}"] = distilled(name, seed)
        self.run_all(runs)
        table = [[f"{weight:g}", f"{100 * scores[sftn(weight)]:.2f}", "chosen" if sftn(weight) == chosen else ""]
                 for weight in self.args.sftn_kl]
        return chosen, table


def sftn(weight: float) -> str:
    """The run name of the student-friendly teacher trained with λ_R^KL = ``weight``."""
    return f"sftn-kl{weight:g}"


def accuracies(bench: Bench, runs: list[str], role: str) -> list[float]:
    return [bench.summary(run)[role]["accuracy"][0] for run in runs]


def compare(method: list[float], baseline: list[float]) -> str:
    """The gain in points and whether it exceeds the seeds' spread."""
    gain = 100 * (statistics.fmean(method) - statistics.fmean(baseline))
    spread = 100 * math.sqrt((statistics.stdev(method) if len(method) > 1 else 0.0) ** 2
                             + (statistics.stdev(baseline) if len(baseline) > 1 else 0.0) ** 2)
    return f"{gain:+.2f} ({'beyond' if abs(gain) > spread else 'within'} the spread {spread:.2f})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="mentor bench assistant", description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=15, help="epochs of every student and assistant run")
    parser.add_argument("--teacher-epochs", type=int, default=12, help="epochs of each teacher")
    parser.add_argument("--limit", type=int, default=8_000, help="training (and test) images used")
    parser.add_argument("--seeds", default="0,1,2", help="the first seed is the sweep's")
    parser.add_argument("--sftn-kl", default="1,3", help="SFTN's λ_R^KL values to choose from on validation")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (one thread each)")
    parser.add_argument("--out", default="runs/bench-assistant")
    parser.add_argument("--no-write", action="store_true", help="print the tables only")
    args = parser.parse_args(argv)
    args.seeds = [int(seed) for seed in args.seeds.split(",")]
    args.sftn_kl = [float(weight) for weight in args.sftn_kl.split(",")]
    bench = Bench(args)
    with _common.stopwatch() as elapsed:
        print("teachers (normal and student-friendly), seed 0", flush=True)
        teachers = bench.teachers()
        print("KD temperature sweep on validation, seed 0", flush=True)
        temperature, sweep = bench.temperature(teachers["normal"])
        print(f"students with τ = {temperature:g}, seeds {args.seeds}", flush=True)
        chosen, kl_sweep = bench.students(teachers, temperature)
    takd = [f"takd-s{seed}" for seed in args.seeds]
    direct = accuracies(bench, takd, "student distilled")
    chain = accuracies(bench, takd, "student via assistants")
    alone = accuracies(bench, takd, "student alone")
    rows_a = [["teacher (288k)", mean_std([bench.summary("teacher-normal")["teacher"]["accuracy"][0]], 100.0), ""],
              ["assistant (24k), KD from the teacher", mean_std(accuracies(bench, takd, "assistant0"), 100.0), ""],
              ["student (1.7k) alone", mean_std(alone, 100.0), ""],
              ["student, KD from the teacher", mean_std(direct, 100.0), compare(direct, alone) + " vs alone"],
              ["student, KD through the assistant (TAKD)", mean_std(chain, 100.0), compare(chain, direct)
               + " vs direct KD"]]
    normal = accuracies(bench, [f"normal-kd-s{seed}" for seed in args.seeds], "student distilled")
    friendly = accuracies(bench, [f"{chosen}-kd-s{seed}" for seed in args.seeds], "student distilled")
    rows_b = [["normal teacher", mean_std([bench.summary("teacher-normal")["teacher"]["accuracy"][0]], 100.0), ""],
              ["student-friendly teacher", mean_std([bench.summary(f"teacher-{chosen}")["teacher"]["accuracy"][0]],
                                                    100.0), ""],
              ["student (6.3k) alone", mean_std(accuracies(bench, [f"normal-kd-s{s}" for s in args.seeds],
                                                           "student alone"), 100.0), ""],
              ["student, KD from the normal teacher", mean_std(normal, 100.0), ""],
              ["student, KD from the student-friendly teacher", mean_std(friendly, 100.0),
               compare(friendly, normal) + " vs the normal teacher"]]
    header = ["model", f"test accuracy % ({len(args.seeds)} seeds; teachers: seed 0)", "gain, points"]
    text = "\n\n".join([
        "(a) Teacher assistant (TAKD)", _common.table(header, rows_a),
        "(b) Student-friendly teacher (SFTN)", _common.table(header, rows_b),
        f"KD temperature chosen on validation (α = {ALPHA}, student distilled from the normal teacher, seed 0):",
        _common.table(["τ", "validation accuracy %", ""], sweep),
        "SFTN's λ_R^KL chosen on validation (the seed-0 student distilled from each student-friendly teacher):",
        _common.table(["λ_R^KL", "validation accuracy %", ""], kl_sweep)])
    print(f"\n{text}\n\nwall time {elapsed() / 60:.1f} min")
    if args.no_write:
        return
    body = _common.section_body(_common.invocation("assistant", argv), [
        f"Fashion-MNIST, the first {args.limit:,} training images (10% held out for validation) and test images; "
        f"students and assistants {args.epochs} epochs, teachers {args.teacher_epochs}; SGD (Nesterov, 0.05, "
        f"cosine), batch 128. Wall time {elapsed() / 60:.1f} min with {args.jobs} runs at a time.", "", text])
    _common.write_section("assistant", "Teacher assistants and student-friendly teachers", body)
    print(f"\nwritten to {_common.BENCHMARKS_MD}")


if __name__ == "__main__":
    main()
