"""The on-disk teacher-output cache: sharded by sample index, memory-mapped, resumable, bounded in memory."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from mentor.data import ArrayDataset
from mentor.engine import FitSettings, OptimizerSettings, fit
from mentor.knowledge import create
from mentor.models import MLP
from mentor.schemes import Offline
from mentor.teachers import TeacherCache, shards
from mentor.teachers.frozen import freeze


class Counted(Dataset):
    """Sample i is [i, -i] (label i % 3); counts reads and stops the process at read number ``fail_on``."""

    def __init__(self, size: int, fail_on: int | None = None) -> None:
        self.size, self.fail_on, self.reads = size, fail_on, 0

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        self.reads += 1
        if self.reads == self.fail_on:
            raise KeyboardInterrupt  # the build is stopped here
        return torch.tensor([float(index), -float(index)]), index % 3


def linear_teacher() -> nn.Linear:
    teacher = nn.Linear(2, 3)
    with torch.no_grad():  # logits (x0, x1, x0 + x1) = (i, -i, 0)
        teacher.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        teacher.bias.zero_()
    return teacher


def test_rows_are_sharded_and_read_back_by_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shards, "SHARD_BYTES", 4 * 3 * 4)  # 4 rows of 3 float32 logits per shard
    cache = TeacherCache.build(freeze(linear_teacher()), Counted(10), batch_size=3, root=tmp_path)
    assert cache is not None
    (folder,) = tmp_path.iterdir()
    assert sorted(p.name for p in folder.glob("logits*")) == [f"logits.0000{s}.npy" for s in range(3)]
    assert np.load(folder / "logits.00002.npy").shape == (2, 3)  # rows 8, 9
    outputs = cache.outputs(torch.tensor([9, 0, 5]), torch.device("cpu"))
    assert torch.equal(outputs.logits, torch.tensor([[9.0, -9.0, 0.0], [0.0, 0.0, 0.0], [5.0, -5.0, 0.0]]))


def test_an_interrupted_build_resumes_at_the_first_missing_shard(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shards, "SHARD_BYTES", 4 * 3 * 4)
    teacher = freeze(linear_teacher())
    # reads: 8 for the key (evenly spaced samples), 2 for the first batch, then rows 0, 1, ...: read 19 is row 8,
    # after shards 0 (rows 0-3) and 1 (rows 4-7) were finished
    with pytest.raises(KeyboardInterrupt):
        TeacherCache.build(teacher, Counted(10, fail_on=19), batch_size=2, root=tmp_path)
    (partial,) = tmp_path.iterdir()
    assert partial.name.endswith(".partial") and not (partial / "complete").exists()
    assert sorted(p.name for p in partial.glob("logits.*.npy")) == ["logits.00000.npy", "logits.00001.npy"]
    data = Counted(10)
    cache = TeacherCache.build(teacher, data, batch_size=2, root=tmp_path)
    assert cache is not None
    # 8 for the key, 2 for the first batch, rows 8-9 only (2), 2 for the probe check: 14, where a whole build reads 22
    assert data.reads == 14
    assert torch.equal(cache.outputs(torch.arange(10), torch.device("cpu")).logits[:, 0], torch.arange(10.0))


class Wide(Dataset):
    def __init__(self, size: int = 4096) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return torch.full((4,), float(index % 7)), index % 2


@pytest.mark.parametrize("in_memory", [False, True])
def test_a_cached_run_never_holds_the_whole_teacher_outputs(in_memory: bool, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # 4,096 samples x 1,000 logits x 4 bytes = 16 MB of teacher outputs; a cached fit must stream them to disk
    # batch by batch (64 rows = 256 KB) instead of gathering and concatenating them in memory (>= 16 MB)
    monkeypatch.setenv("MENTOR_CACHE", str(tmp_path))
    torch.manual_seed(0)
    teacher, student = MLP((4,), 1000, hidden=(8,)), MLP((4,), 1000, hidden=(8,))
    settings = FitSettings(epochs=1, batch_size=64, progress=False, scale_probe=0,
                           optimizer=OptimizerSettings("sgd", 0.01))
    fit(Offline(MLP((4,), 1000), create("kd"), MLP((4,), 1000)), Wide(64), None, settings)  # imports, not measured
    scheme = Offline(student, create("kd", temperature=4.0, alpha=0.9), teacher)
    data = Wide()
    if in_memory:
        data = ArrayDataset(torch.stack([data[i][0] for i in range(len(data))]), torch.arange(len(data)) % 2)
    tracemalloc.start()
    try:
        fit(scheme, data, None, settings)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert scheme.cache is not None  # the run was served from the cache
    outputs_bytes = 4096 * 1000 * 4
    assert peak < outputs_bytes / 4
