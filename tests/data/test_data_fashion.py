"""Fashion-MNIST from the Debian package, or from fake IDX files in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mentor.data import load
from mentor.data.fashion import DEFAULT_ROOT
from mentor.errors import MentorError

INSTALLED = (DEFAULT_ROOT / "train-images-idx3-ubyte.gz").is_file()


def test_fake_fashion_files(tmp_path: Path, write_idx) -> None:
    images = np.zeros((20, 28, 28), np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(20) % 3)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images[:5])
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(5) % 3)
    splits = load("fashion-mnist", root=tmp_path, validation=0, normalize=False)
    assert splits.num_classes == 10  # fixed for the dataset, even if few classes occur
    assert (len(splits.train), len(splits.test), splits.input_shape) == (20, 5, (1, 28, 28))


def test_fake_fashion_label_out_of_range(tmp_path: Path, write_idx) -> None:
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((2, 3, 3), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.array([1, 10]))
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((1, 3, 3), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([1]))
    with pytest.raises(MentorError, match=r"train-labels-idx1-ubyte: label 10 is not in 0\.\.9"):
        load("fashion-mnist", root=tmp_path)


@pytest.mark.parametrize("sub", ["", "missing-dir"])
def test_missing_files_say_how_to_get_them(tmp_path: Path, write_idx, sub: str) -> None:
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((2, 3, 3), np.uint8))
    with pytest.raises(MentorError) as info:
        load("fashion-mnist", root=tmp_path / sub)
    message = str(info.value)
    for words in ("t10k-images-idx3-ubyte[.gz]", "train-labels-idx1-ubyte[.gz]",
                  "apt-get install dataset-fashion-mnist", "root=DIR", "--set data.root=DIR"):
        assert words in message
    assert ("train-images-idx3-ubyte[.gz]" in message) == (sub != "")


@pytest.mark.skipif(not INSTALLED, reason="apt-get install dataset-fashion-mnist to run this test")
def test_real_fashion_mnist() -> None:
    splits = load("fashion-mnist", validation=0.1, limit=2000)
    assert splits.input_shape == (1, 28, 28) and splits.num_classes == 10
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (1800, 200, 2000)  # type: ignore[arg-type]
