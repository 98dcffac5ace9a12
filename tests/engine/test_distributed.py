"""Data-parallel training under torchrun: 2 CPU processes (gloo) equal 1 process with twice the batch.

BatchIterator gives rank r every world-th sample of the epoch's order, so the ranks' k-th batches
together are the single process's k-th batch of ``batch_size × 2``; with equal shard sizes the mean
of the ranks' averaged gradients is the gradient of the whole batch. For a model without BatchNorm
(whose statistics stay per process) and without dropout, every update is then the same and the final
weights agree up to float rounding. Rank 0 alone writes metrics and checkpoints.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

from mentor.engine import MetricsLog, checkpoint
from mentor.pipelines.distill import run
from mentor.recipes import load_recipe
from mentor.recipes.build import build_job

ROLES = ("teacher", "student-alone", "student-distilled")
BATCH = 16  # per process; the single-process reference uses 2 × BATCH

# digits, first 400 samples: 360 train after the 10 % validation split, an even number, so both ranks get
# equal shards, and 360 / 32 leaves a last batch of 8 (4 per rank) that is checked too.
RECIPE = """\
name: ddp-check
seeds: [0]
data: {name: digits, validation: 0.1, limit: 400}
teacher: {model: mlp, options: {hidden: [16]}}
student: {model: mlp, options: {hidden: [8]}}
knowledge: {method: kd, params: {temperature: 2.0, alpha: 0.5}}
train: {epochs: 2, batch_size: 16, optimizer: {name: sgd, lr: 0.1, momentum: 0.9}}
"""

# Started by torchrun: each rank runs the recipe's pipeline into its own folder, so a file written by
# rank 1 would show up in rank1/.
WORKER = """\
import os, sys
from pathlib import Path
from mentor.engine import MetricsLog
from mentor.pipelines.distill import run
from mentor.recipes import load_recipe
from mentor.recipes.build import build_job

recipe, out = sys.argv[1], Path(sys.argv[2]) / f"rank{os.environ['RANK']}"
job = build_job(load_recipe(recipe), progress=False)
run(job, out, MetricsLog(out / "metrics.jsonl"), echo=lambda line: None)
"""


def torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m torch.distributed.run`` with 2 CPU processes on the gloo backend."""
    env = {**os.environ, "MENTOR_BACKEND": "gloo", "OMP_NUM_THREADS": "1"}
    # --standalone: the rendezvous binds a port the OS picks, so parallel or back-to-back runs never collide
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)


def final_weights(out: Path, role: str) -> dict[str, torch.Tensor]:
    """The weights after the last epoch (``last.pt``, not the best-on-validation copy)."""
    return checkpoint.load(out / "checkpoints" / "seed0" / role / "last.pt")["models"]["student"]


def assert_same_weights(reference: Path, other: Path) -> None:
    for role in ROLES:
        expected, got = final_weights(reference, role), final_weights(other, role)
        assert expected.keys() == got.keys()
        for name in expected:
            assert torch.allclose(expected[name], got[name], rtol=1e-4, atol=1e-5), (
                f"{role} {name}: largest difference {(expected[name] - got[name]).abs().max():.3g}")


def record_keys(path: Path) -> Counter[tuple[str, str, int]]:
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return Counter((r["run"], r["stage"], r["epoch"]) for r in records)


@pytest.fixture(scope="module")
def recipe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("recipe") / "ddp.yaml"
    path.write_text(RECIPE, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def single(recipe: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference: one process, batch 2 × BATCH, in this process (WORLD_SIZE unset)."""
    out = tmp_path_factory.mktemp("single")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # like the torchrun workers (OMP_NUM_THREADS=1): same reduction order
    try:
        job = build_job(load_recipe(str(recipe), [f"train.batch_size={2 * BATCH}"]), progress=False)
        run(job, out, MetricsLog(out / "metrics.jsonl"), echo=lambda line: None)
    finally:
        torch.set_num_threads(threads)
    return out


def test_two_processes_equal_one_with_twice_the_batch_and_only_rank0_writes(
    recipe: Path, single: Path, tmp_path: Path
) -> None:
    (tmp_path / "worker.py").write_text(WORKER, encoding="utf-8")
    result = torchrun(str(tmp_path / "worker.py"), str(recipe), str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = tmp_path / "rank0", tmp_path / "rank1"
    assert_same_weights(single, rank0)  # teacher, student alone and student distilled (KD, cached teacher)
    assert not rank1.exists(), f"rank 1 wrote {sorted(str(p.relative_to(rank1)) for p in rank1.rglob('*'))}"
    for role in ROLES:
        assert {p.name for p in (rank0 / "checkpoints" / "seed0" / role).iterdir()} >= {"last.pt", "best.pt"}
    # one record per model and epoch, as in the single process
    keys = record_keys(rank0 / "metrics.jsonl")
    assert keys == record_keys(single / "metrics.jsonl")
    assert set(keys.values()) == {1} and len(keys) == 3 * 2


def test_mentor_run_under_torchrun(recipe: Path, single: Path, tmp_path: Path) -> None:
    """The documented command: ``torchrun --nproc_per_node=2 -m mentor run RECIPE --out DIR``."""
    out = tmp_path / "run"
    result = torchrun("-m", "mentor", "run", str(recipe), "--out", str(out), "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_same_weights(single, out)
    keys = record_keys(out / "metrics.jsonl")
    assert keys == record_keys(single / "metrics.jsonl") and set(keys.values()) == {1}
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert set(summary["models"]) == {"teacher", "student alone", "student distilled"}
    assert result.stdout.count("mentor: running") == 1, "every rank printed the run banner"
