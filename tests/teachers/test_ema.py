"""The EMA (mean) teacher: hand-computed averages with the warm-up α_t, BatchNorm buffers, frozen-ness, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mentor.batch import Batch
from mentor.errors import MentorError
from mentor.teachers import EMATeacher
from mentor.teachers.ema import warmup_decay


def tiny() -> nn.Sequential:
    """Linear(2 -> 1, no bias) then BatchNorm1d(1): weight (1, 2), running mean/var (1,), a step counter."""
    return nn.Sequential(nn.Linear(2, 1, bias=False), nn.BatchNorm1d(1))


def set_state(model: nn.Sequential, weight: list[float], running_mean: float, batches: int) -> None:
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([weight]))
        model[1].running_mean.fill_(running_mean)
        model[1].num_batches_tracked.fill_(batches)


def test_the_average_follows_the_warmup_rule_by_hand() -> None:
    student = tiny()
    set_state(student, [1.0, 2.0], 1.0, 1)
    teacher = EMATeacher(student, decay=0.6)
    # t = 0: α = min(0, 0.6) = 0, a copy
    teacher.update(student)
    assert torch.allclose(teacher.model[0].weight, torch.tensor([[1.0, 2.0]]))
    # t = 1: α = min(1/2, 0.6) = 0.5: 0.5·[1, 2] + 0.5·[3, 0] = [2, 1]; running mean 0.5·1 + 0.5·3 = 2
    set_state(student, [3.0, 0.0], 3.0, 2)
    teacher.update(student)
    assert torch.allclose(teacher.model[0].weight, torch.tensor([[2.0, 1.0]]))
    assert torch.allclose(teacher.model[1].running_mean, torch.tensor([2.0]))
    # t = 2: α = min(2/3, 0.6) = 0.6: 0.6·[2, 1] + 0.4·[0, 4] = [1.2, 2.2]; running mean 0.6·2 + 0.4·0 = 1.2
    set_state(student, [0.0, 4.0], 0.0, 7)
    teacher.update(student)
    assert torch.allclose(teacher.model[0].weight, torch.tensor([[1.2, 2.2]]))
    assert torch.allclose(teacher.model[1].running_mean, torch.tensor([1.2]))
    assert int(teacher.model[1].num_batches_tracked) == 7  # integer buffers are copied, not averaged
    assert int(teacher.updates) == 3
    # the student itself is left alone
    assert torch.equal(student[0].weight, torch.tensor([[0.0, 4.0]]))


def test_warmup_decay_values() -> None:
    assert warmup_decay(0, 0.999) == 0.0
    assert warmup_decay(1, 0.999) == 0.5
    assert warmup_decay(3, 0.999) == 0.75
    assert warmup_decay(3, 0.6) == 0.6


def test_an_explicit_step_sets_the_rate() -> None:
    student = tiny()
    set_state(student, [1.0, 1.0], 0.0, 0)
    teacher = EMATeacher(student, decay=0.5)
    set_state(student, [3.0, 5.0], 0.0, 0)
    teacher.update(student, step=9)  # α = min(0.9, 0.5) = 0.5: 0.5·[1, 1] + 0.5·[3, 5] = [2, 3]
    assert torch.allclose(teacher.model[0].weight, torch.tensor([[2.0, 3.0]]))


def test_the_teacher_is_frozen_and_never_learns_by_gradient() -> None:
    student = tiny()
    teacher = EMATeacher(student, decay=0.9)
    assert all(not p.requires_grad for p in teacher.parameters())
    assert all(p.requires_grad for p in student.parameters())  # the copy is frozen, not the model
    teacher.train()
    assert teacher.training is False and teacher.model[1].training is False
    out = teacher(torch.randn(4, 2))
    assert not out.requires_grad


def test_span_in_epochs_sets_the_decay() -> None:
    teacher = EMATeacher(tiny(), decay=0.9)
    batch = Batch(torch.zeros(10, 2), torch.zeros(10), None, 100)  # 10 steps per epoch
    teacher.span_epochs(2.0, batch)
    assert teacher.decay == pytest.approx(1 - 1 / 20)
    teacher.span_epochs(2.0, Batch(torch.zeros(10, 2), torch.zeros(10)))  # unknown dataset size: unchanged
    assert teacher.decay == pytest.approx(0.95)


@pytest.mark.parametrize("decay", [1.0, -0.1, 1.5, True, "0.9"])
def test_a_decay_outside_the_unit_interval_is_refused(decay: object) -> None:
    with pytest.raises(MentorError, match=r"'decay' parameter .* \[0, 1\)"):
        EMATeacher(tiny(), decay=decay)  # type: ignore[arg-type]


def test_updating_from_another_model_is_refused() -> None:
    teacher = EMATeacher(tiny(), decay=0.9)
    with pytest.raises(MentorError, match="the model the teacher averages"):
        teacher.update(nn.Linear(2, 1))
