"""Checkpoints survive what a crash or a damaged file leaves: rotation, a lost last.pt, a corrupt best.pt, crafted
envelopes; a resume never trains fewer epochs than its checkpoint, and a non-finite validation loss is never best."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import shutil
from pathlib import Path

import pytest
import torch

import mentor.engine.loop
from mentor.data import ArrayDataset
from mentor.engine import FitSettings, MetricsLog, OptimizerSettings, checkpoint, fit
from mentor.errors import MentorError, MentorWarning
from mentor.losses import CE, Objective
from mentor.models import MLP
from mentor.schemes import Offline

EPOCHS = 4


def data(size: int = 40, seed: int = 0) -> ArrayDataset:
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(size, 4, generator=generator)
    return ArrayDataset(inputs, (inputs[:, 0] > 0).long())


def train(folder: Path, epochs: int = EPOCHS, resume: bool = False) -> tuple[MLP, list[dict]]:
    """Train a fresh seeded model (resuming from ``folder`` if asked); the model and the metrics written."""
    torch.manual_seed(0)
    model = MLP((4,), 2, hidden=(8,))
    settings = FitSettings(epochs=epochs, batch_size=8, progress=False, resume=resume,
                           optimizer=OptimizerSettings("adam", 0.05))
    log = MetricsLog(folder / "metrics.jsonl")
    fit(Offline(model, Objective(CE())), data(), data(20, 1), settings, log=log, checkpoints=folder)
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return model, [{k: v for k, v in record.items() if k != "seconds"} for record in records]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, MLP, list[dict]]:
    folder = tmp_path_factory.mktemp("finished")
    model, records = train(folder)
    return folder, model, records


def same_weights(first: torch.nn.Module, second: torch.nn.Module) -> bool:
    return all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values(),
                                                  strict=True))


def test_rotation_keeps_the_previous_version_and_the_target_always_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "last.pt"
    checkpoint.save({"epoch": 1}, path, rotate=True)
    replace = os.replace

    def checked_replace(source: object, target: object) -> None:  # every step of the rotation
        assert checkpoint.load(path)["epoch"] == 1
        replace(source, target)

    monkeypatch.setattr(os, "replace", checked_replace)
    checkpoint.save({"epoch": 2}, path, rotate=True)
    assert checkpoint.load(path)["epoch"] == 2 and checkpoint.load(checkpoint.previous(path))["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.prev.pt", "last.pt"]


def test_a_crash_during_rotation_resumes_from_the_previous_checkpoint(
    finished: tuple[Path, MLP, list[dict]], tmp_path: Path
) -> None:
    source, reference, records = finished
    folder = Path(shutil.copytree(source, tmp_path / "run"))
    (folder / "last.pt").unlink()  # the moment between moving last.pt aside and writing the new one
    resumed, resumed_records = train(folder, resume=True)
    assert resumed_records == records  # epochs 1..4 once each: the stage did not restart from epoch 0
    assert same_weights(resumed, reference)


def test_a_corrupt_best_checkpoint_is_rebuilt_from_last(finished: tuple[Path, MLP, list[dict]],
                                                        tmp_path: Path) -> None:
    source, reference, records = finished
    folder = Path(shutil.copytree(source, tmp_path / "run"))
    damaged = bytearray((folder / "best.pt").read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    (folder / "best.pt").write_bytes(damaged)
    with pytest.warns(MentorWarning, match="rebuilt it from last.pt"):
        resumed, resumed_records = train(folder, resume=True)
    assert resumed_records == records and same_weights(resumed, reference)
    assert checkpoint.load(folder / "best.pt")["epoch"] == checkpoint.load(source / "best.pt")["epoch"]


def test_fewer_epochs_than_the_checkpoint_has_trained_is_an_error(finished: tuple[Path, MLP, list[dict]],
                                                                   tmp_path: Path) -> None:
    folder = Path(shutil.copytree(finished[0], tmp_path / "run"))
    with pytest.raises(MentorError, match=f"has trained {EPOCHS} epochs, more than the 2 asked for"):
        train(folder, epochs=2, resume=True)


def envelope(**fields: object) -> bytes:
    buffer = io.BytesIO()
    torch.save({"format": checkpoint.FORMAT, **fields}, buffer)
    return buffer.getvalue()


def sealed(payload: bytes) -> bytes:
    """An envelope whose checksum matches ``payload``: only the inner state is wrong."""
    return envelope(sha256=hashlib.sha256(payload).hexdigest(),
                    payload=torch.frombuffer(bytearray(payload), dtype=torch.uint8))


def saved(value: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("content", [
    envelope(), envelope(payload="text", sha256="0"), envelope(payload=torch.zeros(3), sha256="0"),
    envelope(payload=torch.zeros(2, 2, dtype=torch.uint8), sha256="0"),
    envelope(payload=torch.zeros(3, dtype=torch.uint8)),
    sealed(b"not a pickle at all"), sealed(saved([1, 2, 3])), saved({"no": "format"}), b"", b"\x80\x04garbage",
], ids=["no-payload", "text-payload", "float-payload", "2d-payload", "no-checksum", "not-a-pickle", "a-list",
        "no-header", "empty", "garbage"])
def test_a_crafted_or_damaged_checkpoint_is_a_one_line_error(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    path.write_bytes(content)
    with pytest.raises(MentorError) as error:
        checkpoint.load(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_a_non_finite_validation_loss_is_never_the_best(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scores = iter([{"accuracy": 0.9, "loss": math.nan}, {"accuracy": 0.5, "loss": 0.7},
                   {"accuracy": 0.95, "loss": math.inf}])
    monkeypatch.setattr(mentor.engine.loop, "evaluate", lambda *args, **kwargs: next(scores))
    settings = FitSettings(epochs=3, batch_size=8, progress=False)
    result = fit(Offline(MLP((4,), 2, hidden=(8,)), Objective(CE())), data(), data(20, 1), settings,
                 checkpoints=tmp_path)
    assert result.best_epoch == 2 and checkpoint.load(tmp_path / "best.pt")["epoch"] == 2
