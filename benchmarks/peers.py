"""Mentor beside torchdistill and a plain PyTorch loop on one KD recipe (``mentor bench peers``).

The recipe: Fashion-MNIST, a cnn-medium teacher (trained first, once, and shared by every run),
distilled into a cnn-small student with KD (Hinton et al. 2015: ``(1-α)·CE + α·τ²·KL``, τ=4, α=0.9),
Adam, constant learning rate, batch 128. Every run starts from the same student weights, reads the
same data tensors, trains the same number of epochs and sees the same batches: in round r every run
shuffles epoch e by Mentor's ``epoch_generator(r, e)`` (torchdistill through a sampler, :class:`EpochOrder`,
in its own DataLoader) and drops the last partial batch, as Mentor's loop does, because the order of the
batches alone moves this 5-epoch student's accuracy by several points. The trained students are evaluated
by the same code in this process. Each run is a separate process (its peak RSS is read with ``os.wait4``),
and its training time is measured inside it, from the first batch to the last optimizer step.

Runs:
* Mentor, teacher-output cache (the recipe default: ``train.teacher_cache: true``), through
  ``mentor.engine.fit`` and the offline scheme; the cache is built inside the timed part;
* Mentor, live teacher (``teacher_cache`` off);
* torchdistill (PyPI ``torchdistill``), its DistillationBox with its KDLoss, and its DataLoader
  (``requires_supp`` wrapper, the :class:`EpochOrder` sampler, default collation, num_workers 0);
* a plain PyTorch loop written here: a shuffled index per epoch, teacher under ``no_grad``.

torchdistill needs torchvision, and PyPI's torchvision does not import beside the local CPU wheel of
torch 2.13.0; so this script installs ``torch==2.14.1 torchvision==0.29.1 torchdistill`` into its own
venv under the cache folder (``cache_dir()/bench/peers-venv``, about 5.7 GB, a CUDA build that runs on
the CPU) and runs *all* the runs there, so they share one torch version; Mentor comes from this
checkout's ``src`` through PYTHONPATH. When torchdistill cannot be installed or imported, the script
says why and compares Mentor with the plain loop in the current environment instead.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

PINS = ["torch==2.14.1", "torchvision==0.29.1", "torchdistill==1.1.5"]
EXTRA = ["pydantic>=2.5", "tqdm>=4.60", "numpy>=1.24", "pyyaml>=6.0"]  # what Mentor imports
RUNS = {
    "mentor-cache": "Mentor (teacher-output cache)",
    "mentor-live": "Mentor (live teacher)",
    "torchdistill": "torchdistill",
    "plain": "plain PyTorch loop",
}


# ------------------------------------------------------------------------------------------- workers
class EpochOrder(torch.utils.data.Sampler[int]):
    """A sampler giving epoch e the order of Mentor's shuffling, ``randperm(n, epoch_generator(seed, e))``."""

    def __init__(self, data: Any, seed: int) -> None:
        self.size, self.seed, self.epoch = len(data), seed, 0

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[int]:
        from mentor.data.batches import epoch_generator

        order = torch.randperm(self.size, generator=epoch_generator(self.seed, self.epoch))
        self.epoch += 1
        return iter(order.tolist())


def load_job(job: Path, seed: int) -> tuple[dict[str, Any], dict[str, torch.Tensor], torch.nn.Module, torch.nn.Module]:
    """Settings, data tensors, the trained teacher (eval mode) and the initial student of a job folder."""
    from mentor.models import create

    settings = {**json.loads((job / "settings.json").read_text()), "seed": seed}
    if settings.get("threads"):
        torch.set_num_threads(settings["threads"])
    data = torch.load(job / "data.pt")
    shape, classes = tuple(settings["input_shape"]), settings["num_classes"]
    teacher = create(settings["teacher"], classes, shape)
    teacher.load_state_dict(torch.load(job / "teacher.pt"))
    student = create(settings["student"], classes, shape)
    student.load_state_dict(torch.load(job / "student-init.pt"))
    torch.manual_seed(settings["seed"])
    return settings, data, teacher.eval(), student


def train_mentor(settings: dict[str, Any], data: dict[str, torch.Tensor], teacher: torch.nn.Module,
                 student: torch.nn.Module, cache: bool) -> None:
    from mentor.data import ArrayDataset
    from mentor.engine import FitSettings, OptimizerSettings, fit
    from mentor.knowledge import create
    from mentor.schemes import Offline

    objective = create("kd", temperature=settings["temperature"], alpha=settings["alpha"])
    fit_settings = FitSettings(epochs=settings["epochs"], batch_size=settings["batch_size"], progress=False,
                               seed=settings["seed"], teacher_cache=cache,
                               optimizer=OptimizerSettings("adam", settings["lr"]))
    fit(Offline(student, objective, teacher), ArrayDataset(data["train_x"], data["train_y"]), None, fit_settings)


def train_torchdistill(settings: dict[str, Any], data: dict[str, torch.Tensor], teacher: torch.nn.Module,
                       student: torch.nn.Module) -> None:
    """torchdistill's own way: a DistillationBox configured by a dict, driven by the usual epoch loop."""
    from torch.utils.data import TensorDataset
    from torchdistill.core.distillation import get_distillation_box

    kd = {"student_module_path": ".", "student_module_io": "output", "teacher_module_path": ".",
          "teacher_module_io": "output", "temperature": settings["temperature"],
          # torchdistill's alpha weighs the hard CE term, its beta = 1 - alpha the soft one
          "alpha": 1.0 - settings["alpha"],
          "reduction": "batchmean"}
    config = {
        "num_epochs": settings["epochs"],
        "train_data_loader": {"dataset_id": "train", "requires_supp": True,
                              "sampler": {"class_or_func": EpochOrder, "kwargs": {"seed": settings["seed"]}},
                              "kwargs": {"batch_size": settings["batch_size"], "num_workers": 0,
                                         "drop_last": True}},
        "teacher": {"requires_grad": False, "forward_proc": "forward_batch_only"},
        "student": {"forward_proc": "forward_batch_only"},
        "optimizer": {"key": "Adam", "kwargs": {"lr": settings["lr"]}},
        "criterion": {"key": "WeightedSumLoss",
                      "kwargs": {"sub_terms": {"kd": {"criterion": {"key": "KDLoss", "kwargs": kd}, "weight": 1.0}}}},
    }
    box = get_distillation_box(teacher, student, {"train": TensorDataset(data["train_x"], data["train_y"])},
                               config, torch.device("cpu"), None, False, 1)
    for epoch in range(settings["epochs"]):
        box.pre_epoch_process(epoch=epoch)
        for sample_batch, targets, supp_dict in box.train_data_loader:
            loss = box.forward_process(sample_batch, targets, supp_dict)
            box.post_forward_process(loss=loss)
        box.post_epoch_process()


def train_plain(settings: dict[str, Any], data: dict[str, torch.Tensor], teacher: torch.nn.Module,
                student: torch.nn.Module) -> None:
    """A minimal hand-written KD loop: (1-α)·CE(y, z_S) + α·τ²·KL(softmax(z_T/τ) || softmax(z_S/τ))."""
    from mentor.data.batches import epoch_generator

    inputs, targets = data["train_x"], data["train_y"]
    tau, alpha, batch = settings["temperature"], settings["alpha"], settings["batch_size"]
    optimizer = torch.optim.Adam(student.parameters(), lr=settings["lr"])
    student.train()
    for epoch in range(settings["epochs"]):
        order = torch.randperm(len(inputs), generator=epoch_generator(settings["seed"], epoch))
        for start in range(0, len(inputs) - batch + 1, batch):  # the last partial batch dropped
            index = order[start:start + batch]
            x, y = inputs[index], targets[index]
            with torch.no_grad():
                teacher_logits = teacher(x)
            logits = student(x)
            soft = F.kl_div(F.log_softmax(logits / tau, dim=1), F.log_softmax(teacher_logits / tau, dim=1),
                            reduction="batchmean", log_target=True)
            loss = (1 - alpha) * F.cross_entropy(logits, y) + alpha * tau * tau * soft
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()


def worker(name: str, job: Path, seed: int) -> None:
    """One run, in its own process: train, save the student, print the timing as JSON."""
    settings, data, teacher, student = load_job(job, seed)
    started = time.perf_counter()
    if name in ("mentor-cache", "mentor-live"):
        train_mentor(settings, data, teacher, student, cache=name == "mentor-cache")
    elif name == "torchdistill":
        train_torchdistill(settings, data, teacher, student)
    else:
        train_plain(settings, data, teacher, student)
    seconds = time.perf_counter() - started
    torch.save(student.state_dict(), job / f"student-{name}.pt")
    print(json.dumps({"seconds": seconds, "torch": torch.__version__}))


# ------------------------------------------------------------------------------------ the venv for peers
def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def disk_used(path: Path) -> str:
    done = subprocess.run(["du", "-sh", str(path)], capture_output=True, text=True, check=False)
    return done.stdout.split("\t")[0] if done.returncode == 0 else "?"


def prepare_torchdistill(venv: Path, remove_on_failure: bool) -> tuple[Path | None, str]:
    """The venv's python when torchdistill imports there; else ``None`` and the reason."""
    python = venv_python(venv)
    probe = [str(python), "-c", "import torch, torchvision, torchdistill, pydantic, tqdm\n"
             "from torchdistill.core.distillation import get_distillation_box\n"
             "print(torch.__version__, torchvision.__version__, torchdistill.__version__)"]
    if python.exists() and subprocess.run(probe, capture_output=True, check=False).returncode == 0:
        return python, f"venv {venv} ({disk_used(venv)})"
    free_gb = shutil.disk_usage(venv.parent if venv.parent.exists() else Path.home()).free / 1e9
    if free_gb < 10:
        return None, f"only {free_gb:.1f} GB free; torch 2.14.1 + torchvision need about 6 GB"
    print(f"peers: installing {' '.join(PINS)} into {venv} (about 5.7 GB, once)", flush=True)
    steps = [[sys.executable, "-m", "venv", "--clear", str(venv)],
             [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *PINS, *EXTRA]]
    failure = ""
    for step in steps:
        try:
            venv.parent.mkdir(parents=True, exist_ok=True)
            done = subprocess.run(step, capture_output=True, text=True, check=False)
        except OSError as error:
            failure = f"cannot create {venv}: {error}"
            break
        if done.returncode != 0:
            last = ((done.stderr or done.stdout).strip().splitlines() or ["?"])[-1]
            failure = f"`{' '.join(step[-3:])}` failed: {last}"
            break
    if not failure:
        done = subprocess.run(probe, capture_output=True, text=True, check=False)
        if done.returncode == 0:
            return python, f"venv {venv} ({disk_used(venv)}): torch, torchvision, torchdistill {done.stdout.strip()}"
        failure = "torchdistill does not import: " + (done.stderr.strip().splitlines() or ["?"])[-1]
    used = disk_used(venv)
    if remove_on_failure:
        shutil.rmtree(venv, ignore_errors=True)
        failure += f" (the venv took {used}; removed)"
    return None, failure


# ------------------------------------------------------------------------------------------- the driver
def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mentor bench peers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="first N train and test samples (default: all)")
    parser.add_argument("--epochs", type=int, default=5, help="student epochs")
    parser.add_argument("--teacher-epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (student and teacher)")
    parser.add_argument("--temperature", type=float, default=4.0)
    parser.add_argument("--alpha", type=float, default=0.9, help="weight of the soft term (Mentor's kd alpha)")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of all runs, interleaved; medians")
    parser.add_argument("--threads", type=int, default=None, help="torch threads in every run")
    parser.add_argument("--venv", type=Path, default=None, help="where to install torchdistill")
    parser.add_argument("--no-torchdistill", action="store_true", help="compare with the plain loop only")
    parser.add_argument("--keep-failed-venv", action="store_true", help="keep the venv when torchdistill fails")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    parser.add_argument("--worker", choices=sorted(RUNS), help=argparse.SUPPRESS)
    parser.add_argument("--job", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def write_job(job: Path, args: argparse.Namespace) -> tuple[Any, float]:
    """Data tensors, the trained teacher and the initial student, saved for the runs; teacher accuracy."""
    from mentor import data as datasets
    from mentor.engine import FitSettings, OptimizerSettings, evaluate, fit
    from mentor.losses import CE, Objective
    from mentor.models import create
    from mentor.schemes import Offline

    splits = datasets.load("fashion-mnist", validation=0.0, seed=0, limit=args.limit)
    settings = {"teacher": "cnn-medium", "student": "cnn-small", "epochs": args.epochs, "batch_size": args.batch_size,
                "lr": args.lr, "temperature": args.temperature, "alpha": args.alpha,
                "threads": args.threads, "num_classes": splits.num_classes, "input_shape": list(splits.input_shape)}
    (job / "settings.json").write_text(json.dumps(settings, indent=2))
    torch.save({"train_x": splits.train.inputs, "train_y": splits.train.targets}, job / "data.pt")
    torch.manual_seed(0)
    teacher = create("cnn-medium", splits.num_classes, splits.input_shape)
    student = create("cnn-small", splits.num_classes, splits.input_shape)
    torch.save(student.state_dict(), job / "student-init.pt")
    print(f"peers: training the teacher (cnn-medium, {args.teacher_epochs} epochs, {len(splits.train)} samples)",
          flush=True)
    fit(Offline(teacher, Objective(CE())), splits.train, None,
        FitSettings(epochs=args.teacher_epochs, batch_size=args.batch_size, progress=False,
                    optimizer=OptimizerSettings("adam", args.lr)))
    torch.save(teacher.state_dict(), job / "teacher.pt")
    return splits, evaluate(teacher, splits.test)["accuracy"]


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.worker:
        worker(args.worker, args.job, args.seed)
        return
    from mentor.data import cache_dir
    from mentor.engine import evaluate
    from mentor.models import create

    venv = args.venv or cache_dir() / "bench" / "peers-venv"
    python, note = (None, "skipped (--no-torchdistill)") if args.no_torchdistill else \
        prepare_torchdistill(venv, remove_on_failure=not args.keep_failed_venv)
    runs = list(RUNS) if python is not None else [name for name in RUNS if name != "torchdistill"]
    python = python or Path(sys.executable)
    print(f"peers: torchdistill: {note}", flush=True)

    with tempfile.TemporaryDirectory(prefix="mentor-peers-") as folder:
        job = Path(folder)
        splits, teacher_accuracy = write_job(job, args)
        env = {**os.environ, "PYTHONPATH": str(_common.ROOT / "src"), "MENTOR_CACHE": str(job / "cache")}
        results: dict[str, list[dict[str, Any]]] = {name: [] for name in runs}
        for round_ in range(args.repeats):
            for name in runs:
                shutil.rmtree(job / "cache", ignore_errors=True)  # every cached run builds its cache
                child = _common.run_child([str(python), str(Path(__file__).resolve()), "--worker", name,
                                           "--job", str(job), "--seed", str(round_)], env=env).check(f"the {name} run")
                timing = json.loads(child.stdout.strip().splitlines()[-1])
                student = create("cnn-small", splits.num_classes, splits.input_shape)
                student.load_state_dict(torch.load(job / f"student-{name}.pt"))
                accuracy = evaluate(student, splits.test)["accuracy"]
                results[name].append({**timing, "accuracy": accuracy, "peak_mb": child.peak_rss_mb,
                                      "process_seconds": child.seconds})
                print(f"  round {round_ + 1}/{args.repeats}: {RUNS[name]}: train {timing['seconds']:.2f} s, "
                      f"test accuracy {accuracy:.2%}, peak RSS {child.peak_rss_mb:.0f} MB", flush=True)

    seconds = {name: _common.median([r["seconds"] for r in records]) for name, records in results.items()}
    reference = seconds.get("torchdistill", seconds["plain"])
    rows = []
    for name, records in results.items():
        accuracies = [r["accuracy"] * 100 for r in records]
        spread = f" ± {statistics.stdev(accuracies):.2f}" if len(accuracies) > 1 else ""
        rows.append([RUNS[name], records[0]["torch"], _common.spread([r["seconds"] for r in records]),
                     f"{seconds[name] / reference:.2f}", f"{statistics.mean(accuracies):.2f}{spread}",
                     f"{max(r['peak_mb'] for r in records):.0f}"])
    against = "torchdistill" if "torchdistill" in results else "plain loop"
    text = _common.table(["run", "torch", "train s: median (min-max)", f"÷ {against}", "test acc %: mean ± std",
                          "peak RSS MB"], rows)
    print(f"\nteacher test accuracy {teacher_accuracy:.2%}\n\n{text}")
    if args.no_write:
        return
    body = _common.section_body(_common.invocation("peers", argv), [
        f"Fashion-MNIST ({len(splits.train):,} train / {len(splits.test):,} test), teacher cnn-medium "
        f"({args.teacher_epochs} epochs, test accuracy {teacher_accuracy:.2%}) -> student cnn-small, "
        f"KD τ={args.temperature} α={args.alpha}, Adam lr {args.lr}, batch {args.batch_size}, {args.epochs} epochs, "
        f"same initial student; {args.repeats} round(s), round r with the same batches for every run (shuffled by "
        f"seed r, the last partial batch dropped), times as "
        "medians, accuracy as mean ± std over the rounds. Train s: from the first batch to the last step inside each "
        "run's process (for Mentor with the cache, the cache build included).",
        f"torchdistill: {note}.",
        "",
        text,
    ])
    _common.write_section("peers", "Mentor beside torchdistill and a plain loop", body)
    print(f"\nwritten to {_common.BENCHMARKS_MD}")


if __name__ == "__main__":
    main()
