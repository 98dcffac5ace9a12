"""The cache directory and atomic .npy writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mentor.data import cache_dir
from mentor.data.cache import save_npy_atomic


def test_cache_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MENTOR_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()


def test_cache_dir_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MENTOR_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == tmp_path / ".cache" / "mentor" and cache_dir().is_dir()


def test_save_npy_atomic(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "a.npy"
    save_npy_atomic(path, np.arange(5))
    save_npy_atomic(path, np.arange(3))  # replaces
    np.testing.assert_array_equal(np.load(path), np.arange(3))
    assert [p.name for p in path.parent.iterdir()] == ["a.npy"]  # no temp files left
