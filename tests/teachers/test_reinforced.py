"""Reinforced teacher selection (Yuan et al. 2021) against hand-computed values; the policy alone learns from
its loss."""

from __future__ import annotations

import math

import pytest
import torch

from mentor.batch import Batch, Outputs
from mentor.knowledge import create
from mentor.losses import Context
from mentor.teachers.weighting.reinforced import reinforce_loss, selection_states, selection_weights, student_reward

LN3 = math.log(3.0)
TEACHERS = torch.tensor([[[LN3, 0.0], [0.0, 0.0]]])  # τ = 1: p_0 = [3/4, 1/4], p_1 = [1/2, 1/2]


def test_state_holds_soft_output_teacher_loss_and_teacher_code() -> None:
    states = selection_states(TEACHERS, torch.tensor([0]), 1.0)
    assert states.shape == (1, 2, 2 + 1 + 2)
    # CE of teacher 0 on label 0: -ln 3/4 = 0.28768207; of teacher 1: ln 2 = 0.69314718
    assert states[0, 0].tolist() == pytest.approx([0.75, 0.25, 0.28768207, 1.0, 0.0])
    assert states[0, 1].tolist() == pytest.approx([0.5, 0.5, 0.69314718, 0.0, 1.0])


def test_weights_share_one_among_the_chosen_teachers() -> None:
    actions = torch.tensor([[1.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
    assert selection_weights(actions).tolist() == [[0.5, 0.5], [1.0, 0.0], [0.0, 0.0]]


def test_reinforce_loss_and_reward() -> None:
    # π = [0.8, 0.4], a = [1, 0]: log-likelihood ln 0.8 + ln 0.6 = -0.73396917; advantage 2 -> 1.46793835
    loss = reinforce_loss(torch.tensor([[0.8, 0.4]]), torch.tensor([[1.0, 0.0]]), 2.0)
    assert float(loss) == pytest.approx(1.46793835)
    # student [1/2, 1/2], label 0: CE ln 2; teachers' average [5/8, 3/8]: KL 0.03158394 (τ = 1)
    reward = student_reward(torch.zeros(1, 2), TEACHERS, torch.tensor([0]), 1.0)
    assert float(reward) == pytest.approx(-(0.69314718 + 0.03158394))


def test_the_policy_learns_from_the_next_steps_reward_and_never_moves_the_student() -> None:
    torch.manual_seed(0)
    objective = create("multi-teacher", teachers=2, weighting="reinforced", temperature=1.0)
    teacher = Outputs(torch.zeros(4, 2), {"members.0": TEACHERS[0, :1].expand(4, 2),
                                          "members.1": TEACHERS[0, 1:].expand(4, 2)})
    objective.bind(Outputs(torch.zeros(4, 2)), teacher)
    batch = Batch(torch.zeros(4, 1), torch.tensor([0, 1, 0, 1]))
    first = objective(Context(batch, Outputs(torch.zeros(4, 2, requires_grad=True)), teacher))
    assert float(first.parts["policy"]) == 0.0  # no earlier action to reward yet
    student = torch.tensor([[1.0, 0.0]] * 4, requires_grad=True)
    second = objective(Context(batch, Outputs(student), teacher))
    policy = objective.terms["kl"].weighting.policy
    gradients = torch.autograd.grad(second.terms["policy"], [student, *policy.parameters()], allow_unused=True)
    assert gradients[0] is None  # the policy's loss has no gradient on the student
    # the baseline equals the first reward: the advantage is the second reward minus the first
    assert any(g is not None and g.abs().sum() > 0 for g in gradients[1:])
