"""A folder of PNG/JPEG images by class: read lazily as a torch Dataset, or loaded in memory by ``load(DIR)``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mentor.data import load
from mentor.data.images import ImageFolder
from mentor.engine import FitSettings, OptimizerSettings, fit
from mentor.errors import MentorError
from mentor.losses import CE, Objective
from mentor.models import MLP
from mentor.schemes import Offline


def write_images(root: Path, per_class: int = 4, size: tuple[int, int] = (5, 4)) -> None:
    """Class ``cat`` images are all 0, class ``dog`` images all 255 (grey PNGs of ``size`` W x H)."""
    for value, name in ((0, "cat"), (255, "dog")):
        (root / name).mkdir(parents=True)
        for index in range(per_class):
            Image.fromarray(np.full(size[::-1], value, dtype=np.uint8), mode="L").save(root / name / f"{index}.png")


def test_an_image_folder_is_read_one_file_per_item(tmp_path: Path) -> None:
    write_images(tmp_path)
    (tmp_path / "notes.txt").write_text("not a class folder")
    images = ImageFolder(tmp_path)
    assert images.classes == ["cat", "dog"] and len(images) == 8
    inputs, label = images[5]
    assert label == 1 and inputs.shape == (1, 4, 5) and torch.equal(inputs, torch.ones(1, 4, 5))
    assert torch.equal(images[0][0], torch.zeros(1, 4, 5))


def test_load_reads_class_folders_into_memory_with_train_and_test(tmp_path: Path) -> None:
    write_images(tmp_path / "train", per_class=6)
    write_images(tmp_path / "test", per_class=2)
    splits = load(str(tmp_path), validation=0.25, normalize=False)
    assert splits.num_classes == 2 and splits.input_shape == (1, 4, 5)
    assert len(splits.train) == 9 and len(splits.validation) == 3 and len(splits.test) == 4
    means = splits.train.inputs.mean(dim=(1, 2, 3))
    assert torch.equal(means, splits.train.targets.float())  # cat images are 0, dog images 1


def test_images_of_another_size_are_named(tmp_path: Path) -> None:
    write_images(tmp_path)
    Image.fromarray(np.zeros((7, 7), dtype=np.uint8), mode="L").save(tmp_path / "dog" / "big.png")
    with pytest.raises(MentorError, match=r"big.png: image of shape \(7, 7\).*resize"):
        load(str(tmp_path))


def test_a_damaged_image_is_named(tmp_path: Path) -> None:
    write_images(tmp_path)
    (tmp_path / "cat" / "broken.png").write_bytes(b"not a png")
    images = ImageFolder(tmp_path)  # cat/0-3.png, cat/broken.png, dog/0-3.png
    with pytest.raises(MentorError, match=r"broken.png: cannot be read as an image"):
        images[4]


def test_fit_streams_an_image_folder(tmp_path: Path) -> None:
    write_images(tmp_path, per_class=8)
    torch.manual_seed(0)
    model = MLP((1, 4, 5), 2, hidden=(4,))
    settings = FitSettings(epochs=3, batch_size=4, progress=False, optimizer=OptimizerSettings("adam", 0.1))
    result = fit(Offline(model, Objective(CE())), ImageFolder(tmp_path), ImageFolder(tmp_path), settings)
    assert result.best["val/student/accuracy"] == 1.0  # all-black against all-white is learnt at once
