"""The ``folder`` dataset: a user's own directory of IDX or NumPy files, or of images in class folders."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from mentor.data.arrays import check_labels, check_pair, to_inputs, to_targets
from mentor.data.catalog import DATASETS
from mentor.data.dataset import RawData
from mentor.data.idx import read_idx
from mentor.data.images import has_class_folders, load_images
from mentor.errors import MentorError

# Accepted IDX file names (without the optional ".gz"), per part, first match wins.
IDX_FILES: dict[str, tuple[str, ...]] = {
    "train images": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "train labels": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "test images": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte",
                    "test-images-idx3-ubyte", "test-images.idx3-ubyte"),
    "test labels": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte",
                    "test-labels-idx1-ubyte", "test-labels.idx1-ubyte"),
}
NUMPY_KEYS = ("train_x", "train_y", "test_x", "test_y")
EXPECTED = ("IDX files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
            "t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]; 'test-' also accepted), "
            "or train_x.npy, train_y.npy, test_x.npy, test_y.npy, or one data.npz with those keys, "
            "or PNG/JPEG images in class folders (DIR/<class>/*.png, optionally under DIR/train and DIR/test)")


def find_idx(root: Path) -> dict[str, Path | None]:
    """The IDX file present in ``root`` for each part (``None`` where none is)."""
    found: dict[str, Path | None] = {}
    for part, names in IDX_FILES.items():
        candidates = [root / (n + gz) for n in names for gz in ("", ".gz")]
        found[part] = next((p for p in candidates if p.is_file()), None)
    return found


def raw_from_arrays(arrays: dict[str, np.ndarray | None], names: dict[str, str],
                    num_classes: int | None = None) -> RawData:
    """Check and convert ``train_x``/``train_y`` (and optional ``test_x``/``test_y``) arrays.

    Args:
        arrays: The arrays under the keys of :data:`NUMPY_KEYS`; the test ones may be ``None``.
        names: The file each key came from, for error messages.
        num_classes: The known class count; inferred as ``max(train label) + 1`` when ``None``.

    Raises:
        MentorError: Naming the file and the problem (dtype, length, emptiness, label range).
    """
    train_x, train_y = arrays["train_x"], arrays["train_y"]
    if train_x is None or train_y is None:
        raise MentorError(f"{names.get('train_x', 'data')}: training inputs and labels are both required")
    inputs, targets = to_inputs(train_x, names["train_x"]), to_targets(train_y, names["train_y"])
    check_pair(inputs, targets, names["train_x"], names["train_y"])
    classes = num_classes if num_classes is not None else int(targets.max()) + 1
    check_labels(targets, classes, names["train_y"])
    test_x, test_y = arrays.get("test_x"), arrays.get("test_y")
    if test_x is None or test_y is None:
        return RawData(inputs, targets, None, None, num_classes=classes)
    test_inputs, test_targets = to_inputs(test_x, names["test_x"]), to_targets(test_y, names["test_y"])
    check_pair(test_inputs, test_targets, names["test_x"], names["test_y"])
    check_labels(test_targets, classes, names["test_y"])
    if test_inputs.shape[1:] != inputs.shape[1:]:
        raise MentorError(f"{names['test_x']}: test samples have shape {tuple(test_inputs.shape[1:])} but "
                          f"training samples ({names['train_x']}) have {tuple(inputs.shape[1:])}")
    return RawData(inputs, targets, test_inputs, test_targets, num_classes=classes)


def _pairs_complete(present: Mapping[str, object], keys: tuple[str, str], where: Path) -> bool:
    """True when both files of a (samples, labels) pair are there, False when neither; raise otherwise."""
    have = [k for k in keys if present[k] is not None]
    if len(have) == 1:
        missing = next(k for k in keys if k not in have)
        raise MentorError(f"{where}: found {have[0]} but not {missing}; provide both or neither")
    return len(have) == 2


def _load_idx(root: Path, found: dict[str, Path | None], num_classes: int | None) -> RawData:
    if not _pairs_complete(found, ("train images", "train labels"), root):
        raise MentorError(f"{root}: found test IDX files but no training files ({IDX_FILES['train images'][0]}[.gz] "
                          f"and {IDX_FILES['train labels'][0]}[.gz])")
    has_test = _pairs_complete(found, ("test images", "test labels"), root)
    keys = dict(zip(NUMPY_KEYS, IDX_FILES, strict=True))
    paths = {k: found[part] for k, part in keys.items() if has_test or k.startswith("train")}
    arrays: dict[str, np.ndarray | None] = {k: read_idx(p) for k, p in paths.items() if p is not None}
    return raw_from_arrays(arrays, {k: str(p) for k, p in paths.items()}, num_classes)


def _load_numpy(path: Path, key: str | None = None) -> np.ndarray:
    try:
        if key is None:
            loaded = np.load(path, allow_pickle=False)
        else:
            with np.load(path, allow_pickle=False) as archive:
                loaded = archive[key]
    except (OSError, ValueError, EOFError) as exc:
        raise MentorError(f"{path}: cannot read as NumPy data ({exc}); save it with numpy.save / numpy.savez "
                          "and a plain numeric dtype") from None
    if not isinstance(loaded, np.ndarray):
        raise MentorError(f"{path}: expected one array saved with numpy.save, found {type(loaded).__name__}")
    return loaded


def _npz_keys(path: Path) -> set[str]:
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise MentorError(f"{path}: cannot read as a NumPy .npz archive ({exc})") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise MentorError(f"{path}: is a single array, not an .npz archive; save it with numpy.savez("
                          "path, train_x=..., train_y=..., test_x=..., test_y=...)")
    with loaded:
        return set(loaded.files)


def load_folder(root: Path | None, num_classes: int | None = None) -> RawData:
    """Load a directory holding IDX or NumPy files (see :data:`EXPECTED`).

    Images stored as ``(N, H, W)`` get a channel axis; ``uint8`` values are scaled to ``[0, 1]``.
    Without test files the training files are all there is, and a fixed 25 % test split is held out.

    Raises:
        MentorError: When ``root`` is missing or not a directory, no known files are in it, a pair is
            incomplete, or an array is invalid (the message names the file).
    """
    if root is None:
        raise MentorError("the folder dataset needs a directory: load('folder', root=DIR) or load(DIR) "
                          "(on the command line: --set data.root=DIR)")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise MentorError(f"data directory {root} does not exist or is not a directory")
    found = find_idx(root)
    if any(p is not None for p in found.values()):
        return _load_idx(root, found, num_classes)
    if has_class_folders(root):  # ROOT/<class>/*.png (or ROOT/train/<class>, ROOT/test/<class>)
        train_x, train_y, test_x, test_y, classes = load_images(root)
        names = {"train_x": str(root), "train_y": str(root), "test_x": str(root / "test"),
                 "test_y": str(root / "test")}
        return raw_from_arrays({"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y},
                               names, num_classes if num_classes is not None else classes)
    files: dict[str, object] = {k: (root / f"{k}.npy") if (root / f"{k}.npy").is_file() else None
                                for k in NUMPY_KEYS}
    if _pairs_complete(files, ("train_x", "train_y"), root):
        has_test = _pairs_complete(files, ("test_x", "test_y"), root)
        used: tuple[str, ...] = NUMPY_KEYS if has_test else NUMPY_KEYS[:2]
        arrays: dict[str, np.ndarray | None] = {k: _load_numpy(root / f"{k}.npy") for k in used}
        return raw_from_arrays(arrays, {k: str(root / f"{k}.npy") for k in used}, num_classes)
    npz = root / "data.npz"
    if npz.is_file():
        keys = _npz_keys(npz)
        missing = [k for k in NUMPY_KEYS[:2] if k not in keys]
        if missing:
            listing = ", ".join(sorted(keys)) or "none"
            raise MentorError(f"{npz}: missing key(s) {', '.join(missing)} (found: {listing})")
        _pairs_complete({k: k if k in keys else None for k in NUMPY_KEYS[2:]}, ("test_x", "test_y"), npz)
        used = tuple(k for k in NUMPY_KEYS if k in keys)
        arrays = {k: _load_numpy(npz, k) for k in used}
        return raw_from_arrays(arrays, {k: f"{npz}[{k}]" for k in used}, num_classes)
    present = sorted(p.name for p in root.iterdir())[:8]
    raise MentorError(f"no dataset files in {root} (found: {', '.join(present) or 'nothing'}); "
                      f"expected {EXPECTED}")


DATASETS.register("folder", "your own directory (root=DIR or load(DIR)): IDX files, or train_x/train_y/"
                            "test_x/test_y .npy, or data.npz, or PNG/JPEG images in class folders")(load_folder)
