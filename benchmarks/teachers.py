"""Several teachers (survey §4.2): every weighting against KD from the best single teacher, 3 seeds.

    mentor bench teachers [--epochs 10] [--teacher-epochs 10] [--teacher-jitter 0] [--seeds 0,1,2]
                          [--methods uniform,adaptive] [--temperatures 2,4] [--alphas 0.7] [--sweep-seeds first]
                          [--jobs 2] [--out DIR] [--limit 12000] [--student-limit N] [--student-offset N]
                          [--student small] [--teacher-set expert]
                          [--set KEY=VALUE]

Fashion-MNIST (the first ``--limit`` training images, 10% of them held out for validation; the 10,000 test images).
Three heterogeneous teachers, each trained once (seed 0) on its own part of the training split and reused by every
run: a CNN on the first half of the (seeded) shuffled samples, an MLP on the second half, and a smaller CNN on the
classes 0-6 only (an expert that never saw sneakers, bags or ankle boots); with ``--teacher-set complementary`` the
third is a smaller CNN on the middle half of the samples instead, so that every teacher knows every class and the
ensemble can be better than its best member; with ``--teacher-set disjoint`` the same three architectures learn
disjoint thirds; with ``--teacher-set two-cnn`` the complementary set's two CNNs alone, with ``whole`` its three
architectures on all the samples, with ``shards`` four CNNs of different widths and depths on disjoint quarters,
with ``eighths`` the same four twice on disjoint eighths. ``--teacher-jitter`` shifts the teachers' training images
by up to that many pixels (stronger teachers with more ``--teacher-epochs``). One small CNN student (6.3k
parameters; ``--student medium``: 72.7k, the architecture of the complementary set's teacher1); with
``--student-limit`` it learns from N training images instead of ``--limit``, so that the images after
``--limit`` are new to every teacher (there the teachers' targets are predictions on images they never learned;
``mentor bench teacher_targets`` compares the two kinds); with ``--student-offset`` (``data.offset``) it skips that
many training images first, so that with ``--student-offset 12000`` (the ``--limit``) every image it learns from is
new to every teacher: the teachers were trained on other data, as when a model is distilled on a transfer set of its
own; adding ``--student-limit 48000`` makes that transfer set the whole rest of the training split (four times as
many images).
Every run is a separate ``mentor run`` process, ``--jobs`` at a time with one thread each.

Rows: the student alone; KD from the best single teacher (best by validation accuracy); the multi-teacher
objective with the ``uniform``, ``fixed`` (weights = the teachers' validation accuracies), ``adaptive``
(AMTML-KD, with multi-group hints; its per-sample weights learn from the labels; ``adaptive-no-hints`` without the
hints, ``adaptive-kl`` with weights learned through the distillation loss, as in the paper, so without labels),
``reinforced`` and ``domain`` weightings; ``voting`` (uniform weights, per-teacher losses summed); ``relative
similarity`` (You et al. 2017). Protocol: each method tries the
``--temperatures`` (τ 2 and 4) and the ``--alphas`` (for the student alone, one run) on the first seed and keeps
the best on validation; the chosen configuration then runs with the other seeds. With ``--sweep-seeds all`` every
configuration runs with every seed and the choice is the best mean validation accuracy over the seeds (each seed
draws its own validation split, so the choice rests on three times as many images). The test set is never
looked at for a choice.

Reported: test accuracy mean ± std over seeds, the gain over the student alone and over the best single
teacher's KD, and whether each gain exceeds the seeds' spread (gain > √(std² + std_reference²)). Written into
BENCHMARKS.md between ``<!-- teachers:start -->`` and ``<!-- teachers:end -->``. Finished runs are kept in
``--out`` and reused, so an interrupted benchmark continues where it stopped.
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

SGD = {"name": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4}
"""The knowledge table's optimizer (`mentor bench knowledge`): with Adam (lr 0.002 / 0.005) these CNNs
under-fitted (cnn-small at 69%, the student alone at 75% after 8-10 epochs)."""
TEACHER_TRAIN = {"epochs": 10, "batch_size": 128, "scheduler": {"name": "cosine"}, "optimizer": SGD}
CNN_LARGE: dict[str, Any] = {"model": "cnn", "options": {"channels": [32, 64, 128], "depth": 2}}
CNN_MIDDLE: dict[str, Any] = {"model": "cnn", "options": {"channels": [16, 32, 64], "depth": 2}}
MLP: dict[str, Any] = {"model": "mlp-medium"}
SHARD_ARCHITECTURES = [CNN_LARGE, CNN_MIDDLE, {"model": "cnn", "options": {"channels": [24, 48, 96], "depth": 1}},
                       {"model": "cnn", "options": {"channels": [16, 32, 64], "depth": 1}}]


def _on(architecture: dict[str, Any], start: float, stop: float) -> dict[str, Any]:
    """A teacher of ``architecture`` on the fractions ``start`` to ``stop`` of the (seeded) shuffled samples."""
    return {**architecture, "subset": {"start": start, "stop": stop}}


TEACHER_SETS: dict[str, list[dict[str, Any]]] = {
    "expert": [_on(CNN_LARGE, 0.0, 0.5), _on(MLP, 0.5, 1.0),
               {"model": "cnn", "options": {"channels": [16, 32, 64]}, "subset": {"classes": [0, 1, 2, 3, 4, 5, 6]}}],
    "complementary": [_on(CNN_LARGE, 0.0, 0.5), _on(CNN_MIDDLE, 0.25, 0.75), _on(MLP, 0.5, 1.0)],
    "whole": [_on(CNN_LARGE, 0.0, 1.0), _on(CNN_MIDDLE, 0.0, 1.0), _on(MLP, 0.0, 1.0)],
    "two-cnn": [_on(CNN_LARGE, 0.0, 0.5), _on(CNN_MIDDLE, 0.25, 0.75)],
    "shards": [_on(teacher, index / 4, (index + 1) / 4) for index, teacher in enumerate(SHARD_ARCHITECTURES)],
    "eighths": [_on(teacher, index / 8, (index + 1) / 8) for index, teacher in enumerate(SHARD_ARCHITECTURES * 2)],
    "disjoint": [_on(CNN_LARGE, 0.0, 1 / 3), _on(CNN_MIDDLE, 1 / 3, 2 / 3), _on(MLP, 2 / 3, 1.0)],
}
"""``expert``: a CNN and an MLP on the two halves and a CNN that never saw classes 7-9; ``complementary``: three
architectures on overlapping halves, every class seen by every teacher; ``disjoint``: the same three on disjoint
thirds, so that each teacher is weaker and their ensemble further above its best member; ``two-cnn``: the
complementary set without its MLP (two CNNs of different widths on overlapping halves); ``whole``: its three
architectures on the whole training split, as in Hinton et al.'s ensembles; ``shards``: four CNNs of different
widths and depths on disjoint quarters, as when each party trains a teacher on its own data (each teacher
weaker); ``eighths``: the same four architectures twice, on disjoint eighths. Three stages for the
CNNs, as the knowledge table's pair: two-stage CNNs (cnn-small, a [8, 16] student) stayed at 77-78% on these
10,800 images after 10 epochs."""
LAST_HIDDEN = {"cnn": "stage3", "mlp-medium": "act2"}  # where the adaptive weighting's hints read each teacher
STUDENTS: dict[str, dict[str, Any]] = {
    "small": {"model": "cnn", "options": {"channels": [8, 16, 32], "depth": 1}},  # the knowledge table's student
    "medium": CNN_MIDDLE,  # the middle teachers' architecture
}
TEMPERATURES = [2.0, 4.0]
ALPHA = 0.7
METHODS: dict[str, dict[str, Any]] = {
    "single": {"method": "kd", "params": {"alpha": ALPHA}},
    "uniform": {"method": "multi-teacher", "params": {"alpha": ALPHA}, "weighting": {"name": "uniform"}},
    "fixed": {"method": "multi-teacher", "params": {"alpha": ALPHA}, "weighting": {"name": "fixed"}},
    "adaptive": {"method": "multi-teacher", "params": {"alpha": ALPHA}, "weighting": {
        "name": "adaptive", "params": {"feature": "stage3", "hint_weight": 0.5,
                                       "hints": [{"student": "stage3"}]}}},  # + the teachers' LAST_HIDDEN
    "adaptive-no-hints": {"method": "multi-teacher", "params": {"alpha": ALPHA}, "weighting": {
        "name": "adaptive", "params": {"feature": "stage3"}}},  # its per-sample weights alone
    "adaptive-kl": {"method": "multi-teacher", "params": {"alpha": ALPHA}, "weighting": {
        "name": "adaptive", "params": {"feature": "stage3", "hint_weight": 0.5, "learn": "distillation",
                                       "hints": [{"student": "stage3"}]}}},  # weights learned without the labels
    "reinforced": {"method": "multi-teacher", "params": {"alpha": ALPHA}, "weighting": {"name": "reinforced"}},
    "domain": {"method": "multi-teacher", "params": {"alpha": ALPHA}, "weighting": {"name": "domain"}},
    "voting": {"method": "multi-teacher", "params": {"alpha": ALPHA, "combine": "vote"},
               "weighting": {"name": "uniform"}},
    "relative similarity": {"method": "relative-similarity", "params": {"alpha": ALPHA, "student": "stage3"}},
}
ALONE = "student alone"


def base_recipe(epochs: int, teacher_epochs: int, limit: int, teachers: list[dict[str, Any]],
                teacher_jitter: int = 0) -> dict[str, Any]:
    train = {**TEACHER_TRAIN, "epochs": teacher_epochs, **({"jitter": teacher_jitter} if teacher_jitter else {})}
    return {
        "name": "bench-teachers",
        "data": {"name": "fashion-mnist", "validation": 0.1, "limit": limit},
        "teachers": [{**teacher, "train": dict(train)} for teacher in teachers],
        "student": STUDENTS["small"],  # the teachers' run trains one too (1 epoch), unused
        "knowledge": {"method": "multi-teacher"},
        "train": {"epochs": epochs, "batch_size": 128, "scheduler": {"name": "cosine"},
                  "optimizer": SGD},
        "compare": {"student_alone": False},
        "latency_batch": 1,
    }


def recipe_for(base: dict[str, Any], name: str, temperature: float, seed: int, checkpoints: list[Path],
               validation: list[float], alpha: float = ALPHA) -> dict[str, Any]:
    """The recipe of one run: a method (or the student alone) at τ and α, the trained teachers loaded."""
    recipe = json.loads(json.dumps(base))
    recipe["seeds"] = [seed]
    for teacher, checkpoint in zip(recipe["teachers"], checkpoints, strict=True):
        teacher["checkpoint"] = str(checkpoint)
    if name in (ALONE, "single"):
        best = max(range(len(checkpoints)), key=lambda index: validation[index])
        recipe["teacher"] = {key: value for key, value in recipe.pop("teachers")[best].items() if key != "subset"}
        recipe["knowledge"] = ({"method": "general", "params": {"ce": 1.0}} if name == ALONE else
                               {"method": "kd", "params": {**METHODS[name]["params"], "temperature": temperature,
                                                           "alpha": alpha}})
        return recipe
    spec = json.loads(json.dumps(METHODS[name]))
    recipe["knowledge"] = {"method": spec["method"],
                           "params": {**spec["params"], "temperature": temperature, "alpha": alpha}}
    if "weighting" in spec:
        recipe["weighting"] = spec["weighting"]
        if spec["weighting"]["name"] == "fixed":
            recipe["weighting"]["params"] = {"weights": validation}
        for hint in recipe["weighting"].get("params", {}).get("hints", []):
            hint["teachers"] = [LAST_HIDDEN[teacher["model"]] for teacher in recipe["teachers"]]
    return recipe


def run_all(runs: dict[Path, dict[str, Any]], jobs: int, overrides: list[str]) -> None:
    """Run the recipes whose folder holds no finished run of the same recipe and overrides, ``jobs`` at a time
    with one thread each (the recipe and the overrides are kept beside the folder as ``FOLDER.yaml``)."""
    def text(recipe: dict[str, Any]) -> str:
        return yaml.safe_dump({**recipe, "description": f"overrides: {overrides}"}, sort_keys=False)

    def finished(folder: Path, recipe: dict[str, Any]) -> bool:
        path = recipe_path(folder)
        return (folder / "summary.json").is_file() and path.is_file() and path.read_text() == text(recipe)

    todo = {folder: recipe for folder, recipe in runs.items() if not finished(folder, recipe)}
    commands = []
    for folder, recipe in todo.items():
        folder.parent.mkdir(parents=True, exist_ok=True)
        path = recipe_path(folder)
        path.write_text(text(recipe))
        command = [sys.executable, "-m", "mentor", "run", str(path), "--out", str(folder), "--quiet", "--force"]
        commands.append(command + [part for override in overrides for part in ("--set", override)])
    for child, folder in zip(_common.run_children(commands, jobs, threads=1), todo, strict=True):
        child.check(f"run {folder.name}")
        print(f"  {folder.name}: {child.seconds:.0f} s", flush=True)


def recipe_path(folder: Path) -> Path:
    """``FOLDER.yaml`` beside the run's folder (a name with dots, such as ``a0.7``, keeps all of them)."""
    return folder.parent / f"{folder.name}.yaml"


def records(folder: Path, run: str) -> list[dict[str, Any]]:
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    return [record for record in map(json.loads, filter(None, lines)) if record.get("run") == run]


def student(folder: Path) -> dict[str, float]:
    """Test accuracy and best validation accuracy of a run's distilled student."""
    summary = json.loads((folder / "summary.json").read_text())
    validation = max(r["val/student/accuracy"] for r in records(folder, "student-distilled"))
    return {"test": summary["models"]["student distilled"]["accuracy"][0], "validation": validation}


def main() -> None:
    parser = argparse.ArgumentParser(prog="mentor bench teachers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=10, help="epochs of every student run")
    parser.add_argument("--teacher-epochs", type=int, default=TEACHER_TRAIN["epochs"], help="epochs of each teacher")
    parser.add_argument("--teacher-jitter", type=int, default=0, metavar="PIXELS",
                        help="shift the teachers' training images by up to this many pixels (default 0)")
    parser.add_argument("--seeds", default="0,1,2", help="the first seed is the sweep's")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--temperatures", default=",".join(f"{t:g}" for t in TEMPERATURES),
                        help="the temperatures τ tried (default 2,4)")
    parser.add_argument("--alphas", default=f"{ALPHA:g}", help="the distillation weights α tried with each τ")
    parser.add_argument("--sweep-seeds", choices=["first", "all"], default="first",
                        help="choose τ and α on the first seed's validation (default) or on the mean over all seeds")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (one thread each)")
    parser.add_argument("--limit", type=int, default=12_000, help="training (and test) images used")
    parser.add_argument("--student-limit", type=int, default=None, metavar="N",
                        help="the students learn from N training images (after --student-offset; default: --limit)")
    parser.add_argument("--student-offset", type=int, default=0, metavar="N",
                        help="the students skip the first N training images (N = --limit: none a teacher saw)")
    parser.add_argument("--student", choices=sorted(STUDENTS), default="small",
                        help="the student: small (default) or medium, the size of the complementary set's teacher1")
    parser.add_argument("--teacher-set", choices=sorted(TEACHER_SETS), default="expert",
                        help="the teachers (default expert)")
    parser.add_argument("--out", default="runs/bench-teachers")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a recipe override for every run (e.g. train.batch_size=64)")
    args = parser.parse_args()
    seeds, methods = [int(s) for s in args.seeds.split(",")], [m for m in args.methods.split(",") if m]
    alphas, temperatures = _numbers(args.alphas, "--alphas"), _numbers(args.temperatures, "--temperatures")
    if args.student_offset < 0:
        raise SystemExit(f"--student-offset must be 0 or more training images; got {args.student_offset}")
    if any(not 0 <= a <= 1 for a in alphas) or any(t <= 0 for t in temperatures):
        raise SystemExit(f"--alphas must be in [0, 1] and --temperatures above 0; got {args.alphas!r} and "
                         f"{args.temperatures!r}")
    if "domain" in methods and (args.student_limit or args.student_offset):
        raise SystemExit("the domain weighting reads each teacher's images through its subset of the students' pool, "
                         "which --student-limit and --student-offset make a different pool; drop domain from --methods")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SystemExit(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
    out = Path(args.out)
    teachers = TEACHER_SETS[args.teacher_set]
    base = base_recipe(args.epochs, args.teacher_epochs, args.limit, teachers, args.teacher_jitter)

    # 1. the teachers, trained once (seed 0) on their subsets
    first = out / "teachers"
    teachers_recipe = {**base, "seeds": [0], "train": {**base["train"], "epochs": 1}}
    run_all({first: teachers_recipe}, args.jobs, args.set)
    checkpoints = [first / "checkpoints" / "seed0" / f"teacher{index}" / "best.pt" for index in range(len(teachers))]
    validation = [max(r["val/student/accuracy"] for r in records(first, f"teacher{index}"))
                  for index in range(len(teachers))]
    tested = json.loads((first / "summary.json").read_text())["models"]

    # 2. each method's τ and α on validation (the first seed or all), 3. the other seeds with the chosen ones
    def folder(name: str, point: tuple[float, float], seed: int) -> Path:
        temperature, alpha = point
        suffix = ("" if alpha == ALPHA else f"-a{alpha:g}") + ("" if args.student == "small" else f"-{args.student}")
        return out / f"{name.replace(' ', '-')}-t{temperature:g}{suffix}-seed{seed}"

    offset = {"offset": args.student_offset} if args.student_offset else {}
    students = {**base, "student": STUDENTS[args.student],
                "data": {**base["data"], "limit": args.student_limit or args.limit, **offset}}

    def runs(points: dict[str, list[tuple[float, float]]], run_seeds: list[int]) -> dict[Path, dict[str, Any]]:
        return {folder(name, point, seed): recipe_for(students, name, point[0], seed, checkpoints, validation,
                                                      point[1])
                for name, named in points.items() for point in named for seed in run_seeds}

    sweep = seeds if args.sweep_seeds == "all" else seeds[:1]
    grid = {name: ([(TEMPERATURES[0], ALPHA)] if name == ALONE else [(t, a) for t in temperatures for a in alphas])
            for name in [ALONE, *methods]}
    run_all(runs(grid, sweep), args.jobs, args.set)
    swept = {name: {point: statistics.fmean(student(folder(name, point, seed))["validation"] for seed in sweep)
                    for point in points} for name, points in grid.items() if name != ALONE}
    chosen = {ALONE: grid[ALONE][0]} | {name: max(scores, key=scores.__getitem__) for name, scores in swept.items()}
    run_all(runs({name: [point] for name, point in chosen.items()}, seeds[len(sweep):]), args.jobs, args.set)
    results = {name: [student(folder(name, chosen[name], seed))["test"] for seed in seeds] for name in grid}
    write(args, teachers, seeds, results, chosen, swept, tested, validation)


def gain(values: list[float], reference: list[float]) -> tuple[str, str]:
    """The gain in points over ``reference`` and whether it exceeds the seeds' spread."""
    difference = 100 * (statistics.fmean(values) - statistics.fmean(reference))
    spread = 100 * math.hypot(_std(values), _std(reference))
    return f"{difference:+.2f}", "yes" if difference > spread else ("no" if difference > 0 else "—")


def write(args: argparse.Namespace, teachers: list[dict[str, Any]], seeds: list[int], results: dict[str, list[float]],
          chosen: dict[str, tuple[float, float]], swept: dict[str, dict[tuple[float, float], float]],
          tested: dict[str, Any], validation: list[float]) -> None:
    rows = [[f"teacher{index} ({teachers[index]['model']}, {_subset(teachers[index]['subset'])})",
             f"{100 * tested[f'teacher{index}']['accuracy'][0]:.2f}", "", "", "", "", f"val {100 * value:.2f}"]
            for index, value in enumerate(validation)]
    rows.append(["the teachers' ensemble (uniform average)", f"{100 * tested['teacher']['accuracy'][0]:.2f}",
                 "", "", "", "", ""])
    single = results.get("single")
    for name, values in results.items():
        versus_alone = gain(values, results[ALONE]) if name != ALONE else ("", "")
        versus_single = gain(values, single) if single is not None and name not in (ALONE, "single") else ("", "")
        rows.append([name if name == ALONE else f"`{name}`", mean_std(values, 100), *versus_alone,
                     *versus_single, _choice(chosen[name], args) if name != ALONE else ""])
    header = ["model", f"test acc. % ({len(seeds)} seeds)", "gain vs alone", "beyond spread",
              "gain vs single KD", "beyond spread", "chosen"]
    pooled = bool(args.student_limit or args.student_offset)
    swept_on = f"mean over seeds {args.seeds}" if args.sweep_seeds == "all" else f"seed {seeds[0]}"
    body = _common.section_body(_common.invocation("teachers"), [
        f"Fashion-MNIST, {_pool(args)} (10% held out for validation) and the test images"
        f"{f'; the teachers learned from the first {args.limit:,}' if pooled else ''}. "
        f"{_count(len(teachers))} teachers (`--teacher-set {args.teacher_set}`) trained once on their subsets "
        f"(SGD lr 0.05, Nesterov momentum 0.9, weight decay 5e-4, {args.teacher_epochs} epochs"
        f"{f', ±{args.teacher_jitter}-pixel jitter' if args.teacher_jitter else ''}); student "
        f"`cnn` {STUDENTS[args.student]['options']}: {args.epochs} epochs, the same SGD, cosine schedule. "
        f"τ ∈ {_numbers(args.temperatures, '')} and "
        f"α ∈ {_numbers(args.alphas, '')} chosen on validation ("
        f"{swept_on}); "
        "`single` is KD from the teacher with the best "
        "validation accuracy; `fixed` weighs the teachers by their validation accuracies; `adaptive` adds the "
        "multi-group hints onto the teachers' last hidden layers.",
        "", _common.table(header, rows), "",
        f"The choice: validation accuracy % of each setting ({swept_on}).", "",
        _common.table(["method", *(_choice(point, args) for point in next(iter(swept.values()), {}))],
                      [[f"`{name}`", *(f"{100 * value:.2f}" for value in scores.values())]
                       for name, scores in swept.items()])])
    print(body)
    if not args.no_write:
        _common.write_section("teachers", "Several teachers (`mentor bench teachers`)", body)


def _count(number: int) -> str:
    return {2: "Two", 3: "Three", 4: "Four", 8: "Eight"}.get(number, str(number))


def _pool(args: argparse.Namespace) -> str:
    """The students' training images, in words."""
    count = args.student_limit or args.limit
    if args.student_offset:
        return f"training images {args.student_offset + 1:,} to {args.student_offset + count:,}"
    return f"the first {count:,} training images"


def _numbers(text: str, option: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise SystemExit(f"{option} must be numbers separated by commas; got {text!r}") from None
    return values


def _choice(point: tuple[float, float], args: argparse.Namespace) -> str:
    return f"τ {point[0]:g}" + (f", α {point[1]:g}" if len(_numbers(args.alphas, "--alphas")) > 1 else "")


def _subset(subset: dict[str, Any]) -> str:
    if "classes" in subset:
        return f"classes {subset['classes'][0]}-{subset['classes'][-1]}"
    return f"{subset['start']:.0%}-{subset['stop']:.0%} of the samples"


def _std(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


if __name__ == "__main__":
    main()
