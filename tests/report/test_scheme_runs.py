"""Every model a scheme run trains is evaluated, exported and reported under its own name."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from mentor.cli import main
from mentor.report.runs import Run
from mentor.taps import prefix

TINY = ["--set", "seeds=[0]", "--set", "data.limit=120", "--set", "train.epochs=1", "--set", "train.batch_size=32",
        "--set", "latency_batch=8", "--quiet"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Finished tiny runs: dml (two peers), byot (one exit), born-again (one generation after the first)."""
    folder = tmp_path_factory.mktemp("scheme-runs")
    extra = {"born-again": ["--set", "scheme.params.generations=1", "--set", "compare.independent=false"]}
    made = {}
    for name in ("dml", "byot", "born-again"):
        made[name] = folder / name
        assert main(["run", name, "--out", str(made[name]), *TINY, *extra.get(name, [])]) == 0
    return made


def _accuracy(model: torch.nn.Module, run: Run) -> float:
    test = run.load_data(0).test
    with torch.no_grad():
        return (model(test.inputs).argmax(dim=1) == test.targets).float().mean().item()


@pytest.mark.parametrize(("name", "models"), [
    ("dml", ["peer0", "peer1", "ensemble", "peer0-alone", "peer1-alone", "ensemble-alone"]),
    ("byot", ["deepest", "exit1", "ensemble", "peer0-alone"]),
    ("born-again", ["last", "ensemble", "generation0"]),  # a phase's model the scheme's own names leave out
])
def test_every_model_is_rebuilt_with_the_accuracy_of_the_summary(runs: dict[str, Path], name: str,
                                                                 models: list[str]) -> None:
    summary = json.loads((runs[name] / "summary.json").read_text())["models"]
    assert [key.replace(" ", "-") for key in summary] == models
    assert not any(":" in key for key in summary)  # no "dml: peer0" style role names
    run = Run.open(runs[name])
    assert run.roles() == models
    for model in models:
        rebuilt = run.build_model(model, 0)
        assert not rebuilt.training
        assert _accuracy(rebuilt, run) == pytest.approx(summary[model.replace("-", " ")]["accuracy"][0], abs=1e-6)


def test_eval_without_a_name_lists_every_model(runs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(runs["dml"])]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines[3:]] == ["peer0", "peer1", "ensemble", "peer0-alone", "peer1-alone",
                                                       "ensemble-alone"]
    assert main(["eval", str(runs["dml"]), "--model", "peer1"]) == 0
    assert re.match(r"^peer1 \(seed 0\) on the digits test split, \d+ samples", capsys.readouterr().out)
    assert main(["eval", str(runs["dml"]), "--model", "dml:-peer0"]) == 2
    assert "unknown model 'dml:-peer0'" in capsys.readouterr().err


def test_an_exit_is_the_path_to_it_measured_and_exported_alone(runs: dict[str, Path], tmp_path: Path) -> None:
    summary = json.loads((runs["byot"] / "summary.json").read_text())["models"]
    run = Run.open(runs["byot"])
    exit1, network = run.build_model("exit1", 0), run.build_model("deepest", 0)
    # cnn-small on digits: stage1 is conv 1->16 (144 weights) and its BatchNorm (32); the shallow classifier
    # is a 16->32 1x1 conv (512), BatchNorm (64), a 32->32 3x3 conv (9,216), BatchNorm (64) and a 32->10 head
    # (330). The rest of the network (stage2, head: 4,826) is not on the path.
    assert summary["exit1"]["parameters"] == 144 + 32 + 512 + 64 + 9216 + 64 + 330 == 10362
    assert sum(p.numel() for p in exit1.parameters()) == 10362
    assert summary["deepest"]["parameters"] == sum(p.numel() for p in network.parameters()) == 5178
    out = tmp_path / "exit1.pt"
    assert main(["export", str(runs["byot"]), "--model", "exit1", "--format", "torchscript", "--out", str(out)]) == 0
    exported = torch.jit.load(str(out))
    assert sum(p.numel() for p in exported.parameters()) == 10362
    inputs = run.load_data(0).test.inputs[:5]
    with torch.no_grad():
        assert torch.allclose(exported(inputs), exit1(inputs), atol=1e-5)


def test_prefix_cuts_plain_sequentials_only() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(4, 5)),
                                torch.nn.Linear(5, 2))
    cut = prefix(model, "1.1")
    assert [type(m).__name__ for m in cut] == ["Linear", "ReLU", "Linear"] and cut[2] is model[1][1]
    assert [type(m).__name__ for m in prefix(model, "1.1:input")] == ["Linear", "ReLU"]
    inputs = torch.randn(2, 3)
    assert torch.equal(cut(inputs), model[1](model[0](inputs)))

    class Residual(torch.nn.Sequential):
        def forward(self, inputs: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
            return inputs + super().forward(inputs)

    assert prefix(torch.nn.Sequential(Residual(torch.nn.Linear(3, 3)), torch.nn.ReLU()), "0.0") is None


@pytest.mark.filterwarnings("ignore")
def test_the_report_shows_every_model(runs: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "report.html"
    assert main(["report", str(runs["dml"]), "--out", str(out)]) == 0
    document = out.read_text(encoding="utf-8")
    for model in ("peer0", "peer1", "ensemble", "peer0-alone", "peer1-alone", "ensemble-alone"):
        assert f'alt="confusion matrix of {model}"' in document
    assert "dml:" not in document and "no model could be rebuilt" not in document
    assert 'alt="loss curves of dml"' in document and 'alt="loss curves of peer0-alone"' in document
