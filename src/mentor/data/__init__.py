"""Datasets for distillation experiments: loading, seeded splits, fast in-memory batches, augmentation.

>>> from mentor.data import load, BatchIterator
>>> splits = load("digits", validation=0.1, seed=0)
>>> batches = BatchIterator(splits.train, 64, shuffle=True, seed=0)
"""

from mentor.data.augment import Jitter
from mentor.data.batches import BatchIterator
from mentor.data.cache import cache_dir
from mentor.data.catalog import DATASETS
from mentor.data.dataset import ArrayDataset, Splits
from mentor.data.idx import read_idx
from mentor.data.loading import load
from mentor.data.tables import load_table

__all__ = ["DATASETS", "ArrayDataset", "BatchIterator", "Jitter", "Splits", "cache_dir", "load", "load_table",
           "read_idx"]
