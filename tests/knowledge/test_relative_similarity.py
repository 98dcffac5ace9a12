"""Relative similarity (You et al. 2017) and the multi-teacher method against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from mentor.batch import Batch, Outputs
from mentor.errors import MentorError
from mentor.knowledge import create
from mentor.knowledge.relative_similarity import relative_similarity_loss
from mentor.losses import Context

ONE = torch.tensor([0])


def test_triplet_order_comes_from_the_teachers_and_binds_the_student() -> None:
    # the teacher puts sample 1 next to the anchor 0 (distance 0) and sample 2 far (2): 1 is the positive
    teacher = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])  # rows are L2-normalised first
    student = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # the student has it the other way round
    loss = relative_similarity_loss(student, [teacher], ONE, torch.tensor([1]), torch.tensor([2]), margin=0.1)
    assert float(loss) == pytest.approx(2.0 - 0.0 + 0.1)  # ‖s0 − s1‖² − ‖s0 − s2‖² + margin
    # the same triplet listed in the other order gives the same loss: the teachers decide the order
    swapped = relative_similarity_loss(student, [teacher], ONE, torch.tensor([2]), torch.tensor([1]), margin=0.1)
    assert float(swapped) == pytest.approx(2.1)


def test_teachers_vote_with_their_averaged_distances() -> None:
    first = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # d(0,1) = 0, d(0,2) = 2
    second = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # d(0,1) = 2, d(0,2) = (1 − 1/√2)² + 1/2
    d02 = (1 - 1 / math.sqrt(2)) ** 2 + 0.5
    assert (0 + 2) / 2 < (2 + d02) / 2  # averaged: sample 1 is still the positive
    student = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # already ordered: d_S(0,1) = 0, d_S(0,2) = 2
    loss = relative_similarity_loss(student, [first, second], ONE, torch.tensor([1]), torch.tensor([2]), margin=0.5)
    assert float(loss) == 0.0  # max(0, 0 − 2 + 0.5)


def test_relative_similarity_objective_adds_the_averaged_soft_targets() -> None:
    objective = create("relative-similarity", teachers=2, temperature=1.0, alpha=0.5, beta=2.0)
    assert list(objective.terms) == ["ce", "kl", "relative"]
    assert objective.teacher_taps == ("members.0", "members.1")
    with pytest.raises(MentorError, match="'teacher_features' parameter of relative-similarity must list 2"):
        create("relative-similarity", teachers=2, teacher_features=["a"])


def test_multi_teacher_with_one_teacher_is_kd() -> None:
    student, teacher_logits = torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 0.0]])
    batch = Batch(torch.zeros(1, 1), torch.tensor([1]))
    multi = create("multi-teacher", teachers=1, temperature=2.0, alpha=0.75)
    kd = create("kd", temperature=2.0, alpha=0.75)
    teacher = Outputs(teacher_logits, {"members.0": teacher_logits})
    ours = multi(Context(batch, Outputs(student), teacher))
    reference = kd(Context(batch, Outputs(student), Outputs(teacher_logits)))
    assert float(ours.total) == pytest.approx(float(reference.total), rel=1e-6)
