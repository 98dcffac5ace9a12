"""The teacher-output cache returns exactly what the live teacher computes, and never a stale entry."""

from __future__ import annotations

from pathlib import Path

import torch

from mentor.batch import Batch
from mentor.data import ArrayDataset
from mentor.knowledge import create
from mentor.models import CNN
from mentor.schemes import Offline
from mentor.teachers import TeacherCache, freeze
from mentor.teachers.cache import cache_key


def dataset(size: int = 40, seed: int = 0) -> ArrayDataset:
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(size, 1, 8, 8, generator=generator)
    return ArrayDataset(inputs, torch.randint(0, 5, (size,), generator=generator))


def teacher(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = CNN((1, 8, 8), 5, channels=(8, 16))
    model.train()
    with torch.no_grad():
        model(torch.randn(16, 1, 8, 8))  # non-trivial BatchNorm statistics
    return freeze(model)


def test_cached_outputs_equal_live_outputs(tmp_path: Path) -> None:
    frozen, data = teacher(), dataset()
    cache = TeacherCache.build(frozen, data, ("stage1", "stage2.relu1:input"), batch_size=7, root=tmp_path)
    indices = torch.tensor([3, 17, 0, 39, 17])
    cached = cache.outputs(indices, torch.device("cpu"))
    live = frozen.outputs(data.inputs[indices], ("stage1", "stage2.relu1:input"))
    assert torch.allclose(cached.logits, live.logits, atol=1e-6)
    for path in live.features:
        assert torch.allclose(cached.features[path], live.features[path], atol=1e-6)


def test_offline_loss_is_the_same_with_the_cache_and_with_the_live_teacher(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("MENTOR_CACHE", str(tmp_path))
    data = dataset()
    batch = Batch(data.inputs[:8], data.targets[:8], torch.arange(8), len(data))
    losses = []
    for cached in (False, True):
        torch.manual_seed(1)
        student = CNN((1, 8, 8), 5, channels=(4, 8))
        scheme = Offline(student, create("general", ce=0.5, kl={"temperature": 3.0, "weight": 1.0},
                                         distances=[{"student": "stage2", "teacher": "stage2", "adapter": "conv1x1"}]),
                         teacher())
        scheme.setup(batch)
        if cached:
            scheme.cache_teachers(data)
        losses.append(scheme.loss(batch, 0.0, 1).total.detach())
    assert torch.allclose(losses[0], losses[1], atol=1e-6)


def test_key_changes_with_teacher_weights_data_and_taps() -> None:
    data = dataset()
    base = cache_key(teacher(0), data, (), None)
    assert base == cache_key(teacher(0), data, (), None)
    assert base != cache_key(teacher(1), data, (), None)
    assert base != cache_key(teacher(0), dataset(seed=1), (), None)
    assert base != cache_key(teacher(0), data, ("stage1",), None)
    assert base != cache_key(teacher(0), data, (), 3)
    bf16 = teacher(0)
    bf16.precision = "bf16"
    assert base != cache_key(bf16, data, (), None)
    changed = teacher(0)
    with torch.no_grad():
        next(changed.model.parameters())[0, 0, 0, 0] += 1e-3
    assert base != cache_key(changed, data, (), None)


def test_top_k_keeps_top_probabilities_exactly_and_spreads_the_rest(tmp_path: Path) -> None:
    frozen, data = teacher(), dataset()
    cache = TeacherCache.build(frozen, data, top_k=2, root=tmp_path)
    indices = torch.arange(10)
    live = torch.softmax(frozen.outputs(data.inputs[indices]).logits, dim=1)
    rebuilt = torch.softmax(cache.outputs(indices, torch.device("cpu")).logits, dim=1)
    top = live.topk(2, dim=1)
    assert torch.allclose(rebuilt.gather(1, top.indices), top.values, atol=1e-5)
    rest = (1 - top.values.sum(dim=1)) / 3
    mask = torch.ones_like(live, dtype=torch.bool).scatter_(1, top.indices, False)
    assert torch.allclose(rebuilt[mask].view(10, 3), rest[:, None].expand(10, 3), atol=1e-5)
    assert torch.allclose(rebuilt.sum(dim=1), torch.ones(10), atol=1e-5)
