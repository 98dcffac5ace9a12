"""The CUDA paths, on a machine with a GPU (skipped elsewhere).

Every knowledge method and every scheme trains on the GPU in fp32 and under bf16 autocast; a CUDA run agrees
with the CPU run of the same work; the teacher-output cache, pinned streamed batches, resuming, the bf16 teacher,
``train.compile``, ``mentor run`` and the built-in pipelines (Noisy Student, PATE, MuST, several teachers) work
there; two torchrun processes sharing one GPU equal one process with twice the batch.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch.utils.data import Dataset

from mentor.cli import main
from mentor.data import ArrayDataset
from mentor.engine import FitSettings, OptimizerSettings, checkpoint, fit
from mentor.knowledge import KNOWLEDGE, create
from mentor.models import MLP
from mentor.schemes import SCHEMES, Offline, Scheme
from tests.engine.test_distributed import RECIPE
from tests.knowledge.conftest import student_model
from tests.knowledge.test_contract import regression, stages, teacher_for
from tests.pipelines.test_expand import TINY as EXPAND_TINY
from tests.pipelines.test_multitask_run import DIGITS as MUST_TINY
from tests.pipelines.test_pate import TINY as PATE_TINY
from tests.schemes.conftest import tiny_data
from tests.schemes.test_contract import build

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CUDA = FitSettings(epochs=1, batch_size=8, progress=False, device="cuda")
SGD = OptimizerSettings("sgd", 0.1)


def on_cuda(module: torch.nn.Module) -> bool:
    return all(tensor.is_cuda for tensor in [*module.parameters(), *module.buffers()])


def finite(module: torch.nn.Module) -> bool:
    return all(torch.isfinite(p).all() for p in module.parameters())


def table(size: int = 64) -> ArrayDataset:
    inputs = torch.randn(size, 4, generator=torch.Generator().manual_seed(0))
    return ArrayDataset(inputs, (inputs[:, 0] > 0).long())


def kd_student(settings: FitSettings, data: ArrayDataset | Dataset, dropout: float = 0.0,
               checkpoints: Path | None = None) -> dict[str, torch.Tensor]:
    """A 4-8-2 MLP distilled from a 4-16-2 teacher with KD: the final student weights, on the CPU."""
    torch.manual_seed(0)
    teacher, student = MLP((4,), 2, hidden=(16,)), MLP((4,), 2, hidden=(8,), dropout=dropout)
    fit(Offline(student, create("kd", temperature=2.0, alpha=0.5), teacher), data, None, settings,
        checkpoints=checkpoints)
    return {name: value.cpu() for name, value in student.state_dict().items()}


def assert_close(expected: dict[str, torch.Tensor], got: dict[str, torch.Tensor], tolerance: float) -> None:
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=tolerance, atol=tolerance, msg=name)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("name", KNOWLEDGE.names())
def test_every_method_trains_on_cuda(name: str, precision: str) -> None:
    teacher, student = teacher_for(name), student_model(regression(name))
    teacher_before = {key: value.clone() for key, value in teacher.state_dict().items()}
    student_before = copy.deepcopy(student.state_dict())
    generator = torch.Generator().manual_seed(3)
    targets = (torch.randn(32, 1, generator=generator) if regression(name)
               else torch.randint(0, 5, (32,), generator=generator))
    data = ArrayDataset(torch.randn(32, 1, 8, 8, generator=generator), targets)
    for stage in stages(name):
        scheme = Offline(student, stage.objective, teacher)
        fit(scheme, data, data, replace(CUDA, precision=precision))  # type: ignore[arg-type]
        assert on_cuda(scheme), f"stage {stage.name!r} left a part on the CPU"
    assert finite(student)
    assert any(not torch.equal(student_before[key], value.cpu()) for key, value in student.state_dict().items())
    assert all(torch.equal(teacher_before[key], value.cpu()) for key, value in teacher.state_dict().items())


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("name", SCHEMES.names())
def test_every_scheme_trains_on_cuda(name: str, precision: str, tmp_path: Path) -> None:
    built = build(name)
    phases: list[Scheme] = [built] if isinstance(built, Scheme) else [p.scheme for p in built.phases()]
    for index, scheme in enumerate(phases):
        fit(scheme, tiny_data(), tiny_data(16, 4), replace(CUDA, precision=precision),  # type: ignore[arg-type]
            checkpoints=tmp_path / f"phase{index}")
        assert on_cuda(scheme) and finite(scheme)


def test_cuda_and_cpu_runs_agree() -> None:
    settings = FitSettings(epochs=3, batch_size=8, progress=False, optimizer=SGD)
    assert_close(kd_student(settings, table()), kd_student(replace(settings, device="cuda"), table()), 1e-4)


def test_the_teacher_output_cache_serves_like_the_live_teacher_on_cuda() -> None:
    settings = replace(CUDA, epochs=2, optimizer=SGD)
    live = kd_student(replace(settings, teacher_cache=False), table())
    assert_close(live, kd_student(settings, table()), 1e-5)


class Rows(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """The table as a map-style torch Dataset: the streamed path (workers, pinned batches)."""

    def __init__(self, data: ArrayDataset) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.data.inputs[index], self.data.targets[index]  # type: ignore[index]


def test_pinned_streamed_batches_train_like_the_in_memory_path_on_cuda() -> None:
    settings = replace(CUDA, epochs=2, optimizer=SGD)
    in_memory = kd_student(settings, table())
    streamed = kd_student(replace(settings, num_workers=2, pin_memory=True), Rows(table()))
    assert_close(in_memory, streamed, 1e-5)


def test_a_cuda_run_resumes_bit_for_bit(tmp_path: Path) -> None:
    settings = replace(CUDA, optimizer=SGD)
    whole = kd_student(replace(settings, epochs=4), table(), dropout=0.2, checkpoints=tmp_path / "whole")
    kd_student(replace(settings, epochs=2), table(), dropout=0.2, checkpoints=tmp_path / "parts")
    resumed = kd_student(replace(settings, epochs=4, resume=True), table(), dropout=0.2,
                         checkpoints=tmp_path / "parts")
    for key in whole:
        assert torch.equal(whole[key], resumed[key]), key
    state = checkpoint.load(tmp_path / "parts" / "last.pt")  # a CUDA checkpoint reads on the CPU
    assert all(not value.is_cuda for value in state["models"]["student"].values())


def test_the_bf16_teacher_stays_close_to_fp32_on_cuda() -> None:
    settings = replace(CUDA, epochs=2, optimizer=SGD)
    fp32 = kd_student(settings, table())
    assert_close(fp32, kd_student(replace(settings, teacher_precision="bf16"), table()), 5e-2)


def test_compile_trains_the_same_student_on_cuda() -> None:
    settings = replace(CUDA, epochs=2, optimizer=SGD, teacher_cache=False)
    eager = kd_student(settings, table())
    assert_close(eager, kd_student(replace(settings, compile=True), table()), 1e-4)




def run_recipe(tmp_path: Path, name: str, batch: int, processes: int) -> Path:
    recipe, out = tmp_path / f"{name}.yaml", tmp_path / name
    recipe.write_text(RECIPE.replace("batch_size: 16", f"batch_size: {batch}, device: cuda"), encoding="utf-8")
    env = {**os.environ, "MENTOR_BACKEND": "gloo", "OMP_NUM_THREADS": "1"}
    launcher = (["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
                if processes > 1 else [])
    command = [sys.executable, *launcher, "-m", "mentor", "run", str(recipe), "--out", str(out), "--quiet"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_mentor_run_on_cuda_and_two_torchrun_processes_on_one_gpu_equal_one(tmp_path: Path) -> None:
    single, double = run_recipe(tmp_path, "single", 32, 1), run_recipe(tmp_path, "double", 16, 2)
    for role in ("teacher", "student-alone", "student-distilled"):
        weights = [checkpoint.load(out / "checkpoints" / "seed0" / role / "last.pt")["models"]["student"]
                   for out in (single, double)]
        assert_close(weights[0], weights[1], 1e-4)


CUDA_EVERYWHERE = {
    "noisy-student": [*EXPAND_TINY, "--set", "teacher.train.device=cuda"],
    "pate": [*PATE_TINY, "--set", "teacher.train.device=cuda"],
    "must": [*MUST_TINY, "--set", "multitask.ground_truth=false", "--set", "teacher.train.device=cuda"],
    "multi-teacher": ["--set", "data.limit=200", "--set", "train.epochs=1", "--set", "teachers.2.train.epochs=1",
                      "--set", "teachers.2.train.device=cuda", "--quiet"],
}


@pytest.mark.parametrize("name", sorted(CUDA_EVERYWHERE))
def test_the_builtin_pipelines_run_on_cuda(name: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    torch.cuda.reset_peak_memory_stats()
    arguments = ["run", name, "--out", str(tmp_path / "run"), "--set", "train.device=cuda", *CUDA_EVERYWHERE[name]]
    assert main(arguments) == 0, capsys.readouterr().err
    assert torch.cuda.max_memory_allocated() > 0
