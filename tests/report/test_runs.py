"""Reading run directories: roles, seeds, final weights and the errors for bad input."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
import torch
import yaml

from mentor.engine import checkpoint
from mentor.errors import MentorError
from mentor.models import create
from mentor.report.runs import Run, summary_rows
from tests.report.rundir import copy_run

ROLES = ["teacher", "student-alone", "student-distilled"]


def test_roles_seeds_and_summary_of_a_finished_run(run_dir: Path) -> None:
    run = Run.open(run_dir)
    assert run.roles() == ROLES
    assert run.seeds() == [0, 1]
    assert run.name == "quickstart"
    assert run.default_role() == "student-distilled"
    assert list(run.models_summary()) == ROLES
    assert {record["run"] for record in run.history("student-distilled")} == {"student-distilled"}
    assert len(run.history("teacher")) == 2 * 3  # two seeds, three epochs


def test_rebuilt_models_reproduce_the_summary_accuracy(run_dir: Path) -> None:
    run = Run.open(run_dir)
    summary = run.models_summary()
    for role in ROLES:
        for index, seed in enumerate(summary[role]["seeds"]):
            model = run.build_model(role, seed)
            test = run.load_data(seed).test
            with torch.no_grad():
                accuracy = (model(test.inputs).argmax(dim=1) == test.targets).float().mean().item()
            assert accuracy == pytest.approx(summary[role]["accuracy"][index], abs=1e-6)
            assert not model.training


def test_final_weights_are_best_then_last(run_dir: Path, tmp_path: Path) -> None:
    run = Run.open(copy_run(run_dir, tmp_path / "run"))
    folder = run.path / "checkpoints" / "seed0" / "student-alone"
    assert run.weights_path("student-alone", 0) == folder / "best.pt"
    (folder / "best.pt").unlink()
    assert run.weights_path("student-alone", 0) == folder / "last.pt"
    (folder / "last.pt").unlink()
    with pytest.raises(MentorError, match="no best.pt or last.pt"):
        run.weights_path("student-alone", 0)


def test_multi_stage_roles_use_the_last_stage_in_metrics_order(run_dir: Path, tmp_path: Path) -> None:
    run_path = copy_run(run_dir, tmp_path / "run")
    folder = run_path / "checkpoints" / "seed0" / "student-distilled"
    # Stage names whose alphabetical order is the reverse of the training order.
    for stage in ("warmup", "anneal"):
        (folder / stage).mkdir()
        (folder / "best.pt").rename(folder / stage / "best.pt") if stage == "anneal" else \
            (folder / stage / "best.pt").write_bytes((folder / "last.pt").read_bytes())
    (folder / "last.pt").unlink()
    records = [json.loads(line) for line in (run_path / "metrics.jsonl").read_text().splitlines()]
    for record in records:
        if record["run"] == "student-distilled":
            record["stage"] = "warmup" if record["epoch"] == 1 else "anneal"
    (run_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert Run.open(run_path).weights_path("student-distilled", 0) == folder / "anneal" / "best.pt"


def test_an_unfinished_scheme_run_names_its_models_from_metrics_and_folders(tmp_path: Path) -> None:
    recipe = {"name": "peers", "data": {"name": "digits", "limit": 40}, "scheme": {"name": "dml"},
              "peers": [{"model": "mlp-tiny"}, {"model": "mlp-small"}], "train": {"batch_size": 16}}
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    torch.manual_seed(0)
    peers = {"peer0": create("mlp-tiny", 10, (1, 8, 8)), "peer1": create("mlp-small", 10, (1, 8, 8))}
    states = {name: model.state_dict() for name, model in peers.items()}
    checkpoint.save({"models": states, "epoch": 1}, tmp_path / "checkpoints" / "seed3" / "dml" / "best.pt")
    checkpoint.save({"models": {"student": states["peer0"]}, "epoch": 1},
                    tmp_path / "checkpoints" / "seed3" / "peer0-alone" / "best.pt")
    record = {"run": "dml", "seed": 3, "stage": "train", "epoch": 1, "val/peer0/accuracy": 0.5,
              "val/peer1/accuracy": 0.5, "val/ensemble/accuracy": 0.5}
    (tmp_path / "metrics.jsonl").write_text(json.dumps(record) + "\n")
    run = Run.open(tmp_path)  # no summary.json: the run did not finish
    assert run.roles() == ["peer0", "peer1", "ensemble", "peer0-alone"]
    assert run.seeds() == [3]
    rebuilt = run.build_model("peer1", 3)
    assert torch.equal(rebuilt.state_dict()["head.weight"], states["peer1"]["head.weight"])
    alone = run.build_model("peer0-alone", 3)
    assert torch.equal(alone.state_dict()["head.weight"], states["peer0"]["head.weight"])


def test_a_checkpoint_of_another_model_names_the_role_and_the_key(run_dir: Path, tmp_path: Path) -> None:
    run_path = copy_run(run_dir, tmp_path / "run")
    recipe = yaml.safe_load((run_path / "recipe.yaml").read_text())
    recipe["student"]["model"] = "mlp-small"
    (run_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    with pytest.raises(MentorError) as error:
        Run.open(run_path).build_model("student-distilled", 0)
    message = str(error.value)
    assert "'student-distilled'" in message and "'fc1.weight'" in message and "\n" not in message


def test_missing_and_non_run_directories(tmp_path: Path) -> None:
    with pytest.raises(MentorError, match="does not exist"):
        Run.open(tmp_path / "nowhere")
    with pytest.raises(MentorError, match="not a run directory"):
        Run.open(tmp_path)
    (tmp_path / "recipe.yaml").write_text("name: x\nscheme: {name: dml}\npeers: [{model: mlp-tiny}]\n")
    with pytest.raises(MentorError, match="no results"):
        Run.open(tmp_path)


def test_unknown_role_and_seed_list_the_valid_ones(run_dir: Path) -> None:
    run = Run.open(run_dir)
    with pytest.raises(MentorError, match="student-distilled") as error:
        run.check("student")
    assert "valid: student-alone, student-distilled, teacher" in str(error.value)
    with pytest.raises(MentorError, match=r"no seed 7 \(valid: 0, 1\)"):
        run.weights_path("teacher", 7)


def test_summary_rows_show_mean_and_std_over_seeds(run_dir: Path) -> None:
    run = Run.open(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())["models"]
    rows = summary_rows([run])
    assert [row[2] for row in rows] == ROLES
    accuracies = [100 * value for value in summary["student distilled"]["accuracy"]]
    expected = f"{statistics.fmean(accuracies):.2f} ± {statistics.stdev(accuracies):.2f}"
    assert rows[2][3] == expected
    assert rows[0][5] == f"{summary['teacher']['parameters']:,}"
