"""Teacher outlier rejection and the two-head student: values and masks against hand computations, wiring."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import mentor
from mentor.batch import Batch, Outputs
from mentor.errors import MentorError
from mentor.knowledge.outlier_rejection import rejected_distillation, teacher_inliers
from mentor.losses.terms import Context
from mentor.models import TwoHeadRegressor
from mentor.schemes import Offline

# teacher errors to y = 1: 0, 1, 2, 9 -> squared 0, 1, 4, 81 (mean 21.5)
TEACHER = torch.tensor([[1.0], [2.0], [3.0], [10.0]])
TARGETS = torch.ones(4, 1)


@pytest.mark.parametrize(("threshold", "absolute", "expected"), [
    (2.0, None, [1, 1, 1, 1]),   # δ² = 4 · 21.5 = 86 ≥ 81
    (1.0, None, [1, 1, 1, 0]),   # δ² = 21.5 < 81
    (None, None, [1, 1, 1, 1]),  # plain regression distillation
    (1.0, 1.5, [1, 1, 0, 0]),    # fixed δ = 1.5: δ² = 2.25
])
def test_the_inlier_mask_matches_the_rule(threshold: float | None, absolute: float | None, expected: list) -> None:
    assert teacher_inliers(TEACHER, TARGETS, threshold, absolute).tolist() == expected


def test_rejected_distillation_and_the_objective_match_hand_values() -> None:
    student = torch.zeros(4, 1, requires_grad=True)
    # ‖h − t‖² = 1, 4, 9, 100; the outlier (100) is dropped, the mean keeps B = 4: (1 + 4 + 9) / 4
    value = rejected_distillation(student, TEACHER, torch.tensor([1.0, 1.0, 1.0, 0.0]))
    assert float(value.detach()) == pytest.approx(3.5)
    objective = mentor.knowledge.create("outlier-rejection", threshold=1.0, gt_weight=2.0, kd_weight=1.0)
    context = Context(Batch(torch.zeros(4, 3), TARGETS), Outputs(student), Outputs(TEACHER))
    output = objective(context)
    # ground truth: ‖0 − 1‖² = 1 per sample, weight 2 -> 2; total 2 + 3.5
    assert float(output.parts["mse"]) == pytest.approx(2.0) and float(output.parts["tor"]) == pytest.approx(3.5)
    output.total.backward()
    # d/ds_i: 2 · 2 (s_i − 1) / 4 + 2 m_i (s_i − t_i) / 4 at s = 0: −1 − 0.5 t_i m_i
    assert student.grad.flatten().tolist() == pytest.approx([-1.5, -2.0, -2.5, -1.0])
    assert not TEACHER.requires_grad


def two_head() -> TwoHeadRegressor:
    torch.manual_seed(0)
    return TwoHeadRegressor(nn.Sequential(nn.Linear(3, 4), nn.ReLU()), 4, 1)


@pytest.mark.parametrize(("gt_weight", "kd_weight", "trained", "untouched"), [
    (1.0, 0.0, "ground_truth", "teacher_head"),
    (0.0, 1.0, "teacher_head", "ground_truth"),
])
def test_each_head_learns_from_its_own_target_and_the_body_from_both(gt_weight: float, kd_weight: float,
                                                                       trained: str, untouched: str) -> None:
    student, teacher = two_head(), nn.Linear(3, 1)
    objective = mentor.knowledge.create("outlier-rejection", teacher_head="teacher_head", threshold=None,
                                        gt_weight=gt_weight, kd_weight=kd_weight)
    batch = Batch(torch.randn(6, 3), torch.randn(6, 1), torch.arange(6), 6)
    scheme = Offline(student, objective, teacher)
    scheme.setup(batch)
    scheme.loss(batch, 0.0, 1).total.backward()
    head = getattr(student, trained).weight.grad
    assert head is not None and head.abs().sum() > 0
    assert getattr(student, untouched).weight.grad is None or getattr(student, untouched).weight.grad.abs().sum() == 0
    assert student.body[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())


def test_the_two_head_student_predicts_with_its_ground_truth_head() -> None:
    student = two_head()
    inputs = torch.randn(5, 3)
    assert torch.equal(student(inputs), student.ground_truth(student.body(inputs)))
    model = mentor.models.create("mlp-two-head", num_classes=2, input_shape=(10,))
    assert model(torch.randn(3, 10)).shape == (3, 2) and model.teacher_head.out_features == 2


def test_class_labels_and_mismatched_outputs_give_one_line_errors() -> None:
    objective = mentor.knowledge.create("outlier-rejection")
    labels = Context(Batch(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long)), Outputs(torch.zeros(4, 1)),
                     Outputs(torch.zeros(4, 1)))
    with pytest.raises(MentorError, match="class labels .* use a regression dataset"):
        objective(labels)
    wide = Context(Batch(torch.zeros(4, 3), TARGETS), Outputs(torch.zeros(4, 1)), Outputs(torch.zeros(4, 3)))
    message = r"teacher's output\): the model outputs \(3,\) per sample but the targets are \(1,\)"
    with pytest.raises(MentorError, match=message):
        objective(wide)
    with pytest.raises(MentorError, match="threshold"):
        mentor.knowledge.create("outlier-rejection", threshold=-1.0)


def test_a_teacher_with_another_output_size_or_classification_data_fail_before_training() -> None:
    data = mentor.data.load("diabetes", validation=0.15, limit=60)
    student = mentor.models.create("mlp-tiny", num_classes=1, input_shape=(10,))
    wide = mentor.models.create("mlp-tiny", num_classes=3, input_shape=(10,))
    with pytest.raises(MentorError, match="the teacher outputs shape \\(3,\\) but diabetes has 1 regression targets"):
        mentor.distill(wide, student, data, mentor.knowledge.create("outlier-rejection"), epochs=1)
    digits = mentor.data.load("digits", validation=0.1, limit=60)
    teacher = mentor.models.create("mlp-tiny", num_classes=10, input_shape=(1, 8, 8))
    student = mentor.models.create("mlp-tiny", num_classes=10, input_shape=(1, 8, 8))
    with pytest.raises(MentorError, match="class labels"):
        mentor.distill(teacher, student, digits, mentor.knowledge.create("outlier-rejection"), epochs=1)


def test_python_api_distills_a_regression_teacher_and_reports_errors() -> None:
    data = mentor.data.load("diabetes", validation=0.15, limit=120)
    teacher = mentor.models.create("mlp-small", num_classes=1, input_shape=(10,))
    mentor.train(teacher, data, epochs=3, lr=0.01, batch_size=32, progress=False)
    student = mentor.models.create("mlp-two-head", num_classes=1, input_shape=(10,))
    plan = mentor.knowledge.create("outlier-rejection", teacher_head="teacher_head")
    result = mentor.distill(teacher, student, data, plan, baseline=True, epochs=2, lr=0.01, batch_size=32,
                            progress=False)
    assert "test MSE" in result.table() and "test MAE" in result.table()
    assert {row.role for row in result.rows} == {"teacher", "student alone", "student distilled"}
    assert all(row.errors["mse"] > 0 and row.errors["mae"] > 0 for row in result.rows)
    assert "val/student/mse" in result.history("student distilled")[-1]


def test_builtin_recipe_runs_and_its_run_directory_reports_errors(tmp_path, capsys) -> None:  # noqa: ANN001
    from mentor.cli import main

    args = ["--set", "seeds=[0]", "--set", "data.limit=120", "--set", "train.epochs=2",
            "--set", "teacher.train.epochs=2", "--quiet"]
    run = str(tmp_path / "run")
    assert main(["run", "outlier-rejection", "--out", run, *args]) == 0
    capsys.readouterr()
    assert main(["eval", run]) == 0 and "test MSE" in capsys.readouterr().out
    assert main(["compare", run]) == 0 and "MSE " in capsys.readouterr().out
