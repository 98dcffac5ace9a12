"""The ``digits`` dataset: scikit-learn's bundled 8x8 handwritten digits."""

from __future__ import annotations

from pathlib import Path

import torch

from mentor.data.catalog import DATASETS
from mentor.data.dataset import RawData


@DATASETS.register("digits", "scikit-learn load_digits (bundled, offline): 1,797 8x8 grey digits, 10 classes, "
                             "fixed stratified 25% test split")
def load_digits(root: Path | None = None) -> RawData:
    """Load scikit-learn's digits as ``(N, 1, 8, 8)`` images with values in ``[0, 1]``.

    Args:
        root: Ignored: the data ships with scikit-learn.

    Returns:
        All 1,797 samples as the training part; there is no official test split, so
        :func:`~mentor.data.splits.build_splits` holds out a fixed 25 %.
    """
    from sklearn.datasets import load_digits as sklearn_digits  # type: ignore[import-untyped]  # lazy: slow import

    bunch = sklearn_digits()
    inputs = torch.from_numpy(bunch.images).to(torch.float32).div_(16.0).unsqueeze(1)
    targets = torch.from_numpy(bunch.target).to(torch.int64)
    return RawData(inputs, targets, None, None, num_classes=10)
