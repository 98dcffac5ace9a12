"""`mentor export`: ONNX (checked with ONNX Runtime) and TorchScript files that reproduce PyTorch."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from mentor.cli import main
from mentor.errors import MentorError
from mentor.export import METADATA_FILE, export
from mentor.report.runs import Run
from tests.report.rundir import finished_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return finished_run(tmp_path_factory)


def _reference(run_dir: Path, role: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A test batch of another size than the export's example batch, and PyTorch's logits on it."""
    run = Run.open(run_dir)
    inputs = run.load_data(seed).test.inputs[:37]
    with torch.no_grad():
        return inputs, run.build_model(role, seed)(inputs)


def test_onnx_matches_pytorch(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    onnx = pytest.importorskip("onnx")
    runtime = pytest.importorskip("onnxruntime")
    out = tmp_path / "student.onnx"
    assert main(["export", str(run_dir), "--format", "onnx", "--out", str(out)]) == 0
    assert "max |difference| to PyTorch" in capsys.readouterr().out
    inputs, expected = _reference(run_dir, "student-distilled", 0)
    session = runtime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    actual = session.run(None, {"inputs": inputs.numpy()})[0]
    assert actual.shape == (37, 10)
    assert torch.allclose(torch.from_numpy(actual), expected, atol=1e-4, rtol=0)
    metadata = {entry.key: entry.value for entry in onnx.load(str(out)).metadata_props}
    assert metadata["role"] == "student-distilled" and json.loads(metadata["input_shape"]) == [1, 8, 8]
    assert len(json.loads(metadata["mean"])) == 1


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_torchscript_reloads_and_matches(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "teacher.pt"
    assert main(["export", str(run_dir), "--format", "torchscript", "--role", "teacher", "--seed", "1",
                 "--out", str(out)]) == 0
    inputs, expected = _reference(run_dir, "teacher", 1)
    extra = {METADATA_FILE: ""}
    reloaded = torch.jit.load(str(out), _extra_files=extra)
    with torch.no_grad():
        assert torch.allclose(reloaded(inputs), expected, atol=1e-5, rtol=0)
    assert json.loads(extra[METADATA_FILE])["seed"] == 1


def test_default_output_goes_into_the_run(run_dir: Path, tmp_path: Path) -> None:
    import shutil

    run_copy = Path(shutil.copytree(run_dir, tmp_path / "run"))
    assert main(["export", str(run_copy), "--format", "torchscript", "--role", "student-alone"]) == 0
    assert (run_copy / "export" / "student-alone-seed0.pt").is_file()


def test_bad_requests_exit_2(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(run_dir), "--format", "torchscript", "--role", "pupil"]) == 2
    assert "valid: student-alone, student-distilled, teacher" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nowhere"), "--format", "onnx"]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["export", str(run_dir), "--format", "tflite"])


def test_missing_onnx_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(MentorError, match=r"pip install 'mentor\[onnx\]'"):
        export(torch.nn.Linear(3, 2), torch.zeros(1, 3), "onnx", tmp_path / "x.onnx")


def test_without_onnxruntime_the_file_is_written_unchecked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    out = tmp_path / "linear.onnx"
    assert export(torch.nn.Linear(3, 2), torch.zeros(2, 3), "onnx", out, {"note": "x"}) is None
    assert out.is_file()
