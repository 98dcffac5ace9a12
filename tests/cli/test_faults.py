"""Fault injection: a run killed in the middle of a write, a run on a full disk, every file of a run damaged.

Every scenario ends in one of two ways, and nothing else passes:

- *recovered*: ``mentor resume`` exits 0 and the run's metrics and test results equal those of the run that was never
  disturbed;
- *clean*: one line ``mentor: error: ...``, exit status 2, no traceback.

Runs are forked from this process (no interpreter start-up) and disturbed through patched writers: ``open`` returns
files that stop half-way through a chosen write (SIGKILL) or when a byte budget is spent (``ENOSPC``, the disk is
full), and ``os.replace`` can be stopped before a chosen rename. The points are drawn with a fixed seed, so the counts
are the same at every run; each suite checks them against the table of docs/reliability.md.
"""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import random
import re
import shutil
import signal
import sys
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from mentor.cli import main

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or not hasattr(signal, "SIGKILL"),
                                reason="forks runs and kills them")
ARGS = ["run", "quickstart", "--quiet", "--set", "seeds=[0]", "--set", "data.limit=60", "--set", "train.epochs=2",
        "--set", "teacher.train.epochs=2", "--set", "teacher.model=mlp-tiny", "--set", "compare.student_alone=false",
        "--set", "latency_batch=8", "--set", "train.batch_size=16", "--set", "teacher.train.batch_size=16"]
DOCS = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
KILLS, RENAMES, BUDGETS = 12, 4, (0.0, 0.05, 0.2, 0.4, 0.6, 0.8, 0.95)


@dataclass
class Outcome:
    clean: bool = False
    recovered: bool = False


def results(out: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """What must be identical after a recovery: metrics records (without timings) and test results."""
    records = [{k: v for k, v in json.loads(line).items() if k != "seconds"}
               for line in (out / "metrics.jsonl").read_text().splitlines()]
    summary = json.loads((out / "summary.json").read_text())["models"]
    tested = {role: {k: entry[k] for k in ("seeds", "accuracy", "parameters", "best_epochs")}
              for role, entry in summary.items()}
    return sorted(records, key=lambda r: (r["run"], r["stage"], r["epoch"])), tested


class Disturbed:
    """A file opened for writing whose writes pass through ``hook`` first."""

    def __init__(self, file: Any, hook: Callable[[Any, Any], Any]) -> None:
        self._file, self._hook = file, hook

    def write(self, data: Any) -> int:
        return self._file.write(self._hook(self._file, data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)

    def __enter__(self) -> Disturbed:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.__exit__(*exc)


def patch_writes(hook: Callable[[Any, Any], Any]) -> None:
    """In this (forked) process, pass every write to a file opened for writing through ``hook``."""
    real = io.open

    def opened(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = real(file, mode, *args, **kwargs)
        return Disturbed(handle, hook) if any(flag in mode for flag in "wax+") else handle

    builtins.open = io.open = opened  # type: ignore[assignment]


def kill_at_write(number: int) -> Callable[[], None]:
    """Write half of the ``number``-th write, then die as ``kill -9`` would."""
    count = [0]

    def hook(file: Any, data: Any) -> Any:
        count[0] += 1
        if count[0] == number:
            file.write(data[: len(data) // 2])
            file.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return data

    return lambda: patch_writes(hook)


def kill_at_rename(number: int) -> Callable[[], None]:
    """Die just before the ``number``-th ``os.replace`` (a checkpoint rotation, a cache entry, a metrics rewrite)."""
    def inject() -> None:
        real, count = os.replace, [0]

        def replace(*args: Any, **kwargs: Any) -> None:
            count[0] += 1
            if count[0] == number:
                os.kill(os.getpid(), signal.SIGKILL)
            real(*args, **kwargs)

        os.replace = replace  # type: ignore[assignment]

    return inject


def full_disk(budget: int) -> Callable[[], None]:
    """The disk fills up after ``budget`` more bytes: the write that crosses it is cut there and fails (ENOSPC)."""
    left = [budget]

    def hook(file: Any, data: Any) -> Any:
        size = len(data.encode() if isinstance(data, str) else data)
        if size > left[0]:
            file.write(data[: left[0]])
            left[0] = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        left[0] -= size
        return data

    return lambda: patch_writes(hook)


def counting(counts: Path) -> Callable[[], Callable[[], None]]:
    """Count the writes, bytes written and renames of the run; they go to ``counts`` as the process leaves."""
    def inject() -> Callable[[], None]:
        tally: Counter[str] = Counter()
        real_replace = os.replace

        def hook(file: Any, data: Any) -> Any:
            tally["writes"] += 1
            tally["bytes"] += len(data.encode() if isinstance(data, str) else data)
            return data

        def replace(*args: Any, **kwargs: Any) -> None:
            tally["renames"] += 1
            real_replace(*args, **kwargs)

        patch_writes(hook)
        os.replace = replace  # type: ignore[assignment]
        return lambda: dump(counts, json.dumps(tally))

    return inject


Injection = Callable[[], Callable[[], None] | None]


def dump(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` below the patched writers (a disturbed process reports through this)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(descriptor, text.encode())
    finally:
        os.close(descriptor)


def forked(arguments: list[str], scratch: Path, inject: Injection | None = None) -> tuple[int, str]:
    """Run the command line in a fork of this process, disturbed by ``inject`` (which may return what to do as the
    process leaves): its exit status (``-9`` when killed) and what it printed on stderr."""
    err = scratch / f"stderr-{os.getpid()}-{random.random()}"
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code, leaving = 1, None
        try:
            torch.set_num_threads(1)
            sys.stderr, sys.stdout = io.StringIO(), io.StringIO()
            leaving = inject() if inject is not None else None
            code = main(arguments)
        except BaseException as error:  # noqa: BLE001 - a traceback is what the suite looks for
            sys.stderr.write("Traceback\n" + "".join(traceback.format_exception(error)))
        finally:
            try:
                if leaving is not None:
                    leaving()
                dump(err, sys.stderr.getvalue())
            finally:
                os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    output = err.read_text() if err.exists() else ""
    err.unlink(missing_ok=True)
    return code, output


def clean(code: int, err: str) -> bool:
    errors = [line for line in err.splitlines() if not line.startswith("mentor: warning: ")]
    return (code == 2 and len(errors) == 1 and errors[0].startswith("mentor: error: ")
            and "Traceback" not in err)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def reference(workspace: Path) -> dict[str, Any]:
    """The undisturbed run (and its teacher-output cache), with the number of writes, bytes and renames it makes.

    It runs in this process first, so that the forks start with everything imported and warmed up.
    """
    cache, out, counts = workspace / "cache", workspace / "reference", workspace / "counts.json"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MENTOR_CACHE", str(cache))
        assert main([*ARGS, "--out", str(out)]) == 0
        patch.setenv("MENTOR_CACHE", str(workspace / "counted-cache"))  # an empty cache, like every disturbed run's
        code, err = forked([*ARGS, "--out", str(workspace / "counted")], workspace, counting(counts))
    assert code == 0, err
    return {"out": out, "cache": cache, "results": results(out), **json.loads(counts.read_text())}


def recovered(out: Path, reference: dict[str, Any], cache: Path) -> bool:
    """Whether ``mentor resume`` on ``out`` (in a fork) recovered the undisturbed run's results; when it did not, it
    must have refused in one clean line. Any other ending fails the test."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MENTOR_CACHE", str(cache))
        code, err = forked(["resume", str(out), "--quiet"], out.parent)
    assert code == 0 or clean(code, err), (out, code, err)
    if code == 0:
        assert results(out) == reference["results"], f"{out}: resumed without error but the results differ"
    return code == 0


def check_docs(scenario: str, tried: int, outcomes: list[Outcome]) -> None:
    """The row of ``scenario`` in docs/reliability.md says what the suite found."""
    found = (tried, sum(o.clean for o in outcomes), sum(o.recovered for o in outcomes))
    row = f"| {scenario} | {found[0]} | {found[1]} | {found[2]} |"
    assert row in DOCS.read_text(encoding="utf-8"), f"docs/reliability.md should have the row {row}"


def test_a_run_killed_in_the_middle_of_any_write_is_recovered(reference: dict[str, Any], workspace: Path) -> None:
    draw = random.Random(0)
    points = [("write", n) for n in sorted(draw.sample(range(1, reference["writes"] + 1), KILLS))]
    points += [("rename", n) for n in sorted(draw.sample(range(1, reference["renames"] + 1), RENAMES))]
    outcomes = []
    for kind, number in points:
        out, cache = workspace / f"kill-{kind}-{number}", workspace / f"kill-cache-{kind}-{number}"
        inject = kill_at_write(number) if kind == "write" else kill_at_rename(number)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("MENTOR_CACHE", str(cache))
            code, err = forked([*ARGS, "--out", str(out)], workspace, inject)
        assert code == -signal.SIGKILL, (kind, number, code, err)
        if not (out / ".mentor-run").exists():  # killed before the run directory was marked: nothing to resume
            outcomes.append(Outcome(clean=True))
            continue
        outcome = Outcome(recovered=recovered(out, reference, cache))
        outcome.clean = not outcome.recovered
        outcomes.append(outcome)
    check_docs("kill -9 in the middle of a write or a rename", len(points), outcomes)


def test_a_full_disk_is_one_line_naming_the_path_and_the_run_resumes_once_space_is_freed(
    reference: dict[str, Any], workspace: Path
) -> None:
    outcomes = []
    for fraction in BUDGETS:
        budget = int(fraction * reference["bytes"])
        out, cache = workspace / f"full-{budget}", workspace / f"full-cache-{budget}"
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("MENTOR_CACHE", str(cache))
            code, err = forked([*ARGS, "--out", str(out)], workspace, full_disk(budget))
        outcome = Outcome(clean=clean(code, err))
        if outcome.clean:
            assert re.search(r"cannot (access|create) '[^']+'.*No space left on device", err), err
        else:
            assert code == 0, err  # only the cache could not be written: the run went on without it
        outcome.recovered = (out / ".mentor-run").exists() and recovered(out, reference, cache)
        outcomes.append(outcome)
    check_docs("disk full at a point of the run, then space freed", len(BUDGETS), outcomes)


DAMAGES: dict[str, Callable[[Path], None]] = {
    "truncated to half": lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
    "one byte flipped": lambda path: path.write_bytes(_flipped(path.read_bytes())),
    "deleted": lambda path: path.unlink(),
}


def _flipped(data: bytes) -> bytes:
    damaged = bytearray(data)
    if damaged:
        damaged[len(damaged) // 2] ^= 0x55
    return bytes(damaged)


def test_every_file_of_a_run_damaged_is_recovered_or_refused_in_one_line(
    reference: dict[str, Any], workspace: Path
) -> None:
    files = [path.relative_to(reference["out"]) for path in sorted(reference["out"].rglob("*")) if path.is_file()]
    files += [Path("cache") / path.relative_to(reference["cache"])
              for path in sorted(reference["cache"].rglob("*")) if path.is_file() and "teacher-outputs" in path.parts]
    assert len(files) >= 12, files
    outcomes = []
    for apply in DAMAGES.values():
        for relative in files:
            case = workspace / f"damaged-{len(outcomes)}"
            out, cache = Path(shutil.copytree(reference["out"], case / "run")), case / "cache"
            shutil.copytree(reference["cache"], cache)
            apply(case / relative if relative.parts[0] == "cache" else out / relative)
            outcome = Outcome(recovered=recovered(out, reference, cache))
            outcome.clean = not outcome.recovered
            outcomes.append(outcome)
            shutil.rmtree(case)
    check_docs("one file of a finished run damaged, then resumed", len(outcomes), outcomes)
