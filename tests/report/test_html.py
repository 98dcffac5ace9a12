"""The HTML report: every section, one image per plot, the right numbers, and a real browser rendering."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from mentor.engine import checkpoint
from mentor.errors import MentorError
from mentor.models import create
from mentor.report.html import build_report, predictions
from mentor.report.runs import Run
from tests.report.rundir import IMAGES_PER_RUN, copy_run

pytest.importorskip("matplotlib")

SECTIONS = ["Summary", "Loss curves", "Loss-term scales", "Validation accuracy", "Agreement", "Confusion matrices",
            "Calibration", "Size and latency"]



@pytest.fixture(scope="module")
def report(run_dir: Path) -> str:
    return build_report([Run.open(run_dir)])


def test_every_section_is_there(report: str) -> None:
    for title in SECTIONS:
        assert f"<h3>{title}</h3>" in report


def test_one_embedded_png_per_plot_and_no_external_links(report: str) -> None:
    images = re.findall(r'<img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)">', report)
    assert len(images) == IMAGES_PER_RUN == report.count("<img")
    assert all(base64.b64decode(image)[:8] == b"\x89PNG\r\n\x1a\n" for image in images)
    assert "http://" not in report and "https://" not in report and "<link" not in report
    assert "<script" not in report


def test_scales_table_lists_every_term_of_every_stage(report: str) -> None:
    # quickstart: KD (ce + kl) for the distilled student, ce alone for the teacher and the student alone
    for label in ("teacher · train · ce", "student-alone · train · ce", "student-distilled · train · ce",
                  "student-distilled · train · kl"):
        assert f"<td>{label}</td>" in report


def _test_logits(run_dir: Path, role: str, model_name: str, seed: int) -> torch.Tensor:
    """Logits of one checkpoint, rebuilt without the reader under test."""
    run = Run.open(run_dir)
    data = run.load_data(seed)
    model = create(model_name, data.num_classes, data.input_shape)
    state = checkpoint.load(run_dir / "checkpoints" / f"seed{seed}" / role / "best.pt")
    model.load_state_dict(state["models"]["student"])
    with torch.no_grad():
        return model.eval()(data.test.inputs)


def test_agreement_and_ece_numbers_are_right(run_dir: Path, report: str) -> None:
    labels = Run.open(run_dir).load_data(0).test.targets
    teacher = [_test_logits(run_dir, "teacher", "mlp-small", seed) for seed in (0, 1)]
    student = [_test_logits(run_dir, "student-distilled", "mlp-tiny", seed) for seed in (0, 1)]
    agreements = [(t.argmax(1) == s.argmax(1)).float().mean().item() for t, s in zip(teacher, student, strict=True)]
    mean = sum(agreements) / 2
    row = (f"<tr><td>teacher</td><td>student-distilled</td><td>{100 * agreements[0]:.2f}</td>"
           f"<td>{100 * agreements[1]:.2f}</td><td>{100 * mean:.2f}</td></tr>")
    assert row in report
    # ECE of the pooled seeds, 15 bins (lo, hi], written out.
    probabilities = torch.cat(student).softmax(1).double()
    confidence, predicted = probabilities.max(1)
    correct = (predicted == labels.repeat(2)).double()
    ece = 0.0
    for m in range(15):
        inside = (confidence > m / 15) & (confidence <= (m + 1) / 15)
        if inside.any():
            ece += inside.double().mean().item() * abs(correct[inside].mean().item() - confidence[inside].mean().item())
    assert f"<tr><td>student-distilled</td><td>2</td><td>{ece:.4f}</td></tr>" in report


def test_roles_without_weights_become_notes(run_dir: Path, tmp_path: Path) -> None:
    run_path = copy_run(run_dir, tmp_path / "run")
    shutil.rmtree(run_path / "checkpoints" / "seed1" / "teacher")
    outputs = predictions(Run.open(run_path))
    assert set(outputs.logits["teacher"]) == {0}
    assert set(outputs.logits["student-distilled"]) == {0, 1}
    assert len(outputs.notes) == 1 and outputs.notes[0].startswith("teacher, seed 1: run")


def test_missing_matplotlib_says_how_to_install(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(MentorError, match=r"pip install 'mentor\[report\]'"):
        build_report([Run.open(run_dir)])


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_chromium_renders_the_plots(report: str, tmp_path: Path) -> None:
    image_module = pytest.importorskip("PIL.Image")
    import numpy as np

    page = tmp_path / "report.html"
    page.write_text(report, encoding="utf-8")
    screenshot = tmp_path / "report.png"
    command = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}", f"--screenshot={screenshot}",
               "--window-size=1200,3000", page.as_uri()]
    subprocess.run(command, cwd=tmp_path, capture_output=True, timeout=120, check=False)
    assert screenshot.is_file()
    pixels = np.asarray(image_module.open(screenshot).convert("RGB")).astype(int)
    # Plot lines, bars and matrices are coloured; text and tables are grey. The rendered report has about
    # 2 % coloured pixels; the same page with broken images has under 0.01 %.
    coloured = (pixels.max(axis=2) - pixels.min(axis=2)) > 60
    assert coloured.mean() > 0.005
