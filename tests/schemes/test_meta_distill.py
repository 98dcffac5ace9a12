"""MetaDistill: the pilot update and the teacher's meta-gradient against hand computations, and its errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import mentor
from mentor.batch import Batch
from mentor.errors import MentorError
from mentor.schemes import SCHEMES
from mentor.schemes.meta_distill import MetaDistill
from mentor.teachers.meta import pilot_logits, pilot_parameters
from tests.schemes.conftest import small_cnn, tiny_data

LOG3 = math.log(3.0)


def linear(weights: list[float]) -> nn.Linear:
    """z = W x for a scalar input x: logits (B, 2) from inputs (B, 1)."""
    model = nn.Linear(1, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor(weights).view(2, 1))
    return model


def hand_scheme(teacher_ce_weight: float = 0.0, meta_start: float = 0.0) -> MetaDistill:
    """Teacher W_t = [ln 3, 0], student W_s = [0, 0]; τ = 1, pure KD, λ = μ = 1, plain SGD."""
    scheme = MetaDistill(linear([LOG3, 0.0]), linear([0.0, 0.0]), temperature=1.0, kd_weight=1.0, ce_weight=0.0,
                         pilot_lr=1.0, teacher_lr=1.0, teacher_momentum=0.0, teacher_weight_decay=0.0,
                         teacher_ce_weight=teacher_ce_weight, quiz_fraction=0.5, meta_start=meta_start, seed=0)
    scheme._quiz = torch.tensor([False, True])  # sample 0 trains, sample 1 is the quiz
    return scheme


# x = q = 1, training label 1, quiz label 0.
BATCH = Batch(torch.ones(2, 1), torch.tensor([1, 0]), torch.arange(2), 2)


def test_pilot_update_and_teacher_step_match_a_hand_computed_second_order_gradient() -> None:
    # p_T = softmax(ln 3, 0) = (3/4, 1/4), p_S = (1/2, 1/2); ∇_Ws KL = (p_S − p_T) x, so W_s' = (1/4, −1/4).
    # Quiz: CE = −log σ(1/2) = 0.474077; ∂/∂W_s' = (σ(1/2) − 1, 1 − σ(1/2)) = (−a, a), a = 0.377541.
    # ∂W_s'/∂p_T = λ x, ∂p_T/∂z_T = diag(p_T) − p_T p_Tᵀ = 3/16 [[1, −1], [−1, 1]]
    # => ∇_Wt = 3/16 · (−2a, 2a) = (−0.141578, 0.141578); one SGD step with μ = 1 subtracts it.
    scheme = hand_scheme()
    output = scheme.loss(BATCH, 0.0, 1)
    assert float(output.parts["quiz"]) == pytest.approx(0.474077, abs=1e-6)
    teacher = scheme.teacher.model.weight.detach().flatten()
    assert teacher.tolist() == pytest.approx([LOG3 + 0.141578, -0.141578], abs=1e-6)
    assert scheme.teacher.model.weight.grad.flatten().tolist() == pytest.approx([-0.141578, 0.141578], abs=1e-6)
    # the real student is untouched by the pilot and has no gradient until the loop's backward
    assert scheme.student.weight.detach().flatten().tolist() == [0.0, 0.0] and scheme.student.weight.grad is None
    # step 4: KD from the UPDATED teacher: p_T' = σ(1.381768) = 0.799275; ∇_Ws = (1/2 − 0.799275, 0.299275)
    assert float(output.total.detach()) == pytest.approx(0.191741, abs=1e-6)
    output.total.backward()
    assert scheme.student.weight.grad.flatten().tolist() == pytest.approx([-0.299275, 0.299275], abs=1e-6)
    assert scheme.teacher.model.weight.grad.flatten().tolist() == pytest.approx([-0.141578, 0.141578], abs=1e-6)


def test_the_teacher_adds_its_own_weighted_cross_entropy_when_asked() -> None:
    # teacher CE on the training sample (label 1): ∇_Wt = (p_T − e_1) x = (3/4, −3/4); β = 0.5 adds (0.375, −0.375)
    scheme = hand_scheme(teacher_ce_weight=0.5)
    scheme.loss(BATCH, 0.0, 1)
    assert scheme.teacher.model.weight.grad.flatten().tolist() == pytest.approx([0.233422, -0.233422], abs=1e-6)


def test_the_pilot_leaves_the_student_and_its_batchnorm_statistics_alone() -> None:
    torch.manual_seed(0)
    student = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)).train()
    before = {k: v.clone() for k, v in student.state_dict().items()}
    inputs = torch.randn(6, 3)
    pilot = pilot_parameters(student, inputs, lambda logits: logits.pow(2).mean(), 0.1)
    pilot_logits(student, pilot, inputs).sum().backward()
    for key, value in student.state_dict().items():
        assert torch.equal(before[key], value), key
    assert not torch.equal(pilot["0.weight"], student[0].weight)


def test_the_teacher_is_held_fixed_until_meta_start() -> None:
    scheme = hand_scheme(meta_start=0.5)
    before = scheme.teacher.model.weight.detach().clone()
    early = scheme.loss(BATCH, 0.9, 2)  # epoch 0.9 of 2: before 0.5 x 2 = 1
    assert "quiz" not in early.parts and torch.equal(scheme.teacher.model.weight.detach(), before)
    late = scheme.loss(BATCH, 1.0, 2)
    assert float(late.parts["quiz"]) == pytest.approx(0.474077, abs=1e-6)  # the hand-worked first meta step
    assert not torch.equal(scheme.teacher.model.weight.detach(), before)


def test_the_quiz_set_is_a_fixed_share_of_the_training_split() -> None:
    scheme = SCHEMES.create("meta-distill", [small_cnn(1), small_cnn(2)], quiz_fraction=0.25, teacher_epochs=0)
    meta = next(iter(scheme.phases())).scheme
    first = meta.quiz_mask(Batch(torch.zeros(40, 1), torch.zeros(40), torch.arange(40), 40))
    again = meta.quiz_mask(Batch(torch.zeros(40, 1), torch.zeros(40), torch.arange(40), 40))
    assert int(first.sum()) == 10 and torch.equal(first, again)


@pytest.mark.parametrize("fraction", [0.0, 1.0, 1.5, -0.1])
def test_quiz_fraction_outside_zero_one_names_the_parameter(fraction: float) -> None:
    with pytest.raises(MentorError, match="quiz_fraction"):
        SCHEMES.create("meta-distill", [small_cnn(1), small_cnn(2)], quiz_fraction=fraction)


def test_regression_targets_and_mismatched_outputs_fail_in_one_line_before_training() -> None:
    data = tiny_data()
    batch = Batch(data.inputs[:8], data.targets[:8].float(), torch.arange(8), 32)
    scheme = SCHEMES.create("meta-distill", [small_cnn(1), small_cnn(2)])
    with pytest.raises(MentorError, match="floating-point targets"):
        next(iter(scheme.phases())).scheme.setup(batch)
    wide = nn.Sequential(small_cnn(3), nn.Linear(5, 7))
    scheme = SCHEMES.create("meta-distill", [wide, small_cnn(2)], teacher_epochs=0)
    with pytest.raises(MentorError, match=r"teacher \(peers.0\) outputs \(7,\), the student \(peers.1\) \(5,\)"):
        next(iter(scheme.phases())).scheme.setup(Batch(data.inputs[:8], data.targets[:8], torch.arange(8), 32))


def test_checkpoints_keep_the_teacher_and_its_optimizer_momentum(tmp_path) -> None:  # noqa: ANN001
    from mentor.engine import FitSettings, checkpoint, fit
    from mentor.engine.loop import load_trained

    def meta() -> MetaDistill:
        built = SCHEMES.create("meta-distill", [small_cnn(1), small_cnn(2)], teacher_epochs=0, quiz_fraction=0.25)
        return next(iter(built.phases())).scheme

    trained = meta()
    fit(trained, tiny_data(), None, FitSettings(epochs=1, batch_size=8, progress=False), checkpoints=tmp_path)
    saved = checkpoint.load(tmp_path / "last.pt")["models"]
    restored = meta()
    load_trained(restored, saved)
    momentum = [state["momentum_buffer"] for state in restored.teacher.optimizer.state_dict()["state"].values()]
    expected = [state["momentum_buffer"] for state in trained.teacher.optimizer.state_dict()["state"].values()]
    assert len(momentum) == len(expected) > 0
    assert all(torch.equal(a, b) for a, b in zip(momentum, expected, strict=True))
    for name, value in trained.teacher.model.state_dict().items():
        assert torch.equal(value, restored.teacher.model.state_dict()[name]), name


def test_python_api_trains_teacher_then_student_and_names_both() -> None:
    data = mentor.data.load("digits", validation=0.15, limit=200)
    teacher = mentor.models.create("mlp-small", num_classes=10, input_shape=(1, 8, 8))
    student = mentor.models.create("mlp-tiny", num_classes=10, input_shape=(1, 8, 8))
    params = {"teacher_epochs": 1, "meta_start": 0.0}
    result = mentor.collaborate("meta-distill", [teacher, student], data, params, epochs=2, progress=False)
    assert set(result.accuracies()) == {"student", "teacher"}
    history = result.history("meta-distill")
    assert [r["stage"] for r in history] == ["teacher", "meta-distill", "meta-distill"]
    assert all(math.isfinite(r["train/quiz"]) for r in history[1:])


def test_builtin_recipe_runs(tmp_path) -> None:  # noqa: ANN001
    from mentor.cli import main

    args = ["--set", "data.limit=200", "--set", "train.epochs=1", "--set", "scheme.params.teacher_epochs=1",
            "--set", "compare.independent=false", "--quiet"]
    assert main(["run", "meta-distill", "--out", str(tmp_path / "run"), *args]) == 0
    assert (tmp_path / "run" / "summary.json").is_file()
