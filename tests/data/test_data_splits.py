"""Seeded stratified splits, limits, normalization, the digits set and the name lookup."""

from __future__ import annotations

import pytest
import torch

from mentor.data import DATASETS, ArrayDataset, Splits, load
from mentor.data.splits import channel_stats, stratified_split
from mentor.errors import MentorError


@pytest.fixture(scope="module")
def digits() -> Splits:
    return load("digits")


def test_digits_shapes_and_sizes(digits: Splits) -> None:
    assert digits.name == "digits" and digits.num_classes == 10 and digits.input_shape == (1, 8, 8)
    assert digits.validation is not None
    assert len(digits.train) + len(digits.validation) + len(digits.test) == 1797
    assert len(digits.test) == round(0.25 * 1797)
    assert len(digits.validation) == round(0.1 * (1797 - len(digits.test)))
    assert digits.train.inputs.shape[1:] == (1, 8, 8) and digits.train.inputs.dtype == torch.float32
    assert digits.train.targets.dtype == torch.int64


def test_raw_digits_are_scaled_to_unit_range() -> None:
    raw = load("digits", validation=0, normalize=False)
    assert raw.mean is None and raw.std is None
    assert float(raw.train.inputs.min()) == 0.0 and float(raw.train.inputs.max()) == 1.0


def test_test_split_is_fixed_and_validation_follows_seed(digits: Splits) -> None:
    # Unnormalized: the statistics come from the (seed-dependent) training split.
    base, other = load("digits", normalize=False), load("digits", seed=1, normalize=False)
    assert torch.equal(base.test.inputs, other.test.inputs)
    assert torch.equal(base.test.targets, other.test.targets)
    assert not torch.equal(base.validation.targets, other.validation.targets)  # type: ignore[union-attr]
    again = load("digits")
    assert torch.equal(digits.validation.inputs, again.validation.inputs)  # type: ignore[union-attr]
    assert torch.equal(digits.train.inputs, again.train.inputs)


def test_splits_are_stratified(digits: Splits) -> None:
    overall = torch.cat([digits.train.targets, digits.validation.targets, digits.test.targets])  # type: ignore[union-attr]
    share = overall.bincount().double() / len(overall)
    for part in (digits.train, digits.validation, digits.test):
        counts = part.targets.bincount(minlength=10).double()  # type: ignore[union-attr]
        assert torch.all((counts - share * len(part)).abs() <= 1.0)  # type: ignore[arg-type]


def test_stratified_split_partitions_exactly() -> None:
    targets = torch.tensor([0] * 7 + [1] * 5 + [2] * 3)
    kept, held = stratified_split(targets, 0.4, seed=3)
    assert len(held) == 6 and torch.equal(torch.sort(torch.cat([kept, held])).values, torch.arange(15))
    assert held.tolist() == sorted(held.tolist())
    assert targets[held].bincount().tolist() == [3, 2, 1]
    assert torch.equal(held, stratified_split(targets, 0.4, seed=3)[1])


def test_stratified_split_tiny_fraction_holds_out_one() -> None:
    kept, held = stratified_split(torch.zeros(5, dtype=torch.long), 0.01, seed=0)
    assert (len(kept), len(held)) == (4, 1)


def test_validation_zero_gives_none() -> None:
    assert load("digits", validation=0).validation is None


def test_limit_applies_to_train_and_test_before_validation() -> None:
    splits = load("digits", limit=100, validation=0.2)
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (80, 20, 100)  # type: ignore[arg-type]
    assert splits.num_classes == 10
    full = load("digits", validation=0, normalize=False)
    small = load("digits", validation=0, normalize=False, limit=50)
    assert torch.equal(small.train.inputs, full.train.inputs[:50])
    assert torch.equal(small.test.targets, full.test.targets[:50])


def test_offset_skips_training_samples_before_limit_and_leaves_test() -> None:
    full = load("digits", validation=0, normalize=False)
    later = load("digits", validation=0, normalize=False, offset=50, limit=30)
    assert torch.equal(later.train.inputs, full.train.inputs[50:80])
    assert torch.equal(later.train.targets, full.train.targets[50:80])
    assert torch.equal(later.test.targets, full.test.targets[:30])  # the test part is never offset
    assert later.recipe is not None and later.recipe["offset"] == 50
    assert "offset" not in (full.recipe or {})


@pytest.mark.parametrize("offset", [-1, 1348])
def test_offset_out_of_range_names_the_allowed_range(offset: int) -> None:
    with pytest.raises(MentorError, match=rf"must be from 0 to 1347: it skips that many of the 1348 .*got {offset}"):
        load("digits", offset=offset)


def test_normalization_uses_training_statistics() -> None:
    raw = load("digits", normalize=False)
    norm = load("digits")
    mean, std = raw.train.inputs.mean(), raw.train.inputs.std(correction=0)
    torch.testing.assert_close(norm.mean, mean.reshape(1))
    torch.testing.assert_close(norm.std, std.reshape(1))
    torch.testing.assert_close(norm.train.inputs.mean(), torch.tensor(0.0), atol=1e-5, rtol=0)
    torch.testing.assert_close(norm.train.inputs.std(correction=0), torch.tensor(1.0), atol=1e-5, rtol=0)
    # Validation and test use the same (training) statistics, not their own.
    torch.testing.assert_close(norm.test.inputs, (raw.test.inputs - mean) / std)
    torch.testing.assert_close(norm.validation.inputs, (raw.validation.inputs - mean) / std)  # type: ignore[union-attr]


def test_channel_stats_per_channel_and_constant_channel() -> None:
    inputs = torch.zeros(4, 2, 3, 3)
    inputs[:, 1] = torch.arange(4.0).view(4, 1, 1)
    mean, std = channel_stats(inputs)
    torch.testing.assert_close(mean, torch.tensor([0.0, 1.5]))
    torch.testing.assert_close(std, torch.tensor([1.0, torch.tensor([0.0, 1, 2, 3]).std(correction=0).item()]))


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"validation": 1.0}, "validation must be a fraction in [0, 1)"),
    ({"validation": -0.1}, "validation must be a fraction"),
    ({"limit": 0}, "limit must be a positive"),
])
def test_bad_arguments(kwargs: dict[str, float], words: str) -> None:
    with pytest.raises(MentorError) as info:
        load("digits", **kwargs)  # type: ignore[arg-type]
    assert words in str(info.value)


def test_unknown_name_suggests_nearest() -> None:
    message = r"unknown dataset 'digts'; nearest: digits, digits-28, diabetes \(valid: diabetes, digits, digits-28, "
    with pytest.raises(MentorError, match=message):
        load("digts")


def test_registry_has_the_sources_with_summaries() -> None:
    assert {"digits", "fashion-mnist", "mnist", "folder"} <= set(DATASETS.names())
    assert all(entry.summary for entry in DATASETS)


def test_array_dataset_subset_and_length_check() -> None:
    data = ArrayDataset(torch.arange(10.0).view(5, 2), torch.arange(5))
    part = data.subset(torch.tensor([4, 0]))
    assert len(part) == 2 and part.targets.tolist() == [4, 0]
    with pytest.raises(MentorError, match="differ in length"):
        ArrayDataset(torch.zeros(3, 2), torch.zeros(2, dtype=torch.long))
