"""Where downloaded data lives, and atomic writes into it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np


def cache_path() -> Path:
    """The cache directory (``$MENTOR_CACHE`` or ``~/.cache/mentor``) without creating it."""
    env = os.environ.get("MENTOR_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mentor"


def cache_dir() -> Path:
    """The cache directory, created on demand.

    Returns:
        ``$MENTOR_CACHE`` when set, otherwise ``~/.cache/mentor``.
    """
    path = cache_path()
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_npy_atomic(path: Path, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` as ``.npy`` so readers never see a half-written file.

    The array goes to a temporary file in the same directory first, which then replaces ``path``
    in one ``os.replace`` call.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array, allow_pickle=False)
        os.chmod(tmp, 0o644)  # mkstemp creates owner-only files; the cache is ordinary data
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
