"""SFTN: the branch loss against hand-computed numbers, where gradients go, cutting models, recipes."""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn

import mentor
from mentor.batch import Batch
from mentor.cli import main
from mentor.errors import MentorError
from mentor.recipes import validate
from mentor.teachers.blocks import split
from mentor.teachers.student_friendly import StudentFriendlyTraining, student_friendly_parts


def linear(weight: list[list[float]], bias: list[float] | None = None) -> nn.Linear:
    layer = nn.Linear(len(weight[0]), len(weight), bias=bias is not None)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        if bias is not None:
            layer.bias.copy_(torch.tensor(bias))
    return layer


def two_block_pair() -> tuple[nn.Sequential, nn.Sequential]:
    """Teacher a: identity, b: z = (x1 − x2 + 2, 0); student c: R² -> R³, d: the first two coordinates."""
    teacher = nn.Sequential(OrderedDict(a=linear([[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0]),
                                        b=linear([[1.0, -1.0], [0.0, 0.0]], [2.0, 0.0])))
    student = nn.Sequential(OrderedDict(c=linear([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
                                        d=linear([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])))
    return teacher, student


def test_parts_match_hand_computed_values() -> None:
    # teacher (0, 0): CE = ln 2; branch (ln 3, 0): softmax (3/4, 1/4), CE = −ln 3/4;
    # KL((1/2, 1/2) ‖ (3/4, 1/4)) = ½ ln(2/3) + ½ ln 2 = 0.1438410362; τ = 2: branch softmax (0.6339746, 0.3660254),
    # KL = ½ ln(0.5/0.6339746) + ½ ln(0.5/0.3660254) = 0.0372523, times τ² = 4
    teacher, branch, targets = torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0986123, 0.0]]), torch.tensor([0])
    parts = student_friendly_parts(teacher, [branch], targets, 1.0, 1.0, 3.0, 1.0)
    assert sorted(parts) == ["ce", "ce/branch1", "kl/branch1"]
    assert parts["ce"].item() == pytest.approx(0.6931472, abs=1e-6)
    assert parts["ce/branch1"].item() == pytest.approx(0.2876821, abs=1e-6)
    assert parts["kl/branch1"].item() == pytest.approx(3 * 0.1438410, abs=1e-6)
    weighted = student_friendly_parts(teacher, [branch, branch], targets, 0.5, 2.0, 1.0, 2.0)
    assert weighted["ce"].item() == pytest.approx(0.5 * 0.6931472, abs=1e-6)
    assert weighted["ce/branch2"].item() == pytest.approx(2 * 0.2876821, abs=1e-6)
    assert weighted["kl/branch2"].item() == pytest.approx(4 * 0.0372523, abs=1e-6)


def test_two_block_models_loss_matches_hand_computation() -> None:
    teacher, student = two_block_pair()
    scheme = StudentFriendlyTraining(teacher, student, ["a"], ["c"])
    batch = Batch(torch.tensor([[1.0, 2.0]]), torch.tensor([0]))
    scheme.setup(batch)
    transform = scheme.branches.transforms[0].layers
    with torch.no_grad():  # T_1 = ReLU(BN(W x)) with W picking (x1, x2, −x1); BN in eval mode is x / sqrt(1 + 1e-5)
        transform[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]))
    scheme.eval()
    output = scheme.loss(batch, 0.0, 1)
    # F1 = (1, 2); z_T = (1, 0); T_1(F1) = (1, 2, 0); z_R = (1, 2); y = 0
    # CE_T = ln(1 + e^-1) = 0.3132617, CE_R = ln(1 + e) = 1.3132617,
    # KL(q_T ‖ q_R) = σ(1) − σ(−1) = 0.4621172 (the log-ratios are ±1); total = CE_T + CE_R + 3 KL
    assert output.parts["ce"].item() == pytest.approx(0.3132617, abs=1e-5)
    assert output.parts["ce/branch1"].item() == pytest.approx(1.3132617, abs=1e-4)
    assert output.parts["kl/branch1"].item() == pytest.approx(3 * 0.4621172, abs=1e-4)
    assert output.total.item() == pytest.approx(3.0128748, abs=1e-4)


def test_gradients_reach_teacher_transforms_and_branch_blocks_only() -> None:
    torch.manual_seed(0)
    teacher = mentor.models.create("cnn", 10, (1, 8, 8), channels=[6, 8, 12])
    student = mentor.models.create("cnn", 10, (1, 8, 8), channels=[2, 3, 4])
    scheme = StudentFriendlyTraining(teacher, student, ["stage1", "stage2"], ["stage1", "stage2"])
    batch = Batch(torch.randn(8, 1, 8, 8), torch.arange(8))
    scheme.setup(batch)
    scheme.train()
    scheme.loss(batch, 0.0, 1).total.backward()
    trained = [*teacher.parameters(), *scheme.branches.parameters()]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in trained)
    assert all(p.grad is None for p in student.parameters())  # the branches hold a copy; the student is not trained
    assert all(p.grad is None for p in scheme.student_copy[0].parameters())  # the student's first block is unused
    assert len(scheme.branches.transforms) == 2 and len(scheme.branches.student_blocks) == 2


def test_the_kl_term_alone_trains_the_teacher() -> None:
    teacher, student = two_block_pair()
    scheme = StudentFriendlyTraining(teacher, student, ["a"], ["c"], teacher_weight=0.0, branch_ce_weight=0.0)
    batch = Batch(torch.tensor([[1.0, 2.0], [0.5, -1.0], [2.0, 0.0]]), torch.tensor([0, 1, 0]))
    scheme.setup(batch)
    scheme.train()
    scheme.loss(batch, 0.0, 1).total.backward()
    assert teacher.b.weight.grad.abs().sum() > 0  # the teacher's own logits are not detached in KL


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Sequential(nn.Linear(2, 2), nn.ReLU())

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return inputs + self.inner(inputs)


@pytest.mark.parametrize(("model", "paths", "message"), [
    (nn.Sequential(OrderedDict(stage1=nn.Linear(2, 2), head=nn.Linear(2, 2))), ["stage2"],
     "'stage2' is not a module path of the teacher; nearest: stage1"),
    (nn.Sequential(OrderedDict(block=Residual(), head=nn.Linear(2, 2))), ["block.inner"],
     "cannot be cut inside 'block', a Residual"),
    (Residual(), ["inner"], "the teacher is a Residual, not a plain nn.Sequential"),
    (nn.Sequential(OrderedDict(a=nn.Linear(2, 2), b=nn.Linear(2, 2), c=nn.Linear(2, 2))), ["b", "a"],
     "in forward order (a, b)"),
    (nn.Sequential(OrderedDict(a=nn.Linear(2, 2), b=nn.Linear(2, 2))), ["b"], "'b' is the last module"),
    (nn.Sequential(OrderedDict(a=nn.Linear(2, 2), b=nn.Linear(2, 2))), ["a", "a"], "each module path may appear once"),
])
def test_models_that_cannot_be_cut_are_one_line_errors(model: nn.Module, paths: list[str], message: str) -> None:
    with pytest.raises(MentorError) as error:
        split(model, paths, "recipe key 'teacher.student_friendly.teacher_blocks'", "teacher")
    text = str(error.value)
    assert message in text and text.startswith("recipe key 'teacher.student_friendly.teacher_blocks'")
    assert "\n" not in text


def test_split_reaches_inside_sequentials_and_keeps_the_forward() -> None:
    torch.manual_seed(0)
    model = mentor.models.create("cnn-small", 10, (1, 8, 8))
    blocks = split(model, ["stage1", "stage2.relu1"], "key", "teacher")
    assert [len(block) for block in blocks] == [1, 3, 4]  # stage1 | conv1 bn1 relu1 | pool, pool, flatten, head
    inputs, out = torch.randn(3, 1, 8, 8), None
    model.eval()
    out = inputs
    for block in blocks:
        out = block(out)
    assert torch.equal(out, model(inputs))
    assert blocks[0][0] is model.stage1  # the model's own modules, not copies


def test_mismatched_blocks_are_errors_naming_the_key() -> None:
    with pytest.raises(MentorError, match=r"recipe key 'teacher.student_friendly.student_blocks': cut the student"):
        StudentFriendlyTraining(*two_block_pair(), ["a"], ["c", "d"], where="teacher.student_friendly.")
    teacher = mentor.models.create("cnn-small", 10, (1, 8, 8))
    student = mentor.models.create("mlp-tiny", 10, (1, 8, 8))
    scheme = StudentFriendlyTraining(teacher, student, ["stage1"], ["fc1"])
    with pytest.raises(MentorError, match="teacher block 1 outputs .* cut both at maps or both at vectors"):
        scheme.setup(Batch(torch.randn(4, 1, 8, 8), torch.arange(4)))


def test_recipe_refuses_a_loaded_student_friendly_teacher() -> None:
    recipe = {"teacher": {"model": "cnn-small", "checkpoint": "t.pt",
                          "student_friendly": {"teacher_blocks": ["stage1"], "student_blocks": ["stage1"]}},
              "student": {"model": "cnn-tiny"}, "knowledge": {"method": "kd"}}
    with pytest.raises(MentorError, match="remove one of teacher.checkpoint and teacher.student_friendly"):
        validate(recipe)
    recipe["teacher"].pop("checkpoint")
    recipe["teacher"]["student_friendly"]["student_blocks"] = ["stage1", "stage2"]
    with pytest.raises(MentorError, match="student_blocks must list as many paths as teacher_blocks"):
        validate(recipe)


def test_python_api_trains_the_teacher_in_place() -> None:
    data = mentor.data.load("digits", validation=0.2, seed=0, limit=120)
    torch.manual_seed(0)
    teacher = mentor.models.create("cnn-small", data.num_classes, data.input_shape)
    student = mentor.models.create("cnn-tiny", data.num_classes, data.input_shape)
    before = {key: value.clone() for key, value in student.state_dict().items()}
    result = mentor.teachers.train_student_friendly(teacher, student, data, teacher_blocks=["stage1"],
                                                    student_blocks=["stage1"], epochs=1, batch_size=32, progress=False,
                                                    latency_batch=4)
    assert result.models["teacher"] is teacher
    record = result.history("teacher")[-1]
    assert {"train/ce", "train/ce/branch1", "train/kl/branch1", "val/branch1/accuracy"} <= set(record)
    assert all(torch.equal(before[key], value) for key, value in student.state_dict().items())
    with pytest.raises(MentorError, match="The 'temperature' parameter of mentor.teachers.train_student_friendly"):
        mentor.teachers.train_student_friendly(teacher, student, data, teacher_blocks=["stage1"],
                                               student_blocks=["stage1"], temperature=0.0)
    with pytest.raises(MentorError, match="the 'teacher_blocks' parameter: 'stage9' is not a module path"):
        mentor.teachers.train_student_friendly(teacher, student, data, teacher_blocks=["stage9"],
                                               student_blocks=["stage1"], epochs=1)


def test_builtin_recipe_runs_evaluates_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "sftn"
    quick = ["--set", "seeds=[0]", "--set", "data.limit=120", "--set", "train.epochs=1", "--set",
             "teacher.train.epochs=1", "--set", "compare.student_alone=false", "--set", "latency_batch=4", "--quiet"]
    assert main(["run", "sftn", "--out", str(out), *quick]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(summary["models"]) == ["student distilled", "teacher"]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    teacher = [record for record in records if record["run"] == "teacher"]
    assert "train/kl/branch2" in teacher[0] and "val/branch2/accuracy" in teacher[0]
    assert main(["eval", str(out), "--model", "teacher"]) == 0
    assert main(["resume", str(out), "--quiet"]) == 0
    assert json.loads((out / "summary.json").read_text())["models"]["teacher"]["accuracy"] == \
        summary["models"]["teacher"]["accuracy"]
