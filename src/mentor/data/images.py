"""A user's folder of images by class: ``ROOT/<class>/*.png|jpg|jpeg`` (and optionally ``ROOT/train``, ``ROOT/test``).

Classes are the sub-folder names in sorted order (label 0, 1, ...); every image is read with Pillow, converted to
the mode of the first image found (``L`` grey or ``RGB``) and must share its size. Two ways to use it:

- :class:`ImageFolder`, a torch ``Dataset`` that reads one file per item, for folders larger than memory
  (``mentor.engine.fit(..., ImageFolder(root), ...)`` streams it, :mod:`mentor.data.streamed`);
- :func:`load_images`, the ``folder`` dataset's reader when the directory holds class folders
  (``mentor.data.load(DIR)``, a recipe's ``data: {name: folder, root: DIR}``): all images in memory as ``uint8``
  then ``float32`` in ``[0, 1]``, with the usual seeded splits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from mentor.errors import MentorError

SUFFIXES = (".png", ".jpg", ".jpeg")


def class_folders(root: Path) -> list[Path]:
    """The sub-folders of ``root`` that hold at least one image, sorted by name."""
    return sorted(p for p in root.iterdir() if p.is_dir() and any(_images(p)))


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)


def _read(path: Path, mode: str | None) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert(mode or ("L" if image.mode in ("L", "1", "I;16") else "RGB"))
            array = np.array(image, dtype=np.uint8)  # a writable copy
    except (OSError, UnidentifiedImageError) as error:
        raise MentorError(f"{path}: cannot be read as an image ({type(error).__name__}); keep only PNG/JPEG files "
                          "in the class folders") from None
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)  # (C, H, W)


class ImageFolder(Dataset):
    """Images under ``root/<class>/``, read one per item as ``float32 (C, H, W)`` in ``[0, 1]`` with their label.

    Args:
        root: The folder of class folders.
        classes: The class names in label order (default: the sorted sub-folders); a ``test`` folder uses the
            ``train`` folder's list so that labels agree.
    """

    def __init__(self, root: str | Path, classes: list[str] | None = None) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise MentorError(f"image folder {self.root} does not exist or is not a directory")
        names = classes if classes is not None else [p.name for p in class_folders(self.root)]
        if not names:
            raise MentorError(f"no class folders with PNG/JPEG images in {self.root}; expected ROOT/<class>/*.png")
        self.classes = list(names)
        self.samples = [(path, label) for label, name in enumerate(self.classes)
                        for path in (_images(self.root / name) if (self.root / name).is_dir() else [])]
        if not self.samples:
            raise MentorError(f"no PNG/JPEG images in the class folders of {self.root}")
        first = _read(self.samples[0][0], None)
        self.mode, self.shape = ("L" if first.shape[0] == 1 else "RGB"), first.shape

    def __len__(self) -> int:
        return len(self.samples)

    def raw(self, index: int) -> np.ndarray:
        """Image ``index`` as ``uint8 (C, H, W)``, checked against the first image's size."""
        path = self.samples[index][0]
        array = _read(path, self.mode)
        if array.shape != self.shape:
            raise MentorError(f"{path}: image of shape {array.shape[1:]} (H, W) but the first image of "
                              f"{self.root} has {self.shape[1:]}; resize the images to one size")
        return array

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return torch.from_numpy(self.raw(index)).float().div_(255.0), self.samples[index][1]


def load_images(root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, int]:
    """All images of ``root`` (class folders, or ``train/`` and ``test/`` of class folders) as ``uint8`` arrays:
    ``(train_x, train_y, test_x, test_y, num_classes)``; the test part is ``None`` without a ``test`` folder."""
    train_root = root / "train" if (root / "train").is_dir() else root
    train = ImageFolder(train_root)
    test = ImageFolder(root / "test", train.classes) if (root / "test").is_dir() and train_root != root else None

    def arrays(folder: ImageFolder) -> tuple[np.ndarray, np.ndarray]:
        inputs = np.empty((len(folder), *folder.shape), dtype=np.uint8)
        for index in range(len(folder)):
            inputs[index] = folder.raw(index)
        return inputs, np.array([label for _, label in folder.samples], dtype=np.int64)

    train_x, train_y = arrays(train)
    test_x, test_y = arrays(test) if test is not None else (None, None)
    if test_x is not None and test_x.shape[1:] != train_x.shape[1:]:
        raise MentorError(f"{root / 'test'}: images of shape {test_x.shape[1:]} but {train_root} has "
                          f"{train_x.shape[1:]}; resize the images to one size")
    return train_x, train_y, test_x, test_y, len(train.classes)


def has_class_folders(root: Path) -> bool:
    """Whether ``root`` is laid out as class folders of images (directly or under ``train/``)."""
    base = root / "train" if (root / "train").is_dir() else root
    return bool(class_folders(base))
