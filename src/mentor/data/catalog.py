"""The table of dataset loaders, looked up by name in recipes and on the command line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mentor.data.dataset import RawData
from mentor.registry import Registry

Loader = Callable[[Path | None], RawData]
"""A dataset loader: takes the optional ``root`` directory and returns the raw train/test arrays."""

DATASETS: Registry[Loader] = Registry("dataset")
"""Dataset name -> loader; each summary says where the data comes from and how big it is."""
