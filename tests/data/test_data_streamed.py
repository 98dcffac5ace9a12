"""Training data as a torch Dataset, IterableDataset or DataLoader: batches, sharding by rank, fit and evaluate."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset

from mentor.data import ArrayDataset, BatchIterator
from mentor.data.streamed import DatasetBatches, Order, data_digest
from mentor.engine import FitSettings, OptimizerSettings, evaluate, fit
from mentor.errors import MentorError
from mentor.knowledge import create
from mentor.models import MLP
from mentor.schemes import Offline


class Squares(Dataset):
    """Sample i is ([i, i²], i % 2), computed on demand."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return torch.tensor([float(index), float(index * index)]), index % 2


class Stream(IterableDataset):
    def __init__(self, size: int) -> None:
        self.size = size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, int]]:
        for index in range(self.size):
            yield torch.tensor([float(index), 0.0]), index % 2


class Tensors(Dataset):
    """An ArrayDataset's samples, served one by one like any user Dataset."""

    def __init__(self, data: ArrayDataset) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.data.inputs[index], self.data.targets[index]


def test_map_style_batches_carry_their_indices_in_a_seeded_order() -> None:
    batches = DatasetBatches(Squares(10), 4, shuffle=True, seed=3)
    batches.set_epoch(1)
    seen = [(x, y, i) for x, y, i in batches.indexed()]
    indices = torch.cat([i for _, _, i in seen])
    assert sorted(indices.tolist()) == list(range(10)) and len(batches) == 3
    for inputs, targets, index in seen:  # each row is the sample at its index
        assert torch.equal(inputs[:, 0], index.float()) and torch.equal(targets, index % 2)
    again = torch.cat([i for _, _, i in batches.indexed()])
    assert torch.equal(indices, again)  # the same epoch gives the same order
    batches.set_epoch(2)
    assert not torch.equal(indices, torch.cat([i for _, _, i in batches.indexed()]))


def test_the_order_is_the_in_memory_iterators() -> None:
    memory = ArrayDataset(torch.randn(13, 2), torch.zeros(13, dtype=torch.long))
    streamed = DatasetBatches(Tensors(memory), 5, shuffle=True, seed=7)
    in_memory = BatchIterator(memory, 5, shuffle=True, seed=7)
    for epoch in (0, 4):
        streamed.set_epoch(epoch)
        in_memory.set_epoch(epoch)
        assert [i.tolist() for *_, i in streamed.indexed()] == [i.tolist() for *_, i in in_memory.indexed()]


def test_an_epochs_order_is_a_tensor_read_out_as_ints_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sampler holds 8 bytes per sample (a list of Python ints would take 36: 180 MB at 5 million samples)."""
    monkeypatch.setattr(Order, "CHUNK", 4)
    batches = DatasetBatches(Squares(11), 3, shuffle=True, seed=2)
    order = batches.order()
    assert isinstance(order.indices, torch.Tensor) and order.indices.dtype == torch.int64
    assert sorted(order) == list(range(11)) and len(order) == 11 and all(type(i) is int for i in order)
    assert list(order) == order.indices.tolist() and order[3] == order.indices[3].item()
    assert list(order[2:7]) == order.indices[2:7].tolist()


def test_ranks_read_disjoint_equal_shares() -> None:
    # 11 samples, 2 ranks: 5 each (DistributedSampler without padding drops the tail), rank r takes every 2nd
    shares = []
    for rank in (0, 1):
        batches = DatasetBatches(Squares(11), 2, shuffle=False, rank=rank, world=2)
        shares.append(torch.cat([i for *_, i in batches.indexed()]).tolist())
    assert shares == [[0, 2, 4, 6, 8], [1, 3, 5, 7, 9]]


def test_a_dataloader_gives_its_workers_and_collation() -> None:
    def collate(items: list) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        inputs, targets, indices = zip(*items, strict=True)
        return torch.stack(inputs) * 0 + 1, torch.tensor(targets), torch.tensor(indices)

    loader = DataLoader(Squares(6), batch_size=99, num_workers=1, collate_fn=collate)
    batches = DatasetBatches(loader, 4)
    assert batches.num_workers == 1 and batches.pin_memory is False
    (first, _, index), (second, _, _) = list(batches.indexed())
    assert torch.equal(first, torch.ones(4, 2)) and index.tolist() == [0, 1, 2, 3] and len(second) == 2


def test_an_iterable_dataset_is_read_as_it_comes_without_indices() -> None:
    batches = list(DatasetBatches(Stream(5), 2).indexed())
    assert [len(x) for x, _, _ in batches] == [2, 2, 1] and all(i is None for *_, i in batches)


def test_items_that_are_not_pairs_are_named() -> None:
    class Bad(Squares):
        def __getitem__(self, index: int) -> torch.Tensor:  # type: ignore[override]
            return torch.zeros(2)

    with pytest.raises(MentorError, match=r"\(inputs, target\).*item 0 is Tensor"):
        list(DatasetBatches(Bad(3), 2).indexed())


def test_the_digest_of_a_dataset_follows_its_samples() -> None:
    assert data_digest(Squares(50)) == data_digest(Squares(50))
    assert data_digest(Squares(50)) != data_digest(Squares(51))
    with pytest.raises(MentorError, match="teacher_cache: false"):
        data_digest(Stream(3))


def _kd_run(train: object, validation: object, cache: bool) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    teacher, student = MLP((2,), 2, hidden=(8,)), MLP((2,), 2, hidden=(4,))
    settings = FitSettings(epochs=2, batch_size=8, progress=False, teacher_cache=cache, scale_probe=0,
                           optimizer=OptimizerSettings("sgd", 0.05))
    fit(Offline(student, create("kd", temperature=4.0, alpha=0.9), teacher), train, validation, settings)  # type: ignore[arg-type]
    return student.state_dict()


def test_fit_on_a_dataset_trains_like_its_tensors_in_memory(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MENTOR_CACHE", str(tmp_path))
    memory = ArrayDataset(torch.randn(40, 2, generator=torch.Generator().manual_seed(1)),
                          torch.arange(40) % 2)
    reference = _kd_run(memory, memory, cache=True)
    for cache in (True, False):
        streamed = _kd_run(Tensors(memory), DataLoader(Tensors(memory), batch_size=16), cache=cache)
        for key, value in reference.items():
            torch.testing.assert_close(streamed[key], value)


def test_fit_on_an_iterable_dataset_uses_the_live_teacher(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MENTOR_CACHE", str(tmp_path))
    weights = _kd_run(Stream(30), Stream(10), cache=True)
    assert all(torch.isfinite(value).all() for value in weights.values())


def test_evaluate_reads_a_dataset_batch_by_batch() -> None:
    model = torch.nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0]]))
        model.bias.zero_()
    # samples [i, i²], label i % 2; logits (0, i): class 1 wins for i > 0, the tie at i = 0
    # goes to class 0 -> right on i = 0, 1, 3 of 0..3
    # cross-entropy of (0, i) against label y: log(1 + e^i) - i·y -> ln 2, ln(1+e)-1, ln(1+e²), ln(1+e³)-3
    metrics = evaluate(model, Squares(4), batch_size=3)
    assert metrics["accuracy"] == pytest.approx(0.75)
    assert metrics["loss"] == pytest.approx((0.693147 + 0.313262 + 2.126928 + 0.048587) / 4, abs=1e-5)


def test_mentor_distill_takes_splits_of_torch_datasets(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    import mentor
    from mentor.data import Splits

    monkeypatch.setenv("MENTOR_CACHE", str(tmp_path))
    memory = ArrayDataset(torch.randn(48, 2, generator=torch.Generator().manual_seed(2)),
                          torch.arange(48) % 2)
    data = Splits("rows", Tensors(memory), DataLoader(Tensors(memory), batch_size=16), Tensors(memory), 2, (2,))
    torch.manual_seed(0)
    teacher, student = MLP((2,), 2, hidden=(8,)), MLP((2,), 2, hidden=(4,))
    result = mentor.distill(teacher, student, data, create("kd"), epochs=2, batch_size=8, progress=False,
                            latency_batch=4)
    accuracy = result.accuracies()["student distilled"]
    assert 0.0 <= accuracy <= 1.0


def test_a_scheme_that_makes_its_own_training_set_refuses_a_torch_dataset() -> None:
    from torch.utils.data import TensorDataset

    from mentor.schemes import SCHEMES

    scheme = SCHEMES.create("mean-teacher", [torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))],
                            labels=2)
    data = TensorDataset(torch.randn(8, 1, 2, 2), torch.tensor([0, 1] * 4))
    with pytest.raises(MentorError, match="makes its own training set .* not as a torch Dataset"):
        fit(scheme, data, None, FitSettings(epochs=1, batch_size=4, progress=False))


def test_loader_workers_and_pinned_memory_are_train_keys() -> None:
    from mentor.pipelines.options import settings, train_section

    fit_settings = settings(None, caller="mentor.train", num_workers=2, pin_memory=True)
    assert (fit_settings.num_workers, fit_settings.pin_memory) == (2, True)
    assert train_section(fit_settings)["num_workers"] == 2
    with pytest.raises(MentorError, match="num_workers"):
        settings(None, caller="mentor.train", num_workers=-1)
