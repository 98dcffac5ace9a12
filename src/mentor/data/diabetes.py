"""The ``diabetes`` dataset: scikit-learn's bundled diabetes regression data."""

from __future__ import annotations

from pathlib import Path

import torch

from mentor.data.catalog import DATASETS
from mentor.data.dataset import RawData


@DATASETS.register("diabetes", "scikit-learn load_diabetes (bundled, offline): 442 patients, 10 features, one "
                               "float target (disease progression after a year, 25 to 346), regression; fixed 25% "
                               "test split")
def load_diabetes(root: Path | None = None) -> RawData:
    """Load scikit-learn's diabetes data as inputs ``(442, 10)`` and float targets ``(442, 1)``.

    The features come mean-centred and scaled by scikit-learn; the targets are in their original units, so
    a model's mean squared error reads in the units² of disease progression (predicting the mean gives
    about 5,900). ``num_classes`` is the number of outputs, 1.

    Args:
        root: Ignored: the data ships with scikit-learn.
    """
    from sklearn.datasets import load_diabetes as sklearn_diabetes  # type: ignore[import-untyped]  # lazy: slow import

    bunch = sklearn_diabetes()
    inputs = torch.from_numpy(bunch.data).to(torch.float32)
    targets = torch.from_numpy(bunch.target).to(torch.float32).unsqueeze(1)
    return RawData(inputs, targets, None, None, num_classes=1)
