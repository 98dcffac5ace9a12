"""torchrun over a torch Dataset: each rank reads its share, the teacher-output cache is built once (rank 0).

2 CPU processes on gloo, each with batch 8, train like 1 process with batch 16 on the same tensors in memory (the
ranks' k-th batches together are the single process's k-th batch, see test_distributed.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from mentor.data import ArrayDataset
from mentor.engine import FitSettings, OptimizerSettings, fit
from mentor.knowledge import create
from mentor.models import MLP
from mentor.schemes import Offline

WORKER = """\
import json, os, sys
from pathlib import Path
import torch
from torch.utils.data import Dataset
from mentor.engine import FitSettings, OptimizerSettings, fit
from mentor.knowledge import create
from mentor.models import MLP
from mentor.schemes import Offline

class Rows(Dataset):
    def __init__(self, data):
        self.inputs, self.targets, self.reads = data["inputs"], data["targets"], 0
    def __len__(self):
        return len(self.inputs)
    def __getitem__(self, index):
        self.reads += 1
        return self.inputs[index], self.targets[index]

folder = Path(sys.argv[1])
data = Rows(torch.load(folder / "data.pt"))
models = torch.load(folder / "models.pt")
teacher, student = MLP((4,), 2, hidden=(8,)), MLP((4,), 2, hidden=(4,))
teacher.load_state_dict(models["teacher"]); student.load_state_dict(models["student"])
settings = FitSettings(epochs=2, batch_size=8, progress=False, scale_probe=0, optimizer=OptimizerSettings("sgd", 0.1))
scheme = Offline(student, create("kd", temperature=2.0, alpha=0.5), teacher)
fit(scheme, data, None, settings)
rank = os.environ["RANK"]
torch.save(student.state_dict(), folder / f"rank{rank}.pt")
(folder / f"rank{rank}.json").write_text(json.dumps({"reads": data.reads, "cached": scheme.cache is not None}))
"""


def test_ranks_share_one_cache_build_and_train_like_one_process(tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(64, 4, generator=generator)
    torch.save({"inputs": inputs, "targets": (inputs[:, 0] > 0).long()}, tmp_path / "data.pt")
    torch.manual_seed(0)
    teacher, student = MLP((4,), 2, hidden=(8,)), MLP((4,), 2, hidden=(4,))
    torch.save({"teacher": teacher.state_dict(), "student": student.state_dict()}, tmp_path / "models.pt")
    (tmp_path / "worker.py").write_text(WORKER)
    env = {**os.environ, "MENTOR_BACKEND": "gloo", "OMP_NUM_THREADS": "1", "MENTOR_CACHE": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(tmp_path / "worker.py"), str(tmp_path)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]

    reference_settings = FitSettings(epochs=2, batch_size=16, progress=False, scale_probe=0,
                                     optimizer=OptimizerSettings("sgd", 0.1))
    data = torch.load(tmp_path / "data.pt")
    fit(Offline(student, create("kd", temperature=2.0, alpha=0.5), teacher),
        ArrayDataset(data["inputs"], data["targets"]), None, reference_settings)
    for rank in (0, 1):
        weights = torch.load(tmp_path / f"rank{rank}.pt")
        for name, value in student.state_dict().items():
            torch.testing.assert_close(weights[name], value, rtol=1e-4, atol=1e-5)
    stats = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert all(stat["cached"] for stat in stats)
    # both read 8 samples for the key, the probe batch (64), a first batch (8) and their half (2 epochs x 32);
    # rank 0 alone built the entry: a first batch (64) and every row (64)
    assert stats[1]["reads"] == 8 + 64 + 8 + 2 * 32
    assert stats[0]["reads"] - stats[1]["reads"] == 64 + 64
    entries = list((tmp_path / "cache" / "teacher-outputs").iterdir())
    assert len(entries) == 1 and (entries[0] / "complete").exists()
