"""Teacher-output cache: a frozen teacher's logits and tapped features, computed once per dataset.

In offline distillation with deterministic inputs the teacher's outputs never change between epochs,
so the live teacher forward pass (often most of the cost of a step) is paid once. The outputs are
stored as ``.npy`` files under ``cache_dir()/teacher-outputs/<key>/`` and memory-mapped; ``<key>`` is
a SHA-256 of the teacher's weights and buffers, the dataset's inputs, the tapped paths and the
compression, so a changed teacher or dataset never reads a stale entry.

Optional top-k compression keeps the k largest logits of each sample and their indices, plus the
log-partition function: the softmax of the reconstruction gives the exact probabilities of the top-k
classes and spreads the remaining mass uniformly over the others.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import weakref
from pathlib import Path

import numpy as np
import torch

from mentor.batch import Outputs
from mentor.data import ArrayDataset, BatchIterator, cache_dir
from mentor.errors import MentorError
from mentor.teachers.frozen import FrozenTeacher

FORMAT = "teacher-outputs/1"
_DIGESTS: dict[int, tuple[int, str]] = {}  # id(tensor) -> (version, digest), forgotten with the tensor


def tensor_digest(tensor: torch.Tensor, remember: bool = False) -> str:
    """SHA-256 of a tensor's dtype, shape and bytes.

    With ``remember`` (for large datasets hashed at every fit) the digest is kept while the tensor lives
    and its version counter is unchanged, so an in-place edit is noticed.
    """
    known = _DIGESTS.get(id(tensor))
    if known is not None and known[0] == tensor._version:
        return known[1]
    digest = hashlib.sha256(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
    digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().data)  # no copy
    value = digest.hexdigest()
    if remember:
        if id(tensor) not in _DIGESTS:
            weakref.finalize(tensor, _DIGESTS.pop, id(tensor), None)
        _DIGESTS[id(tensor)] = (tensor._version, value)
    return value


def cache_key(teacher: FrozenTeacher, dataset: ArrayDataset, taps: tuple[str, ...], top_k: int | None) -> str:
    digest = hashlib.sha256(f"{FORMAT}|{taps}|{top_k}".encode())
    for name, value in sorted(teacher.model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor_digest(value).encode())
    digest.update(tensor_digest(dataset.inputs, remember=True).encode())
    return digest.hexdigest()[:32]


def _file(path: str) -> str:
    return path.replace("/", "_").replace(":", "__") + ".npy"


class TeacherCache:
    """Cached outputs of a frozen teacher on one dataset, looked up by sample index."""

    def __init__(self, folder: Path, taps: tuple[str, ...], top_k: int | None) -> None:
        self.folder, self.taps, self.top_k = folder, taps, top_k
        self.arrays = {name.name: np.load(name, mmap_mode="r") for name in folder.glob("*.npy")}

    @classmethod
    def build(cls, teacher: FrozenTeacher, dataset: ArrayDataset, taps: tuple[str, ...] = (),
              top_k: int | None = None, batch_size: int = 128, root: Path | None = None) -> TeacherCache:
        """Load the entry for this teacher, dataset and taps, computing and storing it first if needed.

        ``batch_size`` of the teacher's passes: a training-sized batch, because CPU convolutions run slower
        per sample over large ones (`mentor bench overhead`: the cnn-medium cache build over Fashion-MNIST
        took 16.5 s in batches of 1,024 and 12.1 s in batches of 128).
        """
        if top_k is not None and top_k < 1:
            raise MentorError(f"The 'top_k' parameter of the teacher cache must be an int >= 1. Got {top_k}.")
        folder = (root or cache_dir() / "teacher-outputs") / cache_key(teacher, dataset, taps, top_k)
        if not (folder / "complete").exists():
            cls._compute(teacher, dataset, taps, top_k, batch_size, folder)
        return cls(folder, taps, top_k)

    @staticmethod
    def _compute(teacher: FrozenTeacher, dataset: ArrayDataset, taps: tuple[str, ...], top_k: int | None,
                 batch_size: int, folder: Path) -> None:
        parts: dict[str, list[np.ndarray]] = {}
        for inputs, _ in BatchIterator(dataset, batch_size):
            outputs = teacher.outputs(inputs, taps)
            logits = outputs.logits.float()
            if top_k is not None:
                values, indices = logits.topk(min(top_k, logits.shape[1]), dim=1)
                stored = {"topk_values.npy": values, "topk_indices.npy": indices,
                          "logsumexp.npy": logits.logsumexp(dim=1)}
            else:
                stored = {"logits.npy": logits}
            stored.update({_file(path): outputs.features[path] for path in taps})
            for name, value in stored.items():
                parts.setdefault(name, []).append(value.cpu().numpy())
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
        try:
            for name, chunks in parts.items():
                np.save(staging / name, np.concatenate(chunks), allow_pickle=False)
            np.save(staging / "classes.npy", np.array([outputs.logits.shape[1]]), allow_pickle=False)
            (staging / "complete").write_text(FORMAT)
            os.replace(staging, folder)
        except OSError:
            if not (folder / "complete").exists():  # nobody else finished the same entry meanwhile
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def logits(self, indices: np.ndarray) -> torch.Tensor:
        if self.top_k is None:
            return torch.from_numpy(np.ascontiguousarray(self.arrays["logits.npy"][indices]))
        values = torch.from_numpy(np.ascontiguousarray(self.arrays["topk_values.npy"][indices]))
        positions = torch.from_numpy(np.ascontiguousarray(self.arrays["topk_indices.npy"][indices]))
        partition = torch.from_numpy(np.ascontiguousarray(self.arrays["logsumexp.npy"][indices]))
        classes = int(self.arrays["classes.npy"][0])
        kept = (values - partition[:, None]).exp().sum(dim=1)
        others = max(classes - values.shape[1], 1)
        fill = torch.log((1 - kept).clamp_min(1e-12) / others) + partition
        logits = fill[:, None].expand(-1, classes).clone()
        return logits.scatter_(1, positions, values)

    def outputs(self, indices: torch.Tensor, device: torch.device) -> Outputs:
        """The teacher's outputs for the samples at ``indices`` of the cached dataset."""
        rows = indices.cpu().numpy()
        features = {path: torch.from_numpy(np.ascontiguousarray(self.arrays[_file(path)][rows])).to(device)
                    for path in self.taps}
        return Outputs(self.logits(rows).to(device), features)
