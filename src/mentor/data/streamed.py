"""Training data beyond memory: any ``torch.utils.data`` Dataset, IterableDataset or DataLoader as batches.

The in-memory path (:class:`~mentor.data.ArrayDataset` + :class:`~mentor.data.BatchIterator`) slices whole
tensors and stays the fast path for data that fits; everything else goes through :class:`DatasetBatches`, which
gives the loop the same interface (``set_epoch``, ``len``, ``indexed()`` -> ``(inputs, targets, indices)``).

- A map-style ``Dataset`` returning ``(x, y)`` (or ``(x, y, index)``) is read through a ``DataLoader`` with
  ``num_workers`` and ``pin_memory``; the order of epoch ``e`` is a permutation drawn from ``(seed, e)`` alone and
  rank ``r`` of ``world`` takes every ``world``-th sample of it (``DistributedSampler`` semantics: equal shares,
  the tail dropped), so the batches carry each sample's dataset index and the teacher-output cache serves them.
- A ``DataLoader`` over a map-style dataset gives its ``num_workers``, ``pin_memory`` and ``collate_fn``; its
  order is replaced by the one above (seeded, resumable, sharded by rank).
- An ``IterableDataset`` (or a DataLoader over one) is iterated as it comes; its batches carry indices only when
  it yields ``(x, y, index)`` itself, otherwise the live teacher serves. Sharding by rank is its own business.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Any, overload

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, IterableDataset

from mentor.batch import Inputs, cut, tensors
from mentor.data.batches import epoch_generator
from mentor.data.dataset import ArrayDataset
from mentor.errors import MentorError

TorchData = Dataset | DataLoader
"""What :class:`DatasetBatches` reads: a Dataset, an IterableDataset or a DataLoader."""


def is_streamed(data: object) -> bool:
    """Whether ``data`` is a torch Dataset/DataLoader to stream (an :class:`ArrayDataset` stays in memory)."""
    return isinstance(data, (Dataset, DataLoader)) and not isinstance(data, ArrayDataset)


def sized(data: ArrayDataset | TorchData) -> int | None:
    """Samples in ``data``; ``None`` for an iterable without a length."""
    dataset = data.dataset if isinstance(data, DataLoader) else data
    try:
        return len(dataset)  # type: ignore[arg-type]
    except TypeError:
        return None


class _Indexed(Dataset):
    """``dataset[i]`` as ``(x, y, i)``: the index travels with the sample through workers and collation."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Any, Any, int]:
        item = self.dataset[index]
        if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
            raise MentorError(f"a training dataset item must be (inputs, target) or (inputs, target, index); "
                              f"item {index} is {type(item).__name__}; return a tuple from __getitem__")
        return item[0], item[1], index


def _split(batch: Any) -> tuple[Tensor, Tensor, Tensor | None]:
    if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
        raise MentorError("a training batch must be (inputs, targets) or (inputs, targets, indices); got "
                          f"{type(batch).__name__}{'' if not isinstance(batch, (tuple, list)) else len(batch)}; "
                          "make the dataset return tuples")
    inputs, targets = torch.as_tensor(batch[0]), torch.as_tensor(batch[1])
    indices = torch.as_tensor(batch[2], dtype=torch.long) if len(batch) == 3 else None
    return inputs, targets, indices


class DatasetBatches:
    """Batches of a torch Dataset, IterableDataset or DataLoader, in the loop's interface.

    Args:
        data: The samples.
        batch_size: Samples per batch (ignored for a DataLoader over an IterableDataset: its own batches).
        shuffle: A new seeded order each epoch (map-style data only).
        seed: Seed of the orders.
        drop_last: Skip the final incomplete batch.
        rank: This process's rank; ``world``: the number of processes (map-style data only).
        num_workers: Loader processes (``None``: the DataLoader's own, else 0).
        pin_memory: Page-locked batches for a faster copy to CUDA (``None``: the DataLoader's own, else off).
        device: Where the batches go (``non_blocking`` when pinned).
    """

    def __init__(self, data: TorchData, batch_size: int, *, shuffle: bool = False, seed: int = 0,
                 drop_last: bool = False, rank: int = 0, world: int = 1, num_workers: int | None = None,
                 pin_memory: bool | None = None, device: torch.device | str = "cpu") -> None:
        if batch_size < 1:
            raise MentorError(f"batch_size must be a positive integer; got {batch_size}")
        loader = data if isinstance(data, DataLoader) else None
        self.dataset: Dataset = loader.dataset if loader is not None else data  # type: ignore[assignment]
        self.loader, self.batch_size, self.shuffle, self.seed = loader, batch_size, shuffle, seed
        self.drop_last, self.rank, self.world, self.epoch = drop_last, rank, world, 0
        self.num_workers = num_workers if num_workers is not None else (loader.num_workers if loader else 0)
        self.pin_memory = pin_memory if pin_memory is not None else bool(loader and loader.pin_memory)
        self.device = torch.device(device)
        self.iterable = isinstance(self.dataset, IterableDataset)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order the next iteration produces."""
        self.epoch = epoch

    def _count(self) -> int:
        total = len(self.dataset)  # type: ignore[arg-type]
        return total // self.world if self.world > 1 else total

    def __len__(self) -> int:
        """Batches per epoch (``TypeError`` for an iterable without a length, like a DataLoader)."""
        if self.iterable:
            return len(self.loader) if self.loader is not None else len(self._iterable_loader())
        n = self._count()
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self) -> Order:
        """This rank's dataset indices for the current epoch, in order."""
        total = len(self.dataset)  # type: ignore[arg-type]
        if self.shuffle:
            order = torch.randperm(total, generator=epoch_generator(self.seed, self.epoch))
        else:
            order = torch.arange(total)
        if self.world > 1:
            order = order[: self._count() * self.world][self.rank :: self.world]
        return Order(order)

    def _iterable_loader(self) -> DataLoader:
        if self.loader is not None:
            return self.loader
        return DataLoader(self.dataset, batch_size=self.batch_size, num_workers=self.num_workers,
                          pin_memory=self.pin_memory, drop_last=self.drop_last)

    def _loader(self, order: Sequence[int]) -> DataLoader:
        collate = self.loader.collate_fn if self.loader is not None else None
        return DataLoader(_Indexed(self.dataset), batch_size=self.batch_size, sampler=order,
                          num_workers=self.num_workers, pin_memory=self.pin_memory, drop_last=self.drop_last,
                          collate_fn=collate, persistent_workers=False)

    def indexed(self) -> Iterator[tuple[Tensor, Tensor, Tensor | None]]:
        """``(inputs, targets, indices)`` per batch on ``device``; ``indices`` is ``None`` when unknown."""
        loader = self._iterable_loader() if self.iterable else self._loader(self.order())
        asynchronous = self.pin_memory and self.device.type == "cuda"
        for batch in loader:
            inputs, targets, indices = _split(batch)
            yield (inputs.to(self.device, non_blocking=asynchronous),
                   targets.to(self.device, non_blocking=asynchronous), indices)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        for inputs, targets, _ in self.indexed():
            yield inputs, targets


class Order(Sequence[int]):
    """An epoch's dataset indices held as one int64 tensor, 8 bytes each (a list of Python ints takes 36): the
    sampler of a dataset of millions of samples; iterated as ints, a chunk of the tensor at a time."""

    CHUNK = 1 << 16

    def __init__(self, indices: Tensor) -> None:
        self.indices = indices

    def __len__(self) -> int:
        return len(self.indices)

    @overload
    def __getitem__(self, index: int) -> int: ...
    @overload
    def __getitem__(self, index: slice) -> Order: ...
    def __getitem__(self, index: int | slice) -> int | Order:
        return Order(self.indices[index]) if isinstance(index, slice) else int(self.indices[index])

    def __iter__(self) -> Iterator[int]:
        for chunk in self.indices.split(self.CHUNK):
            yield from chunk.tolist()


def first_samples(data: ArrayDataset | TorchData, count: int) -> tuple[Inputs, Tensor]:
    """The inputs and targets of the first ``count`` samples (in-memory or streamed): what checks run on."""
    if isinstance(data, ArrayDataset):
        return cut(data.inputs, 0, count), data.targets[:count]
    inputs, targets, _ = next(DatasetBatches(data, count).indexed())
    return inputs, targets


def ordered_inputs(data: ArrayDataset | TorchData, batch_size: int, start: int = 0,
                   num_workers: int = 0) -> Iterator[Inputs]:
    """The inputs of samples ``start, start+1, ...`` in dataset order, in batches (what a cache is built from)."""
    if isinstance(data, ArrayDataset):
        for first in range(start, len(data), batch_size):
            yield cut(data.inputs, first, first + batch_size)
        return
    batches = DatasetBatches(data, batch_size, num_workers=num_workers)
    if batches.iterable:
        raise MentorError("an IterableDataset has no sample indices to cache teacher outputs by; set "
                          "train.teacher_cache: false or give a map-style Dataset")
    loader = batches._loader(range(start, len(batches.dataset)))  # type: ignore[arg-type]
    for batch in loader:
        yield _split(batch)[0]


def data_digest(data: ArrayDataset | TorchData, samples: int = 8) -> str:
    """A SHA-256 naming a dataset's contents: all inputs of an :class:`ArrayDataset`; of a torch Dataset (which may
    be larger than memory) its type, length and the inputs of ``samples`` evenly spaced items, the rest being
    checked by the cache's probe against the live teacher."""
    from mentor.teachers.fingerprint import tensor_digest

    if isinstance(data, ArrayDataset):  # each named tensor of a text batch, or the one tensor
        return "|".join(f"{name}:{tensor_digest(tensor, remember=True)}" if name else
                        tensor_digest(tensor, remember=True) for name, tensor in tensors(data.inputs).items())
    dataset = data.dataset if isinstance(data, DataLoader) else data
    total = sized(dataset)
    if total is None:
        raise MentorError("an IterableDataset has no sample indices to cache teacher outputs by; set "
                          "train.teacher_cache: false or give a map-style Dataset")
    digest = hashlib.sha256(f"{type(dataset).__module__}.{type(dataset).__qualname__}|{total}".encode())
    for index in sorted({round(i * (total - 1) / max(samples - 1, 1)) for i in range(samples)} if total else ()):
        inputs = _Indexed(dataset)[index][0]
        digest.update(tensor_digest(torch.as_tensor(inputs)).encode())
    return digest.hexdigest()
