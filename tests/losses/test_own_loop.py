"""Mentor's losses in a loop of one's own: bind before the optimizer, and a clear error when it is forgotten."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import mentor
from mentor.errors import MentorError


def _pair() -> tuple[nn.Module, mentor.FrozenTeacher, mentor.Objective]:
    torch.manual_seed(0)
    student = mentor.models.create("cnn-tiny", 10, (1, 8, 8))
    teacher = mentor.FrozenTeacher(mentor.models.create("cnn-small", 10, (1, 8, 8)))
    objective = mentor.Objective(mentor.terms.CE(), mentor.terms.KL(temperature=2.0),
                                 mentor.terms.Distance(student="stage2", teacher="stage2", adapter="conv1x1"))
    return student, teacher, objective


def _context(student: nn.Module, teacher: mentor.FrozenTeacher, objective: mentor.Objective,
             inputs: torch.Tensor) -> mentor.Context:
    with mentor.Taps(student, objective.student_taps) as features:
        logits = student(inputs)
    targets = torch.arange(len(inputs)) % 10
    return mentor.Context(mentor.Batch(inputs, targets), mentor.Outputs(logits, dict(features)),
                          teacher.outputs(inputs, objective.teacher_taps))


def test_a_forgotten_bind_is_named_not_a_shape_mismatch() -> None:
    student, teacher, objective = _pair()
    with pytest.raises(MentorError) as error:
        objective(_context(student, teacher, objective, torch.randn(4, 1, 8, 8)))
    message = str(error.value)
    assert "term 'distance' failed" in message and "the objective was never bound" in message
    assert "call objective.bind(student_outputs, teacher_outputs)" in message and "\n" not in message


def test_bound_once_the_adapter_trains_with_the_student() -> None:
    student, teacher, objective = _pair()
    inputs = torch.randn(8, 1, 8, 8)
    sample = _context(student, teacher, objective, inputs)
    objective.bind(sample.student, sample.teacher)
    optimizer = torch.optim.SGD([*student.parameters(), *objective.parameters()], lr=0.1)
    adapter = objective.terms["distance"].adapter.conv.weight
    before = adapter.detach().clone()
    loss = objective(_context(student, teacher, objective, inputs))
    assert set(loss.parts) == {"ce", "kl", "distance"}
    assert loss.total.item() == pytest.approx(sum(value.item() for value in loss.parts.values()), rel=1e-6)
    optimizer.zero_grad()
    loss.total.backward()
    optimizer.step()
    assert not torch.equal(adapter, before)  # the adapter bind created is stepped by the optimizer built after it
    assert all(p.grad is None for p in teacher.parameters())
