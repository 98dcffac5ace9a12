"""PATE on MNIST (Papernot et al. 2017, 2018): student accuracy against the privacy spent (``mentor bench pate``).

    mentor bench pate [--teachers 250] [--queries 100,300,1000] [--student mlp-medium] [--channels 16,32,64]
                      [--mean-teacher] [--seed 0] [--no-write]

The 60,000 MNIST training images are the private data: ``--teachers`` MLP teachers (one hidden layer of
``--hidden`` units) each learn their own disjoint 60,000/n images (240 for 250 teachers, as in the 2017
paper), all in one batched model. MNIST's test set is the public data, as in the papers: the student may query
its first 9,000 images and is evaluated on the last 1,000. The teachers are trained and their votes counted
once; then, for each aggregator and query count, the queries are answered, the accountant gives the
data-dependent and data-independent ε at δ = 1e-5, and the student (``--student``, by default an MLP with two
hidden layers of 256) learns the answers, then, with self-training, also its own confident labels on the rest of
the 9,000 (no privacy cost). With ``--mean-teacher`` a third student learns semi-supervised: a mean teacher
(Tarvainen & Valpola 2017) on the answers and the rest of the 9,000 unlabelled, with the consistency weight and
labelled share that `mentor bench semi` chose on its validation split (MNIST training images, 1,000 labels):
the PATE student has no labelled validation data that would not cost privacy. Beside it, its fair baseline:
the same student from the same initial weights on the answers alone, repeated to as many samples per epoch as
the scheme's training set, under the same input noise (as `mentor bench semi`'s baseline).

Aggregators: LNMax with γ = 0.05 (the 2017 paper's MNIST setting), GNMax with σ = 40 and Confident-GNMax with
T = 200, σ1 = 150, σ2 = 40 (the 2018 paper's MNIST setting). The 2017 paper's reference, 98.00% at ε = 2.04
(δ = 1e-5, 100 queries, LNMax), stands beside the table; it used CNN teachers and a GAN-based semi-supervised
student, so the gap to it is the student's and the teachers' architecture, not the aggregation.

With the defaults the whole run took under 2 minutes on 2 CPU cores (BENCHMARKS.md); ``--limit`` and small
``--teachers``/``--queries`` make a smoke run. The table goes into BENCHMARKS.md between
``<!-- pate:start -->`` and ``<!-- pate:end -->``.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import invocation, section_body, table, write_section  # noqa: E402

import mentor  # noqa: E402
from mentor.data import ArrayDataset, Splits  # noqa: E402
from mentor.engine import FitSettings, MetricsLog, OptimizerSettings, seed_everything  # noqa: E402
from mentor.pipelines.pate_steps import learn, marked_pool, public_split, train_student, train_teachers  # noqa: E402
from mentor.pipelines.result import measure  # noqa: E402
from mentor.schemes import SCHEMES  # noqa: E402
from mentor.teachers.pate import Answers, ConfidentGNMax, GNMax, LNMax, answer_queries, vote_histograms  # noqa: E402

DELTA = 1e-5
PUBLIC_FRACTION = 0.9  # the first 9,000 of MNIST's 10,000 test images; the last 1,000 evaluate
PAPER = "Papernot et al. 2017: 98.00% at ε = 2.04, δ = 1e-5, 100 queries (LNMax γ = 0.05, 250 CNN teachers)"


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mentor bench pate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--teachers", type=int, default=250, help="number of teachers (partitions)")
    parser.add_argument("--hidden", type=int, default=64, help="hidden units of each teacher's MLP")
    parser.add_argument("--teacher-epochs", type=int, default=40, help="epochs of every teacher")
    parser.add_argument("--student-epochs", type=int, default=20, help="epochs of every student")
    parser.add_argument("--student", default="mlp-medium", help="the students' model (`mentor list models`)")
    parser.add_argument("--channels", default="16,32,64", help="stage widths when --student is cnn")
    parser.add_argument("--mean-teacher", action="store_true", help="also a semi-supervised mean-teacher student")
    parser.add_argument("--queries", default="100,300,1000", help="query counts, comma-separated")
    parser.add_argument("--aggregators", default="lnmax,gnmax,confident-gnmax", help="comma-separated")
    parser.add_argument("--limit", type=int, default=None, help="first N training and test images (smoke runs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    return parser.parse_args(argv)


MEAN_TEACHER = {"consistency": 100.0, "labelled_share": 0.5}
"""Chosen on validation by `mentor bench semi --dataset mnist` (BENCHMARKS.md), from 10 and 100 and 0.25 and 0.5."""
AGGREGATORS = {"lnmax": LNMax(gamma=0.05), "gnmax": GNMax(sigma=40.0),
               "confident-gnmax": ConfidentGNMax(threshold=200.0, sigma1=150.0, sigma2=40.0)}


def new_student(args: argparse.Namespace, shape: tuple[int, ...]) -> torch.nn.Module:
    """A fresh student: ``--student``, with ``--channels`` when it is ``cnn``."""
    options = {"channels": [int(c) for c in args.channels.split(",")]} if args.student == "cnn" else {}
    return mentor.models.create(args.student, 10, shape, **options)


def labelled_only(student: torch.nn.Module, marked: ArrayDataset, settings: FitSettings) -> torch.nn.Module:
    """The mean-teacher student's fair baseline (module docstring), trained in place."""
    scheme = SCHEMES.create("mean-teacher", [student], **MEAN_TEACHER)
    learn(student, scheme.alone_training_set(marked), replace(settings, augment=scheme.augmentation()), MetricsLog(),
          None, "labelled-only")
    return student


def student_accuracies(args: argparse.Namespace, public: Splits, pool: ArrayDataset, answers: Answers,
                       settings: FitSettings) -> list[float]:
    """Each student column's accuracy on the evaluation images (``public.test``), every student from the same
    initial weights: the answers alone, with self-training, and with ``--mean-teacher`` its fair baseline and
    the mean-teacher student."""
    def taught(self_training: bool, semi: dict[str, float] | None = None) -> torch.nn.Module:
        return train_student(lambda: new_student(args, public.input_shape), pool, answers, self_training, settings,
                             MetricsLog(), None, semi)[0]

    students = [lambda: taught(False), lambda: taught(True)]
    if args.mean_teacher:
        students += [lambda: labelled_only(new_student(args, public.input_shape), marked_pool(pool, answers), settings),
                     lambda: taught(False, MEAN_TEACHER)]
    accuracies = []
    for train in students:
        seed_everything(args.seed)
        accuracies.append(measure("student", args.seed, train(), public, 1).accuracy)
    return accuracies


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    started = time.perf_counter()
    data = mentor.data.load("mnist", validation=0, seed=args.seed, limit=args.limit)
    pool, evaluation = public_split(data.test, PUBLIC_FRACTION)
    public = replace(data, test=evaluation)
    queries = sorted(int(q) for q in args.queries.split(","))
    seed_everything(args.seed)
    teacher_settings = FitSettings(epochs=args.teacher_epochs, batch_size=32, progress=False, seed=args.seed,
                                   optimizer=OptimizerSettings(name="adam", lr=3e-3))
    student_settings = replace(teacher_settings, epochs=args.student_epochs, batch_size=64)
    hidden = args.hidden
    bank = train_teachers(lambda: mentor.models.create("mlp", 10, data.input_shape, hidden=[hidden]), data.train,
                          args.teachers, teacher_settings, MetricsLog(), None)
    teachers_seconds = time.perf_counter() - started
    votes = vote_histograms(bank, pool.inputs[: max(queries)], data.num_classes)
    single = measure("teacher", args.seed, bank.members()[0], public, 1).accuracy
    plurality = float((votes.argmax(axis=1) == pool.targets[: len(votes)].numpy()).mean())
    print(f"{args.teachers} teachers in {teachers_seconds:.0f} s; teacher 0 {single:.2%}, noiseless plurality on "
          f"the queries {plurality:.2%}", flush=True)
    rows = []
    for name in args.aggregators.split(","):
        for count in queries:
            answers = answer_queries(votes, AGGREGATORS[name], delta=DELTA, max_queries=count, seed=args.seed)
            answered = answers.answered
            right = (answers.labels[answered] == pool.targets[: len(answers.labels)].numpy()[answered]).mean()
            accuracies = student_accuracies(args, public, pool, answers, student_settings)
            rows.append([name, count, int(answered.sum()), f"{100 * right:.2f}", f"{answers.epsilon:.2f}",
                         f"{answers.epsilon_data_independent:.2f}", *(f"{100 * a:.2f}" for a in accuracies)])
            print("  " + " | ".join(map(str, rows[-1])), flush=True)
    minutes = (time.perf_counter() - started) / 60
    header = ["aggregator", "queries", "answered", "labels right %", "ε data-dependent", "ε data-independent",
              "student %", "student + self-training %"] + ["labelled only, as many steps %",
                                                           "student, mean teacher %"] * args.mean_teacher
    described = {"mlp-medium": "MLP 784-256-256-10", "cnn": f"CNN of stage widths {args.channels}"}.get(
        args.student, f"`{args.student}`")
    semi = (f"; the mean-teacher student: consistency {MEAN_TEACHER['consistency']:g}, labelled share "
            f"{MEAN_TEACHER['labelled_share']:g}, shift ≤ 2 px and Gaussian noise 0.15, the averaged teacher's "
            "weights kept" if args.mean_teacher else "")
    lines = [f"{args.teachers} MLP teachers (784-{hidden}-10, {len(data.train) // args.teachers} private images "
             f"each, {args.teacher_epochs} epochs): one teacher {100 * single:.2f}%, their noiseless plurality "
             f"{100 * plurality:.2f}% on the first {len(votes)} queries. Student: {described}, "
             f"{args.student_epochs} epochs{semi}; evaluated on the last {len(evaluation)} test images; δ = {DELTA:g}; "
             f"seed {args.seed}; {minutes:.1f} minutes in all.", "", table(header, rows), "",
             f"Reference: {PAPER}."]
    body = section_body(invocation("pate", argv), lines)
    print(body)
    if not args.no_write:
        write_section("pate", "PATE on MNIST: student accuracy against ε", body)


if __name__ == "__main__":
    main(sys.argv[1:])
