"""Inputs an adversarial user tried: each is one line ``mentor: error: ...``, exit status 2, no traceback, no hang,
nothing written.

A guard (:func:`hang_guard`) fails a case that runs for minutes instead of answering; it measures no speed.
"""

from __future__ import annotations

import contextlib
import errno
import json
import pathlib
import re
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from mentor.cli import main
from mentor.engine import checkpoint
from tests.report.rundir import copy_run, finished_run

RECIPE = {"name": "hostile", "seeds": [0], "data": {"name": "digits", "limit": 100},
          "teacher": {"model": "mlp-tiny", "train": {"epochs": 1}}, "student": {"model": "mlp-tiny"},
          "knowledge": [{"method": "kd"}], "train": {"epochs": 1}, "latency_batch": 8}
HANG = 120  # seconds: far beyond any answer, short of a hang
DEEP = "too deeply|maximum nesting depth"  # Mentor's words, or libyaml's


@contextlib.contextmanager
def hang_guard(seconds: int = HANG) -> Iterator[None]:
    """Fail (instead of waiting forever) when the block has not finished after ``seconds``."""
    def hung(*args: object) -> None:
        raise AssertionError(f"no answer after {seconds} s: the input made Mentor hang")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def refused(arguments: list[str], capsys: pytest.CaptureFixture, watched: Path | None = None) -> str:
    """Run the command line; check the one-line contract and that ``watched`` (if given) was not written."""
    before = sorted(watched.rglob("*")) if watched is not None else []
    capsys.readouterr()
    with hang_guard():
        status = main(arguments)
    err = capsys.readouterr().err
    assert status == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("mentor: error: ") and "Traceback" not in err, err
    assert len(err) < 1000, f"the error echoes too much ({len(err)} characters)"
    if watched is not None:
        assert sorted(watched.rglob("*")) == before, "a refused command wrote files"
    return err


def with_(**changes: object) -> dict:
    recipe = json.loads(json.dumps(RECIPE))
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = recipe
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        node[last] = value
    return recipe


BILLION_LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)) + "name: *i\n"

TEXTS = {  # recipe file contents -> what the message says
    "latin-1": ("name: caf\xe9\n".encode("latin-1"), "is not UTF-8 text"),
    "utf-16": ("name: x\n".encode("utf-16"), "is not UTF-8 text"),
    "nested-brackets": (b"[" * 20_000, DEEP),
    "nested-mappings": ("".join(" " * i + "k:\n" for i in range(3000)).encode(), "recipe"),
    "billion-laughs": (BILLION_LAUGHS.encode(), "expands its aliases"),
    "self-alias": (b"name: &x [*x]\n", "refers to itself"),
    "duplicate-keys": (b"name: a\nseeds: [0]\nname: b\n", r"gives the key 'name' twice \(lines 1 and 3\)"),
    "duplicate-nested": (b"train: {epochs: 1, epochs: 2}\n", "gives the key 'epochs' twice"),
    "huge-file": (b"# " + b"x" * 1_100_000 + b"\n", "larger than 1 MB"),
    "python-tag": (b"!!python/object/apply:os.system ['touch PWNED']\n", "not valid YAML"),
}
RECIPES = {  # recipe mappings -> what the message says
    "model-colon": (with_(student__model=":"), "neither a registered name"),
    "seed-overflow": (with_(seeds=[99999999999999999999]), "a seed is an integer from 0 to 2^32 - 1"),
    "seed-negative": (with_(seeds=[-1]), "a seed is an integer from 0"),
    "duplicate-seeds": (with_(seeds=[0, 0]), "seeds must be distinct"),
    "many-seeds": (with_(seeds=list(range(100_000))), "100,000 seeds is above the limit of 1,000"),
    "temperature": (with_(knowledge__0__params={"temperature": 1.0e308}), "'temperature' parameter"),
    "temperature-inf": (with_(knowledge__0__params={"temperature": float("inf")}), "'temperature' parameter"),
    "jitter": (with_(train__jitter=1_000_000_000), "pixels is not below the image side"),
    "epochs": (with_(train__epochs=10**12), "1,000,000,000,000 epochs is above the limit"),
    "cnn-depth": (with_(student__model="cnn", student__options={"depth": 10**9}), "convolutions is above the limit"),
    "mlp-width": (with_(student__options={"hidden": [10**7, 10**7]}), "parameters is above the limit"),
    "milestones": (with_(train__scheduler={"name": "multistep", "milestones": [-3, 2]}), "milestones are epoch"),
    "gamma-inf": (with_(train__scheduler={"name": "step", "gamma": float("inf")}), "finite number"),
    "lr-nan": (with_(train__optimizer={"lr": float("nan")}), "finite number"),
    "inverted-ramp": (with_(knowledge__0__schedule={"rampdown_from": 5, "rampdown_to": 2}), "must come after"),
    "name-escape": (with_(name="../../x"), "recipe key 'name'"),
    "long-value": (with_(student__model="m" * 100_000), "unknown model"),
}


@pytest.mark.parametrize("name", TEXTS)
def test_hostile_recipe_text(name: str, tmp_path: Path, capsys: pytest.CaptureFixture,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    content, message = TEXTS[name]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "recipe.yaml").write_bytes(content)
    assert re.search(message, refused(["run", "recipe.yaml", "--out", "run"], capsys, tmp_path))


@pytest.mark.parametrize("name", RECIPES)
def test_hostile_recipe_values(name: str, tmp_path: Path, capsys: pytest.CaptureFixture,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    recipe, message = RECIPES[name]
    monkeypatch.chdir(tmp_path)
    try:
        text = json.dumps(recipe, allow_nan=False)  # JSON is YAML, and much faster to write for 100,000 seeds
    except ValueError:
        text = yaml.safe_dump(recipe)
    (tmp_path / "recipe.yaml").write_text(text)
    assert message in refused(["run", "recipe.yaml", "--out", "run"], capsys, tmp_path)


@pytest.mark.parametrize(("setting", "message"), [
    ("seeds.99999999999999999999=1", "is not an index"),
    ("peers.\u00b2.model=x", "recipe"),
    ("train.epochs=" + "[" * 20_000, f"{DEEP}|recipe key 'train.epochs'"),  # text YAML cannot read is a string
    ("train=" + "{a: " * 3000, f"{DEEP}|recipe key 'train'"),
    ("x" * 50_000 + "=1", "unknown recipe key"),
    ("name=" + BILLION_LAUGHS.replace("\n", " "), "recipe"),
])
def test_hostile_set_values(setting: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(RECIPE))
    assert re.search(message, refused(["run", "recipe.yaml", "--out", "run", "--set", setting], capsys, tmp_path))


# ---------------------------------------------------------------- damaged run folders

@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return finished_run(tmp_path_factory)


def _recipe_without_student_model(run: Path) -> None:
    recipe = yaml.safe_load((run / "recipe.yaml").read_text())
    del recipe["student"]["model"]
    (run / "recipe.yaml").write_text(yaml.safe_dump(recipe))


def _metrics_line(line: str) -> object:
    return lambda run: (run / "metrics.jsonl").write_text(line + "\n")


def _craft(run: Path, write: Callable[[Path], object]) -> None:
    """``write`` over every checkpoint file of the distilled student (best.pt, last.pt and its previous version)."""
    for path in (run / "checkpoints/seed0/student-distilled").glob("*.pt"):
        write(path)


FOLDERS = {  # damage -> (command, what the message says)
    "recipe-without-student-model": (_recipe_without_student_model, ["eval"], "'student.model' is required"),
    "recipe-latin-1": (lambda run: (run / "recipe.yaml").write_bytes(b"name: caf\xe9\n"), ["eval"], "not UTF-8"),
    "summary-latin-1": (lambda run: (run / "summary.json").write_bytes(b'{"recipe": "\xe9"}'), ["compare"],
                        "not UTF-8"),
    "summary-models-list": (lambda run: (run / "summary.json").write_text('{"models": [1, 2]}'), ["compare"],
                            "must map 'models'"),
    "summary-accuracy-text": (lambda run: (run / "summary.json").write_text(
        '{"models": {"teacher": {"accuracy": "high"}}}'), ["compare"], "'accuracy' holds 'high'"),
    "summary-deep": (lambda run: (run / "summary.json").write_text("[" * 50_000), ["compare"], "cannot be parsed"),
    "metrics-seed-text": (_metrics_line('{"run": "teacher", "seed": "zero", "epoch": 1}'), ["report"],
                          "'seed' holds 'zero'"),
    "metrics-loss-list": (_metrics_line('{"run": "teacher", "seed": 0, "train/loss": [1]}'), ["report"],
                          "'train/loss' holds [1], not a number"),
    "metrics-array": (_metrics_line("[1, 2, 3]"), ["compare"], "not a JSON object"),
    # best.pt and the copy of the best weights in last.pt both crafted (one of them alone is recovered)
    "crafted-best": (lambda run: _craft(run, lambda path: path.write_bytes(b"PK\x03\x04 crafted")), ["eval"],
                     "cannot be read"),
    "crafted-envelope": (lambda run: _craft(run, lambda path: checkpoint.torch.save(
        {"format": checkpoint.FORMAT, "payload": "x"}, path)), ["eval"], "malformed envelope"),
}


@pytest.mark.parametrize("name", FOLDERS)
def test_damaged_run_folders(name: str, run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    damage, command, message = FOLDERS[name]
    run = copy_run(run_dir, tmp_path / "run")
    damage(run)
    assert message in refused([command[0], str(run), *command[1:]], capsys)


# ---------------------------------------------------------------- folders that cannot be written

def test_an_output_folder_that_cannot_be_created(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(RECIPE))
    (tmp_path / "a-file").write_text("")
    err = refused(["run", str(tmp_path / "recipe.yaml"), "--out", str(tmp_path / "a-file" / "run")], capsys)
    assert "cannot create the run directory" in err


def test_a_read_only_output_folder_names_the_path_and_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(RECIPE))
    write_text = pathlib.Path.write_text

    def read_only(self: Path, *args: object, **kwargs: object) -> int:
        if "run" in self.parts:
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return write_text(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "write_text", read_only)
    err = refused(["run", str(tmp_path / "recipe.yaml"), "--out", str(tmp_path / "run")], capsys)
    assert f"cannot access {str(tmp_path / 'run' / '.mentor-run')!r}: Read-only file system; make it writable" in err


def test_an_unwritable_cache_is_skipped_and_the_run_completes(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("MENTOR_CACHE", str(tmp_path / "a-file" / "cache"))
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(RECIPE))
    with hang_guard():
        assert main(["run", str(tmp_path / "recipe.yaml"), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "teacher-output cache" in line]
    assert warned and all(line.startswith("mentor: warning: the teacher-output cache is skipped") for line in warned)
