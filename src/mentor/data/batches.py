"""Mini-batches straight from in-memory tensors."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor

from mentor.batch import Inputs, cut, device_of, take
from mentor.data.dataset import ArrayDataset
from mentor.errors import MentorError

Transform = Callable[[Tensor, torch.Generator], Tensor]
"""A batch-level augmentation: ``(inputs, generator) -> inputs``."""


def epoch_generator(seed: int, epoch: int, stream: int = 0) -> torch.Generator:
    """A CPU generator determined by ``(seed, epoch, stream)`` alone."""
    mixed = (seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + stream * 0x94D049BB133111EB) % (1 << 63)
    return torch.Generator().manual_seed(mixed)


class BatchIterator:
    """Iterate over an :class:`ArrayDataset` in batches without per-sample Python work.

    Each batch is one ``index_select`` (shuffled) or one slice (in order) of the whole tensors, so
    batches live on the dataset's device. The order of epoch ``e`` is a permutation drawn from a
    generator seeded by ``(seed, e)`` only: call :meth:`set_epoch` before each epoch; iterating
    twice without it repeats the same order, and resuming at epoch ``e`` reproduces it exactly.

    Args:
        dataset: The samples.
        batch_size: Samples per batch (the last batch may be smaller unless ``drop_last``).
        shuffle: Draw a new order each epoch instead of the stored order.
        seed: Seed of the orders and of the ``transform`` randomness.
        drop_last: Skip the final incomplete batch.
        transform: Optional batch augmentation, given the inputs and a generator seeded by
            ``(seed, epoch)`` (independent of the shuffling stream).
    """

    def __init__(self, dataset: ArrayDataset, batch_size: int, *, shuffle: bool = False, seed: int = 0,
                 drop_last: bool = False, transform: Transform | None = None, rank: int = 0, world: int = 1) -> None:
        if batch_size < 1:
            raise MentorError(f"batch_size must be a positive integer; got {batch_size}")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.transform = transform
        self.epoch = 0
        if not 0 <= rank < world:
            raise MentorError(f"rank must be in [0, world); got rank={rank}, world={world}")
        self.rank, self.world = rank, world

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order (and augmentation) the next iteration produces."""
        self.epoch = epoch

    def _count(self) -> int:
        """Samples this process sees per epoch: an equal share of the dataset for every rank."""
        return len(self.dataset) // self.world if self.world > 1 else len(self.dataset)

    def __len__(self) -> int:
        """Number of batches per epoch."""
        n = self._count()
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Inputs, Tensor]]:
        for inputs, targets, _ in self.indexed():
            yield inputs, targets

    def indexed(self) -> Iterator[tuple[Inputs, Tensor, Tensor]]:
        """Like iteration, with the dataset positions ``(B,)`` of each batch's samples as a third item."""
        inputs, targets = self.dataset.inputs, self.dataset.targets
        order: Tensor | None = None
        if self.shuffle:
            order = torch.randperm(len(self.dataset), generator=epoch_generator(self.seed, self.epoch))
            order = order.to(device_of(inputs))
        if self.world > 1:
            # rank r takes every world-th sample: the ranks' k-th batches together form the k-th global batch
            # of a single process with batch_size × world
            base = order if order is not None else torch.arange(len(self.dataset), device=device_of(inputs))
            order = base[: self._count() * self.world][self.rank :: self.world]
        augment_generator = epoch_generator(self.seed, self.epoch, stream=1 + self.rank) if self.transform else None
        for batch in range(len(self)):
            start = batch * self.batch_size
            stop = min(start + self.batch_size, self._count())
            if order is None:
                index = torch.arange(start, stop, device=device_of(inputs))
                x, y = cut(inputs, start, stop), targets[start:stop]
            else:
                index = order[start:stop]
                x, y = take(inputs, index), targets.index_select(0, index)
            if self.transform is not None and augment_generator is not None:
                x = self.transform(x, augment_generator)
            yield x, y, index
