"""Checkpoints: atomic, checksummed, loaded with ``weights_only=True``.

A checkpoint file holds the serialized state as a byte tensor next to its SHA-256, so a damaged file
is detected before it is unpickled. Writing goes to a temporary file that is fsynced and renamed over
the target, so a crash leaves the old file or the new one, never half of one. ``rotate=True`` keeps the
previous version as ``<name>.prev.pt`` (a hard link made before the new file replaces the old, so at every
moment the target exists): :func:`load_latest` falls back to it when the newest is damaged or missing.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from mentor.errors import MentorError, warn, writing

FORMAT = "mentor-checkpoint/1"


def previous(path: Path) -> Path:
    """Where the version before ``path`` is kept."""
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def _write_atomic(data: bytes, path: Path) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with writing(path), os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def save(state: dict[str, Any], path: Path, rotate: bool = False) -> None:
    """Write ``state`` (tensors and plain containers) to ``path`` atomically with a checksum."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    envelope = io.BytesIO()
    torch.save({"format": FORMAT, "sha256": hashlib.sha256(payload).hexdigest(),
                "payload": torch.frombuffer(bytearray(payload), dtype=torch.uint8)}, envelope)
    if rotate and path.exists():
        _keep_previous(path)
    _write_atomic(envelope.getvalue(), path)


def _keep_previous(path: Path) -> None:
    """Make ``<name>.prev.pt`` the current ``path`` without a moment where neither holds a complete file."""
    link = path.with_name(f".{path.name}.prev.tmp")
    link.unlink(missing_ok=True)
    try:
        os.link(path, link)
    except OSError:  # a file system without hard links: a copy does the same, slower
        link.write_bytes(path.read_bytes())
    os.replace(link, previous(path))


def load(path: Path) -> dict[str, Any]:
    """Read a checkpoint safely: checksum verified, tensors and plain containers only.

    Raises:
        MentorError: naming the file when it is missing, damaged, not a Mentor checkpoint or crafted.
    """
    if not path.is_file():
        raise MentorError(f"checkpoint {str(path)!r} does not exist")
    envelope = _unpickle(path, lambda: torch.load(path, map_location="cpu", weights_only=True))
    payload = envelope.get("payload") if isinstance(envelope, dict) else None
    if not isinstance(envelope, dict) or envelope.get("format") != FORMAT:
        raise MentorError(f"checkpoint {str(path)!r} is not a Mentor checkpoint (no {FORMAT} header)")
    well_formed = isinstance(payload, torch.Tensor) and payload.dtype == torch.uint8 and payload.ndim == 1
    if not well_formed or not isinstance(envelope.get("sha256"), str):
        raise MentorError(f"checkpoint {str(path)!r} has a malformed envelope; it is damaged or was not written by "
                          "Mentor")
    data = payload.numpy().tobytes()
    if hashlib.sha256(data).hexdigest() != envelope["sha256"]:
        raise MentorError(f"checkpoint {str(path)!r} is corrupt (checksum mismatch)")
    state = _unpickle(path, lambda: torch.load(io.BytesIO(data), map_location="cpu", weights_only=True))
    if not isinstance(state, dict):
        raise MentorError(f"checkpoint {str(path)!r} holds a {type(state).__name__}, not a Mentor state")
    return state


def _unpickle(path: Path, read: Callable[[], Any]) -> Any:
    try:
        with warnings.catch_warnings():  # torch's notes on odd pickles: the error below says what matters
            warnings.simplefilter("ignore")
            return read()
    except Exception as error:  # noqa: BLE001 - any unpickling failure means a bad file
        raise MentorError(f"checkpoint {str(path)!r} cannot be read ({type(error).__name__}); "
                          "it is corrupt or not a Mentor checkpoint") from None


def exists(path: Path) -> bool:
    """Whether ``path`` or its previous version is there (a crash may leave only the previous one)."""
    return path.exists() or previous(path).exists()


def load_latest(path: Path) -> tuple[dict[str, Any], Path]:
    """The newest readable of ``path`` and its previous version, with the file it came from."""
    errors = []
    for candidate in (path, previous(path)):
        if candidate.exists():
            try:
                return load(candidate), candidate
            except MentorError as error:
                errors.append(str(error))
    raise MentorError("; ".join(errors) or f"no checkpoint at {str(path)!r}")


def final(folder: Path) -> Path:
    """The file holding the weights a fit kept in ``folder``: ``best.pt`` (best on validation), else ``last.pt``."""
    for name in ("best.pt", "last.pt"):
        if (folder / name).is_file():
            return folder / name
    raise MentorError(f"no best.pt or last.pt in {str(folder)!r}; the model was not trained there")


def load_kept(folder: Path) -> dict[str, Any]:
    """The state of the weights a fit kept in ``folder`` (see :func:`final`); when ``best.pt`` is damaged, the
    copy of the best weights that ``last.pt`` (or its previous version) carries, with a warning."""
    path = final(folder)
    try:
        return load(path)
    except MentorError as error:
        if path.name != "best.pt" or not exists(folder / "last.pt"):
            raise
        failure = error
    try:
        state, source = load_latest(folder / "last.pt")
    except MentorError:
        raise failure from None
    if "best_models" not in state:  # written before last.pt kept the best weights
        raise failure
    warn(f"{failure}; used the best weights that {source.name} keeps")
    models = state["models"] if state["best_models"] is None else state["best_models"]
    return {"models": models, "epoch": state["best"]["epoch"]}
