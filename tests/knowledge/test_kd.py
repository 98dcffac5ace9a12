"""KD (Hinton et al. 2015) and FitNets (Romero et al. 2015) against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from mentor.batch import Batch, Outputs
from mentor.errors import MentorError
from mentor.knowledge import Stage, create
from mentor.losses import Context, Objective


def test_kd_is_mixed_hard_and_soft_loss() -> None:
    student = torch.tensor([[0.0, 1.0]])
    teacher = torch.tensor([[1.0, 0.0]])
    objective = create("kd", temperature=2.0, alpha=0.75)
    out = objective(Context(Batch(torch.zeros(1, 1), torch.tensor([1])), Outputs(student), Outputs(teacher)))
    # hand values: CE = -log softmax([0,1])[1]; soft: p_T = softmax([.5, 0]), p_S = softmax([0, .5])
    ce = -math.log(math.e / (1 + math.e))
    a, b = math.exp(0.5) / (math.exp(0.5) + 1), 1 / (math.exp(0.5) + 1)
    kl = a * math.log(a / b) + b * math.log(b / a)
    assert out.parts["ce"].item() == pytest.approx(0.25 * ce, rel=1e-6)
    assert out.parts["kl"].item() == pytest.approx(0.75 * 4 * kl, rel=1e-5)


def test_kd_rejects_bad_parameters_by_name() -> None:
    with pytest.raises(MentorError, match="'temperature' parameter of kd"):
        create("kd", temperature=0)
    with pytest.raises(MentorError, match="'alpha' parameter of kd"):
        create("kd", alpha=1.5)
    with pytest.raises(MentorError, match="unknown parameter 'temp' of knowledge method 'kd'; nearest: temperature"):
        create("kd", temp=2)
    with pytest.raises(MentorError, match="unknown knowledge method 'kdd'; nearest: kd"):
        create("kdd")


def test_fitnet_is_hint_training_then_kd() -> None:
    stages = create("fitnet", hint="t", guided="s", hint_epochs=3, adapter="identity")
    assert [s.name for s in stages] == ["hint", "distill"] and stages[0].epochs == 3 and stages[1].epochs is None
    hint: Objective = stages[0].objective
    student, teacher = Outputs(torch.zeros(2, 2), {"s": torch.tensor([[1.0, 2.0], [0.0, 0.0]])}), Outputs(
        torch.zeros(2, 2), {"t": torch.tensor([[0.0, 0.0], [3.0, 4.0]])}
    )
    hint.bind(student, teacher)
    out = hint(Context(Batch(torch.zeros(2, 1), torch.zeros(2, dtype=torch.long)), student, teacher))
    # β = 100 times the mean of the squared differences over 2 samples × 2 entries: (1 + 4 + 9 + 16) / 4
    assert out.total.item() == pytest.approx(100 * 30 / 4)
    assert set(stages[1].objective.terms) == {"ce", "kl"}


def test_fitnet_without_hint_stage_keeps_hint_term() -> None:
    stages = create("fitnet", hint="t", guided="s", hint_epochs=0, hint_weight=2.0)
    assert len(stages) == 1 and isinstance(stages[0], Stage)
    assert set(stages[0].objective.terms) == {"ce", "kl", "hint"}
