"""Shared helpers for the data tests: writing small IDX and NumPy datasets into tmp_path."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

IdxWriter = Callable[[Path, np.ndarray], Path]


def _write_idx(path: Path, array: np.ndarray) -> Path:
    """Write a uint8 array as an IDX file (gzipped when the name ends in .gz)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


@pytest.fixture
def write_idx() -> IdxWriter:
    return _write_idx


def make_images(n: int, classes: int = 3, size: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random uint8 images (n, size, size) and balanced labels 0..classes-1."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, size, size), dtype=np.uint8)
    labels = (np.arange(n) % classes).astype(np.uint8)
    return images, labels


@pytest.fixture
def images() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """The :func:`make_images` factory (fixtures avoid importing conftest by name)."""
    return make_images


@pytest.fixture
def idx_folder(tmp_path: Path) -> Path:
    """A directory with MNIST-style gzipped IDX files: 30 train and 12 test 6x6 images, 3 classes."""
    train_x, train_y = make_images(30)
    test_x, test_y = make_images(12, seed=1)
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", train_x)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", train_y)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", test_x)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", test_y)
    return tmp_path
