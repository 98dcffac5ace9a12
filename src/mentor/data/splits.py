"""Seeded, stratified splitting and training-set normalization."""

from __future__ import annotations

import torch

from mentor.batch import cut, sample_shape
from mentor.data.dataset import ArrayDataset, RawData, Splits
from mentor.errors import MentorError

TEST_FRACTION = 0.25
"""Share of the samples held out as test set for datasets without an official test split."""

TEST_SEED = 1_000_003
"""Fixed seed of that test split: it never depends on the user's ``seed``."""


def stratified_split(targets: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split sample indices into a kept part and a held-out part with the same class proportions.

    The held-out part has ``round(fraction * N)`` samples (at least one when ``fraction > 0``),
    shared among classes by largest remainder; within each class the samples are chosen by a
    permutation drawn from ``seed``. Floating-point (regression) targets are split by that permutation
    alone.

    Args:
        targets: Class label per sample, shape ``(N,)``, or regression targets ``(N, D)``.
        fraction: Share of samples to hold out, in ``[0, 1)``.
        seed: Seed of the permutation.

    Returns:
        ``(kept, held)``: two sorted ``int64`` index tensors that together cover ``0..N-1``.
    """
    n = int(targets.shape[0])
    n_held = round(fraction * n)
    if fraction > 0 and n_held == 0 and n > 1:
        n_held = 1
    if n_held >= n:
        raise MentorError(f"a split of fraction {fraction} leaves no samples out of {n}; use a smaller fraction")
    if targets.is_floating_point():  # regression targets have no classes: a plain seeded draw
        held_mask = torch.zeros(n, dtype=torch.bool)
        held_mask[torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:n_held]] = True
        return torch.nonzero(~held_mask).flatten(), torch.nonzero(held_mask).flatten()
    _, labels, counts = torch.unique(targets.cpu(), return_inverse=True, return_counts=True)
    # Per-class quotas: floor of the exact share, then the rest to the largest remainders.
    exact = counts.to(torch.float64) * fraction
    quota = exact.floor().to(torch.long)
    remainder = exact - quota
    remainder[quota >= counts] = -1.0
    order = torch.argsort(remainder, descending=True, stable=True)
    quota[order[: n_held - int(quota.sum())]] += 1
    # Group a seeded permutation by class; the first `quota` of each group are held out.
    generator = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=generator)
    grouped = perm[torch.argsort(labels[perm], stable=True)]
    starts = torch.cumsum(counts, 0) - counts
    group_labels = labels[grouped]
    rank = torch.arange(n) - starts[group_labels]
    held_mask = torch.zeros(n, dtype=torch.bool)
    held_mask[grouped[rank < quota[group_labels]]] = True
    return torch.nonzero(~held_mask).flatten(), torch.nonzero(held_mask).flatten()


def channel_stats(inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation per channel (axis 1), over all samples and positions.

    For ``(N, D)`` vectors every feature counts as one channel. A constant channel gets std 1 so that
    dividing by it is harmless.
    """
    dims = [0, *range(2, inputs.ndim)]
    std, mean = torch.std_mean(inputs, dim=dims, correction=0)
    std = torch.where(std < 1e-6, torch.ones_like(std), std)
    return mean, std


def _standardize(data: ArrayDataset, mean: torch.Tensor, std: torch.Tensor) -> None:
    # In place: the tensors are fresh copies owned by this split, and a new 200 MB buffer costs more
    # in page faults than the arithmetic itself.
    shape = (1, -1) + (1,) * (data.inputs.ndim - 2)
    data.inputs.sub_(mean.view(shape)).div_(std.view(shape))


def build_splits(raw: RawData, name: str, *, validation: float, seed: int, limit: int | None,
                 normalize: bool, offset: int = 0) -> Splits:
    """Turn a loader's raw arrays into :class:`Splits`.

    Order of operations: take the official test split, or a fixed stratified 25 % one; skip the first
    ``offset`` samples of the training part; apply ``limit`` (the first ``limit`` samples left of the
    training part, and of the test part); carve the
    stratified ``validation`` fraction from the (limited) training part with ``seed``; standardize
    every split with per-channel statistics of the final training split.

    Raises:
        MentorError: For ``validation`` outside ``[0, 1)``, ``limit`` below 1, or an ``offset`` that is
            negative or skips every training sample.
    """
    if not 0.0 <= validation < 1.0:
        raise MentorError(f"validation must be a fraction in [0, 1) (0 = no validation split); got {validation}")
    if limit is not None and limit < 1:
        raise MentorError(f"limit must be a positive number of samples (or None for all); got {limit}")
    train = ArrayDataset(raw.train_inputs, raw.train_targets)
    if raw.test_inputs is None or raw.test_targets is None:
        kept, held = stratified_split(train.targets, TEST_FRACTION, TEST_SEED)
        train, test = train.subset(kept), train.subset(held)
    else:
        test = ArrayDataset(raw.test_inputs, raw.test_targets)
    if not 0 <= offset < len(train):
        raise MentorError(f"offset (data.offset) must be from 0 to {len(train) - 1}: it skips that many of the "
                          f"{len(train)} training samples of {name}; got {offset}")
    if offset:
        train = ArrayDataset(cut(train.inputs, offset, len(train)), train.targets[offset:])
    if limit is not None:
        train = ArrayDataset(cut(train.inputs, 0, limit), train.targets[:limit])
        test = ArrayDataset(cut(test.inputs, 0, limit), test.targets[:limit])
    if len(test) == 0:
        raise MentorError(f"{name}: no test samples are left ({len(train)} training sample(s); without test files "
                          f"{TEST_FRACTION:.0%} of them are held out for testing); add test files or more samples")
    val: ArrayDataset | None = None
    if validation > 0:
        kept, held = stratified_split(train.targets, validation, seed)
        train, val = train.subset(kept), train.subset(held)
    mean = std = None
    if normalize and isinstance(train.inputs, torch.Tensor) and train.inputs.is_floating_point():
        mean, std = channel_stats(train.inputs)
        for part in (train, val, test):
            if part is not None:
                _standardize(part, mean, std)
    return Splits(name=name, train=train, validation=val, test=test, num_classes=raw.num_classes,
                  input_shape=sample_shape(train.inputs), mean=mean, std=std)
