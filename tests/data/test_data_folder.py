"""Loading a user's directory of IDX or NumPy files, and its error messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mentor.data import load
from mentor.errors import MentorError


def save_numpy(root: Path, **arrays: np.ndarray) -> Path:
    for key, array in arrays.items():
        np.save(root / f"{key}.npy", array)
    return root


def test_idx_folder_by_path_and_by_name(idx_folder: Path, images) -> None:
    by_path = load(str(idx_folder), validation=0, normalize=False)
    by_name = load("folder", root=idx_folder, validation=0, normalize=False)
    assert by_path.name == str(idx_folder) and by_name.name == "folder"
    assert by_path.input_shape == (1, 6, 6) and by_path.num_classes == 3
    assert len(by_path.train) == 30 and len(by_path.test) == 12 and by_path.validation is None
    pixels, labels = images(30)
    torch.testing.assert_close(by_path.train.inputs[:, 0], torch.from_numpy(pixels).float() / 255)
    assert by_path.train.targets.dtype == torch.int64
    assert torch.equal(by_path.train.targets, torch.from_numpy(labels).long())
    assert torch.equal(by_name.test.inputs, by_path.test.inputs)


def test_idx_folder_accepts_test_prefix_and_plain_files(tmp_path: Path, write_idx, images) -> None:
    x, y = images(9)
    write_idx(tmp_path / "train-images-idx3-ubyte", x)
    write_idx(tmp_path / "train-labels-idx1-ubyte", y)
    write_idx(tmp_path / "test-images-idx3-ubyte", x[:3])
    write_idx(tmp_path / "test-labels-idx1-ubyte", y[:3])
    splits = load(str(tmp_path), validation=0)
    assert len(splits.test) == 3


def test_numpy_folder_vectors_and_float_inputs(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    train_x = rng.normal(size=(40, 5)).astype(np.float64)
    save_numpy(tmp_path, train_x=train_x, train_y=np.arange(40) % 4, test_x=train_x[:8], test_y=np.arange(8) % 4)
    splits = load(str(tmp_path), validation=0.25, normalize=False)
    assert splits.input_shape == (5,) and splits.num_classes == 4
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (30, 10, 8)
    assert splits.train.inputs.dtype == torch.float32


def test_npz_folder_without_test_holds_out_a_quarter(tmp_path: Path, images) -> None:
    x, y = images(40, classes=4)
    np.savez(tmp_path / "data.npz", train_x=x, train_y=y)
    splits = load(str(tmp_path), validation=0)
    assert (len(splits.train), len(splits.test)) == (30, 10)
    assert sorted(splits.test.targets.bincount().tolist()) == [2, 2, 3, 3]  # 2.5 per class, rounded


def test_numpy_images_get_channel_axis(tmp_path: Path, images) -> None:
    x, y = images(12)
    save_numpy(tmp_path, train_x=x, train_y=y, test_x=x, test_y=y)
    assert load(str(tmp_path), validation=0).input_shape == (1, 6, 6)


@pytest.mark.parametrize(
    ("arrays", "words"),
    [
        ({"train_x": np.zeros((4, 3), np.float32), "train_y": np.zeros(5, np.int64)},
         ["train_x.npy", "train_y.npy", "4", "5"]),
        ({"train_x": np.zeros((0, 3), np.float32), "train_y": np.zeros(0, np.int64)}, ["train_x.npy", "empty"]),
        ({"train_x": np.zeros((4, 3), np.int32), "train_y": np.zeros(4, np.int64)}, ["train_x.npy", "dtype int32"]),
        ({"train_x": np.zeros((4, 3), np.float32), "train_y": np.zeros(4, np.float32)}, ["train_y.npy", "integers"]),
        ({"train_x": np.zeros((4, 3), np.float32), "train_y": np.array([0, 1, -1, 0])}, ["train_y.npy", "negative"]),
        ({"train_x": np.full((4, 3), np.nan, np.float32), "train_y": np.zeros(4, np.int64)}, ["train_x.npy", "NaN"]),
        ({"train_x": np.zeros(4, np.float32), "train_y": np.zeros(4, np.int64)}, ["train_x.npy", "shape"]),
        ({"train_x": np.zeros((4, 3), np.float32), "train_y": np.array([0, 1, 0, 1]),
          "test_x": np.zeros((2, 3), np.float32), "test_y": np.array([0, 2])}, ["test_y.npy", "label 2", "0..1"]),
        ({"train_x": np.zeros((4, 3), np.float32), "train_y": np.array([0, 1, 0, 1]),
          "test_x": np.zeros((2, 4), np.float32), "test_y": np.array([0, 1])}, ["test_x.npy", "shape"]),
        ({"train_x": np.zeros((4, 3), np.float32), "train_y": np.zeros(4, np.int64),
          "test_x": np.zeros((2, 3), np.float32)}, ["test_x", "test_y", "both"]),
        ({"train_x": np.zeros((4, 3), np.float32)}, ["train_x", "train_y"]),
    ],
)
def test_bad_numpy_folders(tmp_path: Path, arrays: dict[str, np.ndarray], words: list[str]) -> None:
    save_numpy(tmp_path, **arrays)
    with pytest.raises(MentorError) as info:
        load(str(tmp_path))
    for word in words:
        assert word in str(info.value)


def test_bad_idx_folder_names_the_file(tmp_path: Path, write_idx, images) -> None:
    x, y = images(6)
    write_idx(tmp_path / "train-images-idx3-ubyte", x)
    write_idx(tmp_path / "train-labels-idx1-ubyte", y[:5])
    with pytest.raises(MentorError, match="train-images-idx3-ubyte has 6 samples.*train-labels-idx1-ubyte has 5"):
        load(str(tmp_path))


@pytest.mark.parametrize(("present", "words"), [
    (["train-images-idx3-ubyte"], "found train images but not train labels"),
    (["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"],
     "found test labels but not test images"),
    (["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"], "no training files"),
])
def test_incomplete_idx_folder(tmp_path: Path, write_idx, images, present: list[str], words: str) -> None:
    x, y = images(6)
    for name in present:
        write_idx(tmp_path / name, x if "images" in name else y)
    with pytest.raises(MentorError, match=words):
        load(str(tmp_path))


def test_npz_missing_key(tmp_path: Path) -> None:
    np.savez(tmp_path / "data.npz", train_x=np.zeros((3, 2), np.float32))
    with pytest.raises(MentorError, match=r"data.npz.*missing key\(s\) train_y"):
        load(str(tmp_path))


def test_object_array_is_rejected(tmp_path: Path) -> None:
    np.save(tmp_path / "train_x.npy", np.array([{"a": 1}] * 3, dtype=object), allow_pickle=True)
    np.save(tmp_path / "train_y.npy", np.zeros(3, np.int64))
    with pytest.raises(MentorError, match="train_x.npy.*cannot read"):
        load(str(tmp_path))


def test_empty_directory_lists_expected_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(MentorError, match="no dataset files") as info:
        load(str(tmp_path))
    assert "notes.txt" in str(info.value) and "train_x.npy" in str(info.value)
    assert "train-images-idx3-ubyte" in str(info.value)


def test_folder_needs_root() -> None:
    with pytest.raises(MentorError, match="root=DIR"):
        load("folder")


def test_folder_root_must_exist(tmp_path: Path) -> None:
    with pytest.raises(MentorError, match="does not exist"):
        load("folder", root=tmp_path / "missing")
