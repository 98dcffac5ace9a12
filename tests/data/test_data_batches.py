"""BatchIterator: order, determinism, drop_last, length, transforms."""

from __future__ import annotations

import pytest
import torch

from mentor.data import ArrayDataset, BatchIterator
from mentor.errors import MentorError


def dataset(n: int = 10) -> ArrayDataset:
    return ArrayDataset(torch.arange(n, dtype=torch.float32).view(n, 1), torch.arange(n))


def orders(iterator: BatchIterator) -> list[list[int]]:
    return [y.tolist() for _, y in iterator]


def test_in_order_batches_are_slices() -> None:
    data = dataset()
    batches = list(BatchIterator(data, 4))
    assert [y.tolist() for _, y in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert batches[0][0].data_ptr() == data.inputs.data_ptr()  # a view, not a copy
    assert torch.equal(batches[1][0][:, 0].long(), batches[1][1])


@pytest.mark.parametrize(("n", "size", "drop_last", "expected"), [(10, 4, False, 3), (10, 4, True, 2),
                                                                   (8, 4, True, 2), (3, 4, True, 0), (0, 4, False, 0)])
def test_len_and_drop_last(n: int, size: int, drop_last: bool, expected: int) -> None:
    iterator = BatchIterator(dataset(n), size, shuffle=True, drop_last=drop_last)
    assert len(iterator) == expected == len(list(iterator))
    if drop_last:
        assert all(len(y) == size for _, y in iterator)


def test_same_seed_and_epoch_give_identical_batches() -> None:
    a, b = BatchIterator(dataset(), 3, shuffle=True, seed=7), BatchIterator(dataset(), 3, shuffle=True, seed=7)
    a.set_epoch(2)
    b.set_epoch(2)
    assert orders(a) == orders(b)
    assert orders(a) == orders(a)  # re-iterating without set_epoch repeats the epoch
    assert sorted(sum(orders(a), [])) == list(range(10))
    batch_x, batch_y = next(iter(a))
    assert torch.equal(batch_x[:, 0].long(), batch_y)  # inputs and targets stay paired


def test_epochs_and_seeds_change_the_order() -> None:
    it = BatchIterator(dataset(50), 50, shuffle=True, seed=0)
    first = orders(it)
    it.set_epoch(1)
    assert orders(it) != first
    it.set_epoch(0)
    assert orders(it) == first  # resumable: epoch 0 again is the same order
    assert orders(BatchIterator(dataset(50), 50, shuffle=True, seed=1)) != first


def test_transform_gets_a_deterministic_generator() -> None:
    def noise(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return x + torch.rand(x.shape, generator=generator)

    def run(epoch: int) -> list[torch.Tensor]:
        it = BatchIterator(dataset(), 4, shuffle=True, seed=5, transform=noise)
        it.set_epoch(epoch)
        return [x for x, _ in it]

    assert all(torch.equal(p, q) for p, q in zip(run(1), run(1), strict=True))
    assert not torch.equal(run(1)[0], run(2)[0])


def test_transform_does_not_change_the_order() -> None:
    plain = BatchIterator(dataset(), 4, shuffle=True, seed=5)
    augmented = BatchIterator(dataset(), 4, shuffle=True, seed=5, transform=lambda x, g: x * 2)
    assert orders(plain) == orders(augmented)


def test_bad_batch_size() -> None:
    with pytest.raises(MentorError, match="batch_size must be a positive integer; got 0"):
        BatchIterator(dataset(), 0)
