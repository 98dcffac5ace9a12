"""The ``digits-28`` dataset: scikit-learn's 8x8 digits drawn into MNIST's 28x28 frame (a target domain for MNIST).

MNIST's preprocessing (LeCun et al. 1998, "Gradient-based learning applied to document recognition") fits each
digit into a 20x20 box with anti-aliasing and centres it in a 28x28 image. ``digits-28`` does the same with the
8x8 images at 16 grey levels: a bilinear resize (``align_corners=False``, the anti-aliased reading of the coarse
pixels) to 20x20, then 4 pixels of zero padding on every side, values in ``[0, 1]``. So both datasets have inputs
``(N, 1, 28, 28)``, the same classes and the same digit size: what differs is the domain (coarse, blurred strokes
from another population of writers), which is what adapting a teacher from MNIST to it is about.

:func:`low_resolution` renders MNIST images the way ``digits-28`` was made (the 20x20 box averaged down to 8x8,
quantized to 16 grey levels, then drawn back into the frame): a second source domain, close to the target, for
multi-source adaptation.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from mentor.data.catalog import DATASETS
from mentor.data.dataset import RawData
from mentor.data.digits import load_digits
from mentor.errors import MentorError

BOX = 20
"""Side of the box MNIST fits a digit into."""
FRAME = 28
"""Side of an MNIST image."""
LEVELS = 16
"""Grey levels of scikit-learn's digits (values 0..16)."""


def mnist_frame(images: torch.Tensor) -> torch.Tensor:
    """Images ``(N, 1, h, w)`` in ``[0, 1]`` resized bilinearly to 20x20 and centred in 28x28: ``(N, 1, 28, 28)``."""
    boxed = F.interpolate(images, size=(BOX, BOX), mode="bilinear", align_corners=False).clamp(0.0, 1.0)
    margin = (FRAME - BOX) // 2
    return F.pad(boxed, (margin, margin, margin, margin))


def low_resolution(images: torch.Tensor, side: int = 8) -> torch.Tensor:
    """MNIST images ``(N, 1, 28, 28)`` in ``[0, 1]`` rendered like ``digits-28``: the centre 20x20 box averaged
    down to ``side`` x ``side``, quantized to 16 grey levels, and drawn back into the frame."""
    if images.ndim != 4 or tuple(images.shape[1:]) != (1, FRAME, FRAME):
        raise MentorError(f"low-resolution rendering takes MNIST-like images (N, 1, 28, 28); got "
                          f"{tuple(images.shape)}; use it with 28x28 grey source data")
    margin = (FRAME - BOX) // 2
    box = images[:, :, margin:margin + BOX, margin:margin + BOX]
    small = F.adaptive_avg_pool2d(box, side)
    return mnist_frame(torch.round(small.clamp(0.0, 1.0) * LEVELS) / LEVELS)


@DATASETS.register("digits-28", "scikit-learn digits (bundled, offline) drawn into MNIST's frame: 1,797 28x28 grey "
                                "digits (8x8 resized into a centred 20x20 box), 10 classes, fixed 25% test split")
def load_digits28(root: Path | None = None) -> RawData:
    """Load scikit-learn's digits as ``(N, 1, 28, 28)`` images in ``[0, 1]`` (module docstring).

    Args:
        root: Ignored: the data ships with scikit-learn.
    """
    raw = load_digits(root)
    return RawData(mnist_frame(raw.train_inputs), raw.train_targets, None, None, num_classes=raw.num_classes)
