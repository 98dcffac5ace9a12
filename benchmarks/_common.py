"""Shared helpers of the benchmark scripts: timing, child processes, and the BENCHMARKS.md sections.

Every script writes its own section of ``BENCHMARKS.md`` between ``<!-- NAME:start -->`` and
``<!-- NAME:end -->`` (the section is appended when the markers are missing), together with the
command that produced it and the machine it ran on, so a table can always be reproduced.
"""

from __future__ import annotations

import math
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
"""The checkout: benchmarks/.. ."""
BENCHMARKS_MD = Path(os.environ.get("MENTOR_BENCHMARKS_MD", ROOT / "BENCHMARKS.md"))
"""Where the tables go (``$MENTOR_BENCHMARKS_MD`` points elsewhere, e.g. for a trial run)."""


# ----------------------------------------------------------------------------------------------- timing
def median(values: Sequence[float]) -> float:
    """Median of a non-empty sequence."""
    if not values:
        raise ValueError("median of no values")
    return float(statistics.median(values))


def spread(values: Sequence[float], digits: int = 3) -> str:
    """``median (min-max)`` of timings (seconds unless said), for a table cell."""
    return f"{median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def percent(values: Sequence[float]) -> str:
    """Fractions as a percentage cell: ``mean ± std`` over the seeds (one value alone when there is one)."""
    if len(values) == 1:
        return f"{100 * values[0]:.2f}"
    return f"{100 * statistics.fmean(values):.2f} ± {100 * statistics.stdev(values):.2f}"


def gain_and_spread(ours: Sequence[float], reference: Sequence[float]) -> tuple[float, float]:
    """Points gained by ``ours`` over ``reference`` (fractions over seeds) and the seeds' spread √(std² + std_ref²)."""
    difference = 100 * (statistics.fmean(ours) - statistics.fmean(reference))
    spread = 100 * math.hypot(*(statistics.stdev(v) if len(v) > 1 else 0.0 for v in (ours, reference)))
    return difference, spread


def paired_gain(ours: Sequence[float], reference: Sequence[float]) -> tuple[list[float], float, float]:
    """Per-seed points gained by ``ours`` over ``reference`` (same seeds, same order), their mean and their std.

    For runs paired by seed (a student and its own teacher), the spread of the gain is the std of the
    per-seed gains: what the two runs of a seed share (its labels, its data order) cancels in the difference.
    """
    if len(ours) != len(reference):
        raise ValueError(f"paired_gain needs one value per seed on both sides; got {len(ours)} and {len(reference)}")
    gains = [100 * (a - b) for a, b in zip(ours, reference, strict=True)]
    return gains, statistics.fmean(gains), statistics.stdev(gains) if len(gains) > 1 else 0.0


@contextmanager
def stopwatch() -> Iterator[Callable[[], float]]:
    """``with stopwatch() as elapsed: ...`` then ``elapsed()`` gives the seconds spent inside."""
    started = time.perf_counter()
    end: list[float] = []
    try:
        yield lambda: (end[0] if end else time.perf_counter()) - started
    finally:
        end.append(time.perf_counter())


def interleaved(measures: dict[str, Callable[[], float]], repeats: int, warmup: int = 1,
                echo: Callable[[str], None] = print) -> dict[str, list[float]]:
    """Run every measure once per round, ``warmup + repeats`` rounds; keep the last ``repeats`` values.

    Interleaving (a b c, a b c, ...) instead of (a a a, b b b, ...) spreads slow drifts of the machine
    (another job starting, thermal limits) evenly over the variants being compared.

    Args:
        measures: name -> function running one measurement and returning its seconds.
        repeats: rounds kept.
        warmup: rounds run first and thrown away (allocator, caches, lazy initialisation).
        echo: progress lines.
    """
    kept: dict[str, list[float]] = {name: [] for name in measures}
    for round_ in range(warmup + repeats):
        label = "warm-up" if round_ < warmup else f"round {round_ - warmup + 1}/{repeats}"
        for name, measure in measures.items():
            seconds = measure()
            if round_ >= warmup:
                kept[name].append(seconds)
            echo(f"  {label}: {name} {seconds:.3f} s")
    return kept


# -------------------------------------------------------------------------------------- child processes
@dataclass
class Child:
    """A finished child process: exit status, wall time, peak resident memory, its output."""

    returncode: int
    seconds: float
    peak_rss_mb: float
    stdout: str
    stderr: str

    def check(self, what: str) -> Child:
        """Raise with the end of stderr when the child failed."""
        if self.returncode != 0:
            tail = "\n".join((self.stderr or self.stdout).strip().splitlines()[-25:])
            raise SystemExit(f"{what} failed with exit status {self.returncode}:\n{tail}")
        return self


def run_child(command: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
              echo: bool = False, timeout: float | None = None) -> Child:
    """Run ``command``; measure its wall time and peak RSS with ``os.wait4``.

    The peak comes from the child's ``rusage.ru_maxrss`` (KiB on Linux), which covers the child and
    the descendants it waited for, as the largest single process among them (not their sum).

    Args:
        command: program and arguments.
        env: environment (default: this process's).
        cwd: working directory.
        echo: let the child write to this terminal instead of capturing its output.
        timeout: seconds before the child is killed (``None``: no limit).
    """
    with tempfile.TemporaryFile("w+", encoding="utf-8") as out, tempfile.TemporaryFile("w+", encoding="utf-8") as err:
        started = time.perf_counter()
        process = subprocess.Popen(list(command), env=env, cwd=cwd, stdout=None if echo else out,
                                   stderr=None if echo else err, text=True)
        timer = threading.Timer(timeout, process.kill) if timeout else None
        if timer is not None:
            timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)  # reaps the child: Popen must not wait again
        finally:
            if timer is not None:
                timer.cancel()
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    return Child(process.returncode, seconds, _megabytes(usage.ru_maxrss), stdout, stderr)


def run_children(commands: Sequence[Sequence[str]], jobs: int, threads: int | None = None) -> list[Child]:
    """Run ``commands`` ``jobs`` at a time; their results in the order given.

    With ``threads``, each child's torch uses that many threads (``OMP_NUM_THREADS``), so that ``jobs``
    children share the cores instead of fighting over them; OpenMP threads wait passively.
    """
    env = dict(os.environ, OMP_WAIT_POLICY="passive")
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    results: dict[int, Child] = {}
    running: dict[int, tuple[int, subprocess.Popen[str], Any, Any, float]] = {}
    pending = list(enumerate(commands))
    while pending or running:
        while pending and len(running) < max(jobs, 1):
            index, command = pending.pop(0)
            out, err = tempfile.TemporaryFile("w+", encoding="utf-8"), tempfile.TemporaryFile("w+", encoding="utf-8")
            process = subprocess.Popen(list(command), env=env, stdout=out, stderr=err, text=True)
            running[process.pid] = (index, process, out, err, time.perf_counter())
        pid, status, usage = os.wait4(-1, 0)
        if pid not in running:
            continue
        index, process, out, err, started = running.pop(pid)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        results[index] = Child(process.returncode, time.perf_counter() - started, _megabytes(usage.ru_maxrss),
                               out.read(), err.read())
        out.close()
        err.close()
    return [results[index] for index in range(len(commands))]


def _megabytes(maxrss: int) -> float:
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024  # ru_maxrss: bytes on macOS, KiB elsewhere


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB."""
    return _megabytes(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


# ------------------------------------------------------------------------------------ BENCHMARKS.md
def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub markdown table; the first column left-aligned, the others right-aligned."""
    cells = [[str(cell) for cell in row] for row in rows]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join([" --- "] + [" ---: "] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def invocation(name: str, argv: Sequence[str] | None = None) -> str:
    """The command that reproduces this run: ``mentor bench NAME ARGS``."""
    args = list(sys.argv[1:] if argv is None else argv)
    return " ".join(["mentor", "bench", name, *map(shlex.quote, args)])


def machine() -> str:
    """One line: CPU, cores, torch version and threads, Python, and the GPU where CUDA is present."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f"; GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (f"{cpu}, {os.cpu_count()} cores; torch {torch.__version__} ({torch.get_num_threads()} threads); "
            f"Python {platform.python_version()}{gpu}")


def write_section(name: str, title: str, body: str, path: Path = BENCHMARKS_MD) -> None:
    """Replace the text between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` in ``path``.

    When the markers are missing the section is appended under a ``## title`` heading (and the file
    is created with a top heading if it does not exist).
    """
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.strip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    if start in text and end in text and text.index(start) < text.index(end):
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        text = before + block + after
    else:
        text = text.rstrip("\n") + f"\n\n## {title}\n\n{block}\n"
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


def section_body(command: str, lines: Sequence[str]) -> str:
    """The standard body of a section: the command, the machine and date, then the given lines."""
    stamp = time.strftime("%Y-%m-%d")
    return "\n".join([f"Produced by `{command}` on {stamp}.", f"Machine: {machine()}.", "", *lines])


FAILED = "FAILED"
"""The file a benchmark leaves in a run folder whose training diverged (its last error line)."""


def _child(node: Any, part: str) -> Any:
    """``node[part]`` in a saved recipe: a key of a section, an index of a list, or, as ``--set`` reads
    ``knowledge.params.x`` for a recipe of one method, a key of a one-item list's item."""
    if isinstance(node, list):
        if part.isdigit():
            return node[int(part)] if int(part) < len(node) else None
        node = node[0] if len(node) == 1 else None
    return node.get(part) if isinstance(node, dict) else None


def finished(folder: Path, overrides: list[str]) -> bool:
    """Whether ``folder`` holds a finished run (or a recorded divergence, a ``FAILED`` file) made with
    ``overrides``' values (the dotted scalar ones: learning rate, data limit, seeds, teacher checkpoint; a
    ``knowledge`` override, a whole section, is not compared)."""
    if not (folder / "summary.json").is_file() and not (folder / FAILED).is_file():
        return False
    recipe = yaml.safe_load((folder / "recipe.yaml").read_text())
    for override in overrides:
        key, _, value = override.partition("=")
        if key == "knowledge":
            continue
        node: Any = recipe
        for part in key.split("."):
            node = _child(node, part)
        if node != yaml.safe_load(value):
            return False
    return True
