"""``load``: from a dataset name (or a directory) to ready-to-train :class:`Splits`."""

from __future__ import annotations

from pathlib import Path

# Importing the source modules registers their loaders in DATASETS.
from mentor.data import diabetes, digits, digits28, fashion, folder, mnist  # noqa: F401
from mentor.data.catalog import DATASETS
from mentor.data.dataset import Splits
from mentor.data.splits import build_splits
from mentor.errors import unknown


def load(name: str, *, validation: float = 0.1, seed: int = 0, root: str | Path | None = None,
         limit: int | None = None, normalize: bool = True, offset: int = 0) -> Splits:
    """Load a registered dataset, or a directory of files, as train/validation/test splits.

    Args:
        name: A name in :data:`DATASETS` (``digits``, ``fashion-mnist``, ``mnist``, ``folder``) or
            the path of an existing directory (loaded like ``folder``).
        validation: Fraction of the training part held out, stratified by class and drawn from
            ``seed``; ``0`` gives ``validation=None``.
        seed: Seed of the validation split (the test split never depends on it).
        root: Data directory for sources that read files (``fashion-mnist``, ``folder``; the cache
            folder for ``mnist``); ignored by ``digits``.
        limit: Keep only the first ``limit`` samples of the training part and of the test part
            (before the validation split is carved out), for quick runs.
        normalize: Standardize inputs with the per-channel mean and std of the training split.
        offset: Skip the first ``offset`` samples of the training part (before ``limit``), so that a
            run can learn from samples another run never saw; the test part is unaffected.

    Returns:
        The splits; inputs are ``float32``, targets ``int64``.

    Raises:
        MentorError: For an unknown name (listing the valid ones), missing or invalid files, or
            out-of-range arguments.
    """
    path = Path(name).expanduser()
    if name in DATASETS:
        loader = DATASETS.get(name)
        source = Path(root).expanduser() if root is not None else None
        label = name
    elif path.is_dir():
        loader, source, label = DATASETS.get("folder"), path, str(path)
    else:
        raise unknown("dataset", name, DATASETS.names())
    raw = loader(source)
    splits = build_splits(raw, label, validation=validation, seed=seed, limit=limit, normalize=normalize,
                          offset=offset)
    splits.recipe = {"name": name, "root": None if root is None else str(root), "validation": validation,
                     "limit": limit, "normalize": normalize, **({"offset": offset} if offset else {})}
    return splits
