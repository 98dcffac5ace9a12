"""Checkpoints: atomic, checksummed, loaded with ``weights_only=True``.

A checkpoint file holds the serialized state as a byte tensor next to its SHA-256, so a damaged file
is detected before it is unpickled. Writing goes to a temporary file that is fsynced and renamed over
the target, so a crash leaves the old file or the new one, never half of one. ``rotate=True`` keeps the
previous version as ``<name>.prev.pt``: :func:`load_latest` falls back to it when the newest is damaged.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from mentor.errors import MentorError

FORMAT = "mentor-checkpoint/1"


def previous(path: Path) -> Path:
    """Where the version before ``path`` is kept."""
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def _write_atomic(data: bytes, path: Path) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
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
        os.replace(path, previous(path))
    _write_atomic(envelope.getvalue(), path)


def load(path: Path) -> dict[str, Any]:
    """Read a checkpoint safely: checksum verified, tensors and plain containers only."""
    if not path.is_file():
        raise MentorError(f"checkpoint {str(path)!r} does not exist")
    try:
        envelope = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure means a bad file
        raise MentorError(f"checkpoint {str(path)!r} cannot be read ({type(error).__name__}); "
                          "it is corrupt or not a Mentor checkpoint") from None
    if not isinstance(envelope, dict) or envelope.get("format") != FORMAT:
        raise MentorError(f"checkpoint {str(path)!r} is not a Mentor checkpoint (no {FORMAT} header)")
    payload = envelope["payload"].numpy().tobytes()
    if hashlib.sha256(payload).hexdigest() != envelope["sha256"]:
        raise MentorError(f"checkpoint {str(path)!r} is corrupt (checksum mismatch)")
    return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)


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
