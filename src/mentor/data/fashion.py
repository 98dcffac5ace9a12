"""The ``fashion-mnist`` dataset, read from the IDX files of the Debian package ``dataset-fashion-mnist``."""

from __future__ import annotations

from pathlib import Path

from mentor.data.catalog import DATASETS
from mentor.data.dataset import RawData
from mentor.data.folder import IDX_FILES, find_idx, load_folder
from mentor.errors import MentorError

DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")
"""Where ``apt-get install dataset-fashion-mnist`` puts the four gzipped IDX files."""


@DATASETS.register("fashion-mnist", "Zalando Fashion-MNIST (Debian package dataset-fashion-mnist): 60,000 train + "
                                    "10,000 test 28x28 grey images, 10 classes")
def load_fashion_mnist(root: Path | None = None) -> RawData:
    """Load Fashion-MNIST as ``(N, 1, 28, 28)`` images in ``[0, 1]`` with its official test split.

    Args:
        root: Directory with the IDX files (default :data:`DEFAULT_ROOT`).

    Raises:
        MentorError: Listing the missing files and how to get them.
    """
    root = Path(root).expanduser() if root is not None else DEFAULT_ROOT
    found: dict[str, Path | None] = find_idx(root) if root.is_dir() else dict.fromkeys(IDX_FILES)
    missing = [f"{IDX_FILES[part][0]}[.gz]" for part, path in found.items() if path is None]
    if missing:
        raise MentorError(f"fashion-mnist: missing {', '.join(missing)} in {root}; install them with "
                          "`apt-get install dataset-fashion-mnist`, or pass root=DIR "
                          "(command line: --set data.root=DIR) for a directory that holds them")
    return load_folder(root, num_classes=10)
