"""Sharded, memory-mapped arrays on disk: how the teacher-output cache stores rows keyed by sample index.

An array named ``logits.npy`` of N rows is kept as ``logits.00000.npy``, ``logits.00001.npy``, ... of
``rows_per_shard`` rows each (the last one shorter). Row ``i`` lives in shard ``i // rows_per_shard``.

Writing never holds more than one batch in memory: each shard is created as a memory-mapped ``.npy`` file
(``numpy.lib.format.open_memmap``) under a temporary name, filled batch by batch, flushed, then renamed into
place, so a shard file that exists is complete. A build that stops (killed, out of disk) leaves its finished
shards behind; the next build starts at the first missing shard. Nothing per batch stays on the heap between
batches, which also keeps the allocator from pinning the teacher's freed activation buffers
(`mentor bench memory`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from mentor.errors import writing

SHARD_BYTES = 64 << 20
"""Target size of one shard of the widest array: small enough to page in cheaply, few files for typical sets."""


def rows_per_shard(row_bytes: int, shard_bytes: int | None = None) -> int:
    """Rows of a shard whose widest row takes ``row_bytes`` bytes (at least 1); ``shard_bytes``: ``SHARD_BYTES``."""
    return max(1, (shard_bytes or SHARD_BYTES) // max(row_bytes, 1))


def shard_name(name: str, shard: int) -> str:
    """``logits.npy``, 3 -> ``logits.00003.npy``."""
    return f"{name.removesuffix('.npy')}.{shard:05d}.npy"


def shard_count(rows: int, per_shard: int) -> int:
    return -(-rows // per_shard)


def sha256(path: Path) -> str:
    """SHA-256 of a file, read through one reused 1 MB buffer (no allocation per chunk)."""
    digest, buffer = hashlib.sha256(), bytearray(1 << 20)
    view = memoryview(buffer)
    with path.open("rb") as file:
        while size := file.readinto(buffer):
            digest.update(view[:size])
    return digest.hexdigest()


def write_shards(folder: Path, rows: int, per_shard: int, names: list[str],
                 batches: Callable[[int], Iterator[dict[str, np.ndarray]]]) -> None:
    """Write every missing shard of the arrays ``names`` (``rows`` rows each) into ``folder``.

    ``batches(start)`` yields dicts ``name -> (b, ...)`` arrays for rows ``start, start + 1, ...`` in order.
    Shards already present (from an earlier, interrupted build) are kept and skipped.
    """
    folder.mkdir(parents=True, exist_ok=True)
    shards = shard_count(rows, per_shard)
    first = next((s for s in range(shards) if not all((folder / shard_name(n, s)).exists() for n in names)), shards)
    if first == shards:
        return
    open_files: dict[str, np.memmap] = {}
    shard, filled = first, 0
    for batch in batches(first * per_shard):
        offset = 0
        size = len(next(iter(batch.values())))
        while offset < size and shard < shards:
            length = min(per_shard, rows - shard * per_shard)
            if not open_files:
                open_files = {n: _create(folder, n, shard, length, batch[n]) for n in names}
            take = min(size - offset, length - filled)
            for name in names:
                open_files[name][filled : filled + take] = batch[name][offset : offset + take]
            offset, filled = offset + take, filled + take
            if filled == length:
                _finish(folder, names, shard, open_files)
                open_files, shard, filled = {}, shard + 1, 0
        if shard == shards:
            break
    if shard < shards:
        raise ValueError(f"the data gave fewer than the {rows} rows it announced (stopped in shard {shard})")


def _create(folder: Path, name: str, shard: int, length: int, example: np.ndarray) -> np.memmap:
    path = folder / f".{shard_name(name, shard)}.{os.getpid()}.tmp"
    with writing(path):
        return np.lib.format.open_memmap(path, mode="w+", dtype=example.dtype, shape=(length, *example.shape[1:]))


def _finish(folder: Path, names: list[str], shard: int, files: dict[str, np.memmap]) -> None:
    for name in names:
        files[name].flush()
        temporary = folder / f".{shard_name(name, shard)}.{os.getpid()}.tmp"
        os.replace(temporary, folder / shard_name(name, shard))


class ShardedArray:
    """Rows of one sharded array, memory-mapped; ``array[indices]`` gathers rows from any shards."""

    def __init__(self, folder: Path, name: str, rows: int, per_shard: int) -> None:
        self.rows, self.per_shard = rows, per_shard
        self.shards = [np.load(folder / shard_name(name, s), mmap_mode="r", allow_pickle=False)
                       for s in range(shard_count(rows, per_shard))]
        self.shape = (rows, *self.shards[0].shape[1:])

    def __len__(self) -> int:
        return self.rows

    def __getitem__(self, indices: np.ndarray | slice) -> np.ndarray:
        if isinstance(indices, slice):
            indices = np.arange(self.rows)[indices]
        indices = np.asarray(indices, dtype=np.int64)
        shard_of = indices // self.per_shard
        if len(indices) and (shard_of == shard_of[0]).all():  # the common case: one shard, one fancy index
            return np.asarray(self.shards[int(shard_of[0])][indices - shard_of[0] * self.per_shard])
        out = np.empty((len(indices), *self.shape[1:]), dtype=self.shards[0].dtype)
        for shard in np.unique(shard_of):
            chosen = shard_of == shard
            out[chosen] = self.shards[int(shard)][indices[chosen] - shard * self.per_shard]
        return out
