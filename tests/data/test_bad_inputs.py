"""Bad inputs outside the recipe itself, through ``mentor run``: each is one line ``mentor: error: ...``,
exit status 2, and no run directory.

Covered: a user folder of NumPy files with wrong dtypes, shapes or lengths, empty arrays; models that cannot
take the data; teacher / student / peer class counts that differ from the data's; a teacher checkpoint of
another model; a run directory that exists.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from mentor.cli import main
from mentor.engine import checkpoint
from mentor.models import create

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 6)).astype(np.float32)
Y = np.arange(40) % 3


def distillation(data: dict[str, Any], **changes: Any) -> dict[str, Any]:
    recipe = {"name": "bad", "data": data, "teacher": {"model": "mlp-small", "train": {"epochs": 1}},
              "student": {"model": "mlp-tiny"}, "knowledge": {"method": "kd"}, "train": {"epochs": 1}}
    recipe.update(changes)
    return recipe


DIGITS = {"name": "digits", "limit": 60, "validation": 0.2}


def run(tmp_path: Path, recipe: dict[str, Any], capsys: pytest.CaptureFixture, out: Path | None = None,
        command: str = "run", *flags: str) -> str:
    """Run ``recipe`` through the CLI; check exit 2, one stderr line and no run directory; the line."""
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    out = out or tmp_path / "run"
    existed = out.exists()
    assert main([command, str(path), "--out", str(out), "--quiet", *flags]) == 2
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mentor: error: ") and "Traceback" not in err, err
    assert existed or not out.exists(), "a run directory was written"
    return lines[0]


def save(folder: Path, **arrays: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        np.save(folder / f"{name}.npy", array, allow_pickle=True)
    return folder


# ---------------------------------------------------------------- a user folder of NumPy files

FOLDERS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "int64 inputs": (lambda d: save(d, train_x=X.astype(np.int64), train_y=Y), "train_x.npy: inputs must be uint8"),
    "text inputs": (lambda d: save(d, train_x=np.full((40, 6), "a"), train_y=Y), "got dtype <U1"),
    "complex inputs": (lambda d: save(d, train_x=X.astype(np.complex64), train_y=Y), "got dtype complex64"),
    "boolean inputs": (lambda d: save(d, train_x=X > 0, train_y=Y), "got dtype bool"),
    "object inputs": (lambda d: save(d, train_x=np.array([[object()] * 6] * 40, dtype=object), train_y=Y),
                      "train_x.npy: cannot read as NumPy data"),
    "not a NumPy file": (lambda d: (save(d, train_y=Y), (d / "train_x.npy").write_bytes(b"\x00garbage"))[0],
                         "train_x.npy: cannot read as NumPy data"),
    "float labels": (lambda d: save(d, train_x=X, train_y=Y.astype(np.float32)), "train_y.npy: labels must be"),
    "labels of shape (N, 1)": (lambda d: save(d, train_x=X, train_y=Y.reshape(-1, 1)), "shape (N,); got shape (40, 1)"),
    "negative labels": (lambda d: save(d, train_x=X, train_y=Y - 1), "found negative label -1"),
    "inputs without a feature axis": (lambda d: save(d, train_x=X[:, 0], train_y=Y), "got shape (40,)"),
    "fewer labels than inputs": (lambda d: save(d, train_x=X, train_y=Y[:30]), "has 40 samples but"),
    "NaN inputs": (lambda d: save(d, train_x=np.where(X > 1, np.nan, X), train_y=Y), "NaN or infinite"),
    "test samples of another shape": (lambda d: save(d, train_x=X, train_y=Y, test_x=X[:, :4], test_y=Y),
                                      "test samples have shape (4,)"),
    "test label of an unseen class": (lambda d: save(d, train_x=X, train_y=Y, test_x=X, test_y=Y + 1),
                                      "test_y.npy: label 3 is not in 0..2"),
    "empty training inputs": (lambda d: save(d, train_x=X[:0], train_y=Y[:0]), "train_x.npy: input array is empty"),
    "empty labels": (lambda d: save(d, train_x=X, train_y=Y[:0]), "train_y.npy: label array is empty"),
    "samples of no features": (lambda d: save(d, train_x=X[:, :0], train_y=Y), "input array is empty"),
    "empty test inputs": (lambda d: save(d, train_x=X, train_y=Y, test_x=X[:0], test_y=Y[:0]), "test_x.npy"),
    "inputs without labels": (lambda d: save(d, train_x=X), "found train_x but not train_y"),
    "no dataset files": (lambda d: save(d, readme=np.zeros(1)), "no dataset files in"),
}


@pytest.mark.parametrize("case", FOLDERS)
def test_a_bad_user_folder_is_one_line_naming_the_file(case: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    build, expected = FOLDERS[case]
    folder = build(tmp_path / "data")
    message = run(tmp_path, distillation({"name": "folder", "root": str(folder), "validation": 0.2}), capsys)
    assert expected in message, message


def test_a_dataset_too_small_for_a_test_split_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = save(tmp_path / "data", train_x=X[:1], train_y=Y[:1])
    assert "test" in run(tmp_path, distillation({"name": str(folder), "validation": 0.2}), capsys)


# ---------------------------------------------------------------- models that cannot take the data

def test_models_that_cannot_take_the_inputs_are_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    vectors = save(tmp_path / "vectors", train_x=X, train_y=Y)
    volumes = save(tmp_path / "volumes", train_x=X.reshape(40, 1, 1, 2, 3), train_y=Y)
    cnn = {"model": "cnn-small", "train": {"epochs": 1}}
    assert "'cnn-small'" in run(tmp_path, distillation({"name": str(vectors)}, teacher=cnn), capsys)
    assert "needs image inputs (C, H, W)" in run(tmp_path, distillation({"name": str(volumes)}, teacher=cnn), capsys)
    linear = {"model": "torch.nn:Linear", "options": {"in_features": 5, "out_features": 3}}
    message = run(tmp_path, distillation({"name": str(vectors)}, student=linear), capsys, None, "run", "--trust-code")
    assert "the student cannot run on" in message and "shape (6,)" in message


# ---------------------------------------------------------------- class counts

@pytest.mark.parametrize(("role", "classes"), [("teacher", 3), ("student", 12)])
def test_a_class_count_other_than_the_data_is_named(role: str, classes: int, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    recipe = distillation(DIGITS)
    recipe[role]["options"] = {"num_classes": classes}
    message = run(tmp_path, recipe, capsys)
    assert f"the {role} outputs shape ({classes},) but digits has 10 classes" in message


@pytest.mark.parametrize(("scheme", "peers"), [
    ("dml", [{"model": "mlp-tiny"}, {"model": "mlp-tiny", "options": {"num_classes": 3}}]),
    ("born-again", [{"model": "mlp-tiny", "options": {"num_classes": 4}}]),
])
def test_a_peer_with_another_class_count_is_refused(scheme: str, peers: list[dict[str, Any]], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    recipe = {"name": "bad", "data": DIGITS, "scheme": {"name": scheme}, "peers": peers, "train": {"epochs": 1}}
    assert "classes" in run(tmp_path, recipe, capsys)


# ---------------------------------------------------------------- teacher checkpoints

def _checkpoints(folder: Path) -> dict[str, Path]:
    import torch

    folder.mkdir()
    files = {name: folder / f"{name}.pt" for name in ("other-architecture", "other-classes", "scheme-run",
                                                      "plain-torch-save", "not-a-checkpoint")}
    checkpoint.save({"models": {"student": create("cnn-tiny", 10, (1, 8, 8)).state_dict()}},
                    files["other-architecture"])
    checkpoint.save({"models": {"student": create("mlp-small", 3, (1, 8, 8)).state_dict()}}, files["other-classes"])
    peers = {f"peer{k}": create("mlp-small", 10, (1, 8, 8)).state_dict() for k in range(2)}
    checkpoint.save({"models": peers}, files["scheme-run"])
    torch.save(create("mlp-small", 10, (1, 8, 8)).state_dict(), files["plain-torch-save"])
    files["not-a-checkpoint"].write_bytes(b"not a checkpoint")
    files["missing"] = folder / "missing.pt"
    return files


FITS_NOW = {"plain-torch-save": "not a Mentor checkpoint", "not-a-checkpoint": "cannot be read",
            "missing": "does not exist"}


@pytest.mark.parametrize("kind", [*FITS_NOW, "other-architecture", "other-classes", "scheme-run"])
def test_a_teacher_checkpoint_that_does_not_fit_is_one_line(kind: str, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    files = _checkpoints(tmp_path / "checkpoints")
    recipe = distillation(DIGITS, teacher={"model": "mlp-small", "checkpoint": str(files[kind])})
    out = tmp_path / "run"
    assert main(["run", _write(tmp_path, recipe), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mentor: error: ") and "Traceback" not in err, err
    assert str(files[kind]) in lines[0] and FITS_NOW.get(kind, "teacher") in lines[0]


@pytest.mark.parametrize("kind", ["other-architecture", "missing"])
def test_a_bad_teacher_checkpoint_writes_no_run_directory(kind: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    files = _checkpoints(tmp_path / "checkpoints")
    run(tmp_path, distillation(DIGITS, teacher={"model": "mlp-small", "checkpoint": str(files[kind])}), capsys)


def _write(tmp_path: Path, recipe: dict[str, Any]) -> str:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    return str(path)


# ---------------------------------------------------------------- the run directory

def test_an_existing_run_directory_is_refused_and_kept(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.jsonl").write_text("{}\n")
    message = run(tmp_path, distillation(DIGITS), capsys, out=out)
    assert "already exists" in message and "--force" in message
    assert [p.name for p in out.iterdir()] == ["metrics.jsonl"] and (out / "metrics.jsonl").read_text() == "{}\n"


@pytest.mark.parametrize("where", ["file", "inside-a-file"])
def test_an_out_path_that_is_a_file_is_one_line(where: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("keep me")
    out = blocker if where == "file" else blocker / "run"
    assert "--out" in run(tmp_path, distillation(DIGITS), capsys, out=out)
    assert blocker.read_text() == "keep me"


def test_resuming_a_folder_that_is_not_a_run_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["resume", str(tmp_path / "empty"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "is not a run directory (no recipe.yaml)" in err
