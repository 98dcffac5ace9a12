"""Teacher-output cache: a frozen teacher's logits and tapped features, computed once per dataset.

In offline distillation with deterministic inputs the teacher's outputs never change between epochs,
so the live teacher forward pass (often most of the cost of a step) is paid once. The outputs are
stored under ``cache_dir()/teacher-outputs/<key>/`` as sharded ``.npy`` files keyed by sample index
(:mod:`mentor.teachers.shards`): written batch by batch into memory-mapped shards, never whole in RAM, and read
back memory-mapped, so a dataset larger than memory (any torch ``Dataset``, :mod:`mentor.data.streamed`) can be
distilled from it. A build is resumable: an interrupted one keeps its finished shards in ``.<key>.partial`` and
the next build continues from the first missing shard; the manifest ``complete`` is written last and the folder
renamed into place, so an entry that exists is whole.

An entry is never stale and never damaged in use:

- ``<key>`` is a SHA-256 of what the teacher computes as far as it can be hashed (weights, buffers, classes,
  ``forward`` code, plain attributes and hooks: :func:`mentor.teachers.fingerprint.model_digest`), the dataset's
  inputs (all of an in-memory set; the type, length and evenly spaced samples of a torch Dataset:
  :func:`mentor.data.streamed.data_digest`), the tapped paths and the compression;
- before an entry is used, the live teacher runs on a probe batch (the first batch the entry was built from, so the
  same kernels compute it) and its outputs must match the cached rows: what no digest sees (a global read in
  ``forward``) cannot serve old outputs;
- the ``complete`` file lists the SHA-256 of every array, checked when the entry is opened: a damaged, truncated
  or missing file is rebuilt, with a warning.

A cache that cannot be written (read-only or full disk) is skipped with a warning: the live teacher serves.

Optional top-k compression keeps the k largest logits of each sample and their indices, plus the
log-partition function: the softmax of the reconstruction gives the exact probabilities of the top-k
classes and spreads the remaining mass uniformly over the others.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch

from mentor.batch import Outputs
from mentor.data import ArrayDataset, cache_dir
from mentor.data.streamed import TorchData, data_digest, ordered_inputs, sized
from mentor.errors import MentorError, describe_os_error, warn, writing
from mentor.teachers.fingerprint import model_digest
from mentor.teachers.frozen import FrozenTeacher
from mentor.teachers.shards import ShardedArray, rows_per_shard, sha256, shard_count, shard_name, write_shards

FORMAT = "teacher-outputs/3"
TOLERANCE = {"rtol": 1e-3, "atol": 1e-4}  # float noise between processes (TF32, kernel choice), far below a change


def cache_key(teacher: FrozenTeacher, dataset: ArrayDataset | TorchData, taps: tuple[str, ...],
              top_k: int | None) -> str:
    digest = hashlib.sha256(f"{FORMAT}|{taps}|{top_k}|{teacher.precision}".encode())
    digest.update(model_digest(teacher.model).encode())
    digest.update(data_digest(dataset).encode())
    return digest.hexdigest()[:32]


def _file(path: str) -> str:
    return path.replace("/", "_").replace(":", "__") + ".npy"


def _stored(outputs: Outputs, taps: tuple[str, ...], top_k: int | None) -> dict[str, np.ndarray]:
    """The arrays an entry keeps of one batch of teacher outputs, by file name."""
    logits = outputs.logits.float()
    if top_k is not None:
        values, indices = logits.topk(min(top_k, logits.shape[1]), dim=1)
        stored = {"topk_values.npy": values, "topk_indices.npy": indices, "logsumexp.npy": logits.logsumexp(dim=1)}
    else:
        stored = {"logits.npy": logits}
    stored.update({_file(path): outputs.features[path] for path in taps})
    return {name: value.cpu().numpy() for name, value in stored.items()}


class Damaged(Exception):
    """An entry that cannot be used as it is (the message says why)."""


class TeacherCache:
    """Cached outputs of a frozen teacher on one dataset, looked up by sample index."""

    def __init__(self, folder: Path, taps: tuple[str, ...], top_k: int | None) -> None:
        """Open the entry in ``folder``, checking every shard against its checksum.

        Raises:
            Damaged: when the manifest, a checksum or an array does not hold.
        """
        self.folder, self.taps, self.top_k = folder, taps, top_k
        try:
            manifest = json.loads((folder / "complete").read_text(encoding="utf-8"))
            files, names = manifest["files"], manifest["arrays"]
            if manifest.get("format") != FORMAT or not isinstance(files, dict):
                raise Damaged("its manifest is from another version")
            for name, checksum in files.items():
                if sha256(folder / name) != checksum:
                    raise Damaged(f"{name} does not match its checksum")
            self.rows, self.classes = int(manifest["rows"]), int(manifest["classes"])
            self.arrays = {name: ShardedArray(folder, name, self.rows, int(manifest["per_shard"])) for name in names}
        except FileNotFoundError as error:
            raise Damaged(f"{Path(error.filename or '?').name} is missing") from None
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as error:
            raise Damaged(f"it cannot be read ({type(error).__name__})") from None

    @classmethod
    def build(cls, teacher: FrozenTeacher, dataset: ArrayDataset | TorchData, taps: tuple[str, ...] = (),
              top_k: int | None = None, batch_size: int = 128, root: Path | None = None,
              num_workers: int = 0) -> TeacherCache | None:
        """Load the entry for this teacher, dataset and taps, computing and storing it first if needed.

        A damaged entry, or one whose rows differ from the live teacher's outputs on the probe batch, is rebuilt
        with a warning. ``None`` (with a warning; the live teacher serves) when the cache cannot be written or the
        teacher's outputs are not deterministic.

        ``batch_size`` of the teacher's passes: a training-sized batch, because CPU convolutions run slower
        per sample over large ones (`mentor bench overhead`: the cnn-medium cache build over Fashion-MNIST
        took 16.5 s in batches of 1,024 and 12.1 s in batches of 128). ``num_workers``: loader processes
        reading a torch Dataset.
        """
        if top_k is not None and top_k < 1:
            raise MentorError(f"The 'top_k' parameter of the teacher cache must be an int >= 1. Got {top_k}.")
        try:
            folder = (root or cache_dir() / "teacher-outputs") / cache_key(teacher, dataset, taps, top_k)
            for attempt in ("", "rebuilt "):
                problem = None
                if not (folder / "complete").exists():
                    cls._compute(teacher, dataset, taps, top_k, batch_size, folder, num_workers)
                try:
                    entry = cls(folder, taps, top_k)
                    problem = entry._probe(teacher, dataset, batch_size)
                except Damaged as error:
                    problem = str(error)
                if problem is None:
                    return entry
                warn(f"the {attempt}teacher-output cache entry {str(folder)!r} is unusable ({problem}); "
                     + ("rebuilding it" if not attempt else "the live teacher serves instead"))
                shutil.rmtree(folder, ignore_errors=True)
        except OSError as error:
            warn(f"the teacher-output cache is skipped, the live teacher serves: {describe_os_error(error)}")
        return None

    def _probe(self, teacher: FrozenTeacher, dataset: ArrayDataset | TorchData, batch_size: int) -> str | None:
        """Why the cached rows of the probe batch differ from the live teacher's outputs (``None`` when they match)."""
        inputs = next(ordered_inputs(dataset, batch_size))
        live = _stored(teacher.outputs(inputs, self.taps), self.taps, self.top_k)
        for name, values in live.items():
            if name == "topk_indices.npy":  # tied logits may swap places; their values are compared
                continue
            cached = self.arrays.get(name)
            if cached is None or cached.shape[1:] != values.shape[1:] or len(cached) != sized(dataset):
                return f"{name} has the wrong shape"
            if not np.allclose(cached[np.arange(len(values))], values, **TOLERANCE):
                return f"{name} differs from the live teacher's outputs on a probe batch: the teacher changed"
        return None

    @staticmethod
    def _compute(teacher: FrozenTeacher, dataset: ArrayDataset | TorchData, taps: tuple[str, ...],
                 top_k: int | None, batch_size: int, folder: Path, num_workers: int = 0) -> None:
        rows = sized(dataset)
        if not rows:
            raise MentorError("the teacher-output cache needs a dataset with a length; set train.teacher_cache: false")
        first = teacher.outputs(next(ordered_inputs(dataset, batch_size)), taps)
        probe, classes = _stored(first, taps, top_k), int(first.logits.shape[1])
        names = sorted(probe)
        per_shard = rows_per_shard(max(value[0].nbytes for value in probe.values()))
        staging = folder.parent / f".{folder.name}.partial"  # kept when interrupted: the next build resumes it

        def batches(start: int):  # noqa: ANN202 - a generator of name -> rows
            for inputs in ordered_inputs(dataset, batch_size, start, num_workers):
                yield _stored(teacher.outputs(inputs, taps), taps, top_k)

        write_shards(staging, rows, per_shard, names, batches)
        files = {shard_name(name, shard): sha256(staging / shard_name(name, shard))
                 for name in names for shard in range(shard_count(rows, per_shard))}
        manifest = {"format": FORMAT, "rows": rows, "per_shard": per_shard, "classes": classes, "arrays": names,
                    "files": files}
        temporary = staging / f".complete.{os.getpid()}.tmp"  # two processes building the same entry never clash
        with writing(staging / "complete"):
            temporary.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
            os.replace(temporary, staging / "complete")
        try:
            os.replace(staging, folder)
        except OSError:
            if not (folder / "complete").exists():  # nobody else finished the same entry meanwhile
                raise
            shutil.rmtree(staging, ignore_errors=True)

    def logits(self, indices: np.ndarray) -> torch.Tensor:
        if self.top_k is None:
            return torch.from_numpy(self.arrays["logits.npy"][indices])
        values = torch.from_numpy(self.arrays["topk_values.npy"][indices])
        positions = torch.from_numpy(self.arrays["topk_indices.npy"][indices])
        partition = torch.from_numpy(self.arrays["logsumexp.npy"][indices])
        kept = (values - partition[:, None]).exp().sum(dim=1)
        others = max(self.classes - values.shape[1], 1)
        fill = torch.log((1 - kept).clamp_min(1e-12) / others) + partition
        logits = fill[:, None].expand(-1, self.classes).clone()
        return logits.scatter_(1, positions, values)

    def outputs(self, indices: torch.Tensor, device: torch.device) -> Outputs:
        """The teacher's outputs for the samples at ``indices`` of the cached dataset."""
        rows = indices.cpu().numpy()
        features = {path: torch.from_numpy(self.arrays[_file(path)][rows]).to(device) for path in self.taps}
        return Outputs(self.logits(rows).to(device), features)
