"""Learning teachers (survey §4): MetaDistill against KD from a frozen teacher, and regression KD with teacher
outlier rejection, each over seeds.

    mentor bench metateacher [--seeds 0,1,2] [--limit 10000] [--epochs 10] [--regression-epochs 60] [--threads 1]
                             [--no-write]

Classification (Fashion-MNIST, ``--limit`` training images, 10% of them held out for validation, the
official test set cut to ``--limit`` too): per seed one teacher (``--teacher``, ``cnn-medium``) is trained on
the labels, then one student architecture (``mlp-small``) from the same initial weights is trained alone, by KD from
the frozen teacher (τ = 4, α = 0.9) and by MetaDistill from a copy of the same teacher
(``teacher_epochs: 0``; its defaults: τ = 4, 0.9/0.1, λ = μ = 0.05, 10% of the training split as quiz
set, teacher held fixed for the first 62.5% of the epochs), all with the same epochs, batch size, optimizer
(SGD 0.05, as the knowledge table) and schedule. The MetaDistill teacher after
distillation is measured too.

Regression (scikit-learn's diabetes, 25% test, 15% of the rest for validation): per seed a teacher
(``mlp-medium``), then a small student alone (``mlp-tiny``), plain regression KD (``outlier-rejection``
with ``threshold: null``), teacher outlier rejection (threshold 2) and outlier rejection with the
two-head student (``mlp-two-head``, ``teacher_head``). Test MSE, mean ± std over seeds.

Every model keeps the weights of its best validation epoch (accuracy, or lowest MSE); nothing is chosen
on the test set. Hyper-parameters are the papers' released defaults, not tuned here. With the defaults
(one torch thread: on shared cores, more threads fought each other and ran tens of times slower in our
measurements) the whole run took 13 minutes on 2 CPU cores shared with other work (BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

SGD = {"name": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4}
"""The knowledge table's optimizer (with Adam 0.003 the CNN teachers under-fitted: cnn-small 79.6%, below the
MLP student alone at 85.6%)."""

CLASSIFICATION = ("teacher", "student alone", "student KD (frozen teacher)", "student MetaDistill",
                  "MetaDistill's teacher after")
REGRESSION = ("teacher", "student alone", "plain regression KD", "outlier rejection",
              "outlier rejection + two-head student")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mentor bench metateacher", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--dataset", default="fashion-mnist", help="classification dataset")
    parser.add_argument("--limit", type=int, default=10000, help="training (and test) images of the classification")
    parser.add_argument("--epochs", type=int, default=10, help="epochs of every classification model")
    parser.add_argument("--teacher", default="cnn-medium", help="the classification teacher (a zoo name)")
    parser.add_argument("--regression-limit", type=int, default=None, help="diabetes samples (default: all 442)")
    parser.add_argument("--regression-epochs", type=int, default=60, help="epochs of every regression model")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (one: no fight over shared cores)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    return parser.parse_args(argv)


def seeded(seed: int, build: Callable[[], Any]) -> Any:
    import torch

    torch.manual_seed(seed)
    return build()


def classification(args: argparse.Namespace, seed: int) -> tuple[dict[str, float], dict[str, float]]:
    """Test accuracies (%) and training minutes of each model of one seed."""
    import mentor

    data = mentor.data.load(args.dataset, validation=0.1, seed=seed, limit=args.limit)
    shape, classes = data.input_shape, data.num_classes
    train = {"epochs": args.epochs, "batch_size": 64, "optimizer": SGD, "scheduler": "cosine", "seed": seed,
             "progress": False}
    teacher = seeded(seed, lambda: mentor.models.create(args.teacher, num_classes=classes, input_shape=shape))
    student = seeded(seed + 1, lambda: mentor.models.create("mlp-small", num_classes=classes, input_shape=shape))
    accuracy, minutes = {}, {}
    started = time.perf_counter()
    accuracy["teacher"] = mentor.train(teacher, data, **train).accuracies()["model"]
    minutes["teacher"], started = (time.perf_counter() - started) / 60, time.perf_counter()
    accuracy["student alone"] = mentor.train(copy.deepcopy(student), data, **train).accuracies()["model"]
    minutes["student alone"], started = (time.perf_counter() - started) / 60, time.perf_counter()
    kd = mentor.knowledge.create("kd", temperature=4.0, alpha=0.9)
    result = mentor.distill(copy.deepcopy(teacher), copy.deepcopy(student), data, kd, **train)
    accuracy[CLASSIFICATION[2]] = result.accuracies()["student distilled"]
    minutes[CLASSIFICATION[2]], started = (time.perf_counter() - started) / 60, time.perf_counter()
    meta = mentor.collaborate("meta-distill", [copy.deepcopy(teacher), copy.deepcopy(student)], data,
                              {"teacher_epochs": 0}, **train).accuracies()
    minutes[CLASSIFICATION[3]] = (time.perf_counter() - started) / 60
    accuracy[CLASSIFICATION[3]], accuracy[CLASSIFICATION[4]] = meta["student"], meta["teacher"]
    return {k: 100 * v for k, v in accuracy.items()}, minutes


def regression(args: argparse.Namespace, seed: int) -> dict[str, float]:
    """Test MSE of each model of one seed."""
    import mentor

    data = mentor.data.load("diabetes", validation=0.15, seed=seed, limit=args.regression_limit)
    train = {"epochs": args.regression_epochs, "batch_size": 32, "lr": 0.01, "seed": seed, "progress": False}
    def create(name: str, offset: int) -> Any:
        return seeded(seed + offset, lambda: mentor.models.create(name, num_classes=1, input_shape=data.input_shape))

    teacher = create("mlp-medium", 0)
    errors = {"teacher": mentor.train(teacher, data, **train).rows[0].errors["mse"],
              "student alone": mentor.train(create("mlp-tiny", 1), data, **train).rows[0].errors["mse"]}
    variants = {"plain regression KD": ("mlp-tiny", {"threshold": None}),
                "outlier rejection": ("mlp-tiny", {"threshold": 2.0}),
                "outlier rejection + two-head student": ("mlp-two-head", {"threshold": 2.0,
                                                                          "teacher_head": "teacher_head"})}
    for role, (model, params) in variants.items():
        plan = mentor.knowledge.create("outlier-rejection", **params)
        result = mentor.distill(copy.deepcopy(teacher), create(model, 1), data, plan, **train)
        errors[role] = next(row for row in result.rows if row.role == "student distilled").errors["mse"]
    return errors


def summarize(values: list[dict[str, float]], roles: tuple[str, ...], digits: int) -> list[str]:
    return [_common.table(["model", "mean ± std"], [[role, mean_std([v[role] for v in values], digits)]
                                                    for role in roles])]


def mean_std(values: list[float], digits: int) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.{digits}f} ± {spread:.{digits}f}"


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    import torch

    torch.set_num_threads(args.threads)
    seeds = [int(seed) for seed in args.seeds.split(",")]
    started = time.perf_counter()
    accuracies, minutes, errors = [], [], []
    for seed in seeds:
        accuracy, spent = classification(args, seed)
        accuracies.append(accuracy)
        minutes.append(spent)
        print(f"seed {seed}: " + ", ".join(f"{k} {v:.2f}%" for k, v in accuracy.items()), flush=True)
        errors.append(regression(args, seed))
        print(f"seed {seed}: " + ", ".join(f"{k} MSE {v:.1f}" for k, v in errors[-1].items()), flush=True)
    total = (time.perf_counter() - started) / 60
    timing = ", ".join(f"{role} {statistics.fmean(m[role] for m in minutes):.2f}" for role in CLASSIFICATION[:4])
    lines = [
        f"Classification: {args.dataset}, {args.limit} training images (10% validation), test set cut to "
        f"{args.limit}; teacher `{args.teacher}`, student `mlp-small`; {args.epochs} epochs, SGD 0.05 "
        f"(momentum 0.9, Nesterov, weight decay 5e-4), cosine, batch 64; seeds {args.seeds}; {args.threads} torch "
        "thread(s). Test accuracy %:", "",
        *summarize(accuracies, CLASSIFICATION, 2), "",
        f"Mean training minutes per seed: {timing}.", "",
        f"Regression: diabetes (442 samples: 25% test, 15% of the rest validation); teacher `mlp-medium`, student "
        f"`mlp-tiny` (`mlp-two-head` for the two-head row); {args.regression_epochs} epochs, Adam 0.01, batch 32. "
        "Test MSE (target units²):", "", *summarize(errors, REGRESSION, 1), "",
        f"Whole run: {total:.1f} min.",
    ]
    text = "\n".join(lines)
    print("\n" + text)
    if not args.no_write:
        body = _common.section_body(_common.invocation("metateacher", argv), lines)
        _common.write_section("metateacher", "Learning teachers: MetaDistill and regression outlier rejection", body)
        print(f"\nwritten to {_common.BENCHMARKS_MD}")


if __name__ == "__main__":
    main()
