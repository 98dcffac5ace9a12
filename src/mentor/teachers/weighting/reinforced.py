"""Reinforced teacher selection: Yuan, Shou, Pei, Lin, Gong, Fu & Jiang (2021), "Reinforced Multi-Teacher
Selection for Knowledge Distillation", AAAI, arXiv:2012.06048.

A policy network picks, for every sample and every teacher, whether that teacher teaches the sample:

    state    s_{b,m} = [ softmax(z_{b,m} / τ),  CE(y_b, softmax(z_{b,m})),  onehot(m) ]      (K + 1 + M,)
    policy   π_θ(s) = σ(θ · s + θ_0)        (the paper's logistic policy; ``hidden`` > 0 adds a ReLU layer)
    action   a_{b,m} ~ Bernoulli(π_θ(s_{b,m})),   w_{b,m} = a_{b,m} / Σ_j a_{b,j}   (0 when none is chosen)

The paper's state holds the teacher's representation of the sample, its soft output and its cross-entropy
loss; heterogeneous teachers have representations of different widths, so the soft output stands for the
representation here and a one-hot code tells the teachers apart. A sample no teacher is chosen for learns from
its label alone, as in the paper.

The reward of an action is how the student does after learning from it: the actions of step t are rewarded
with the student's loss on the batch of step t + 1, seen before that step's update,

    R_t = −( CE(y, p_S) + τ² KL(p̄^τ || p_S^τ) )   with p̄ the uniform average of the teachers,

(the paper's reward, negative cross-entropy and distillation loss of the student, measured against every
teacher so that a selection cannot raise its own reward by picking whatever the student already says),
and REINFORCE with a moving-average baseline b (momentum 0.9) reduces the variance:

    L_policy = −(R_t − b) · (1/B) Σ_b Σ_m log π_θ(a_{b,m} | s_{b,m})

The states and actions are kept detached, so the policy's loss reaches θ only, never the student.
Defaults: ``hidden`` 0 is the paper's logistic policy; ``baseline_momentum`` 0.9 averages the reward over about
ten steps (the paper does not state its baseline); ``policy_weight`` 1 steps θ at the student's learning rate
(the loss moves θ alone, so the weight is the policy's learning-rate multiplier). The policy starts at
π = 1/2 for every state (zero last layer), so at first each teacher teaches each sample half of the time.
Shapes: logits ``(B, M, K)`` -> weights ``(B, M)``.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from mentor.batch import Outputs
from mentor.losses.terms import Context, Term
from mentor.teachers.weighting.base import WEIGHTINGS, Weighting


def selection_states(logits: torch.Tensor, targets: torch.Tensor, temperature: float) -> torch.Tensor:
    """s_{b,m} ``(B, M, K + 1 + M)`` from the teachers' logits ``(B, M, K)`` and labels ``(B,)``."""
    batch, teachers, classes = logits.shape
    soft = torch.softmax(logits / temperature, dim=2)
    log_probs = torch.log_softmax(logits, dim=2)
    index = targets.view(batch, 1, 1).expand(batch, teachers, 1)
    cross_entropy = -log_probs.gather(2, index)
    code = torch.eye(teachers, dtype=logits.dtype, device=logits.device).expand(batch, teachers, teachers)
    return torch.cat([soft, cross_entropy, code], dim=2).detach()


def selection_weights(actions: torch.Tensor) -> torch.Tensor:
    """w = a / Σ_m a per sample ``(B, M)``; a row with no teacher chosen stays 0."""
    return actions / actions.sum(dim=1, keepdim=True).clamp_min(1.0)


def student_reward(student_logits: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor,
                   temperature: float) -> torch.Tensor:
    """R = −(CE(y, p_S) + τ² KL(p̄^τ || p_S^τ)), batch mean, with p̄ the teachers' uniform average."""
    student = student_logits.detach()
    average = torch.softmax(logits.detach() / temperature, dim=2).mean(dim=1)
    log_student = F.log_softmax(student / temperature, dim=1)
    kl = (torch.special.xlogy(average, average) - average * log_student).sum(dim=1).mean()
    return -(F.cross_entropy(student, targets) + temperature**2 * kl)


def reinforce_loss(probabilities: torch.Tensor, actions: torch.Tensor, advantage: float) -> torch.Tensor:
    """−advantage · (1/B) Σ_b Σ_m log π(a_{b,m}): ``probabilities`` π ``(B, M)``, ``actions`` ``(B, M)`` in {0, 1}."""
    log_likelihood = torch.where(actions > 0, probabilities, 1 - probabilities).clamp_min(1e-12).log()
    return -advantage * log_likelihood.sum(dim=1).mean()


class PolicyLoss(Term):
    """The REINFORCE loss of the selection policy (computed by the weighting, reported as its own term)."""

    needs_teacher = True

    def __init__(self, owner: Reinforced, weight: float) -> None:
        super().__init__("policy", weight)
        self.owner = [owner]  # a plain list: the weighting is a module of the multi-teacher term already

    def loss(self, context: Context) -> torch.Tensor:
        pending = self.owner[0].pending
        return pending if pending is not None else context.student.logits.new_zeros(())


class Reinforced(Weighting):
    """Bernoulli teacher selection by a policy trained with REINFORCE from the student's reward."""

    def __init__(self, teachers: int, hidden_width: int, momentum: float, policy_weight: float) -> None:
        super().__init__(teachers, "weighting 'reinforced'")
        self.hidden, self.momentum = hidden_width, momentum
        self.policy: nn.Module = nn.Identity()
        self.previous: tuple[torch.Tensor, torch.Tensor] | None = None  # (states, actions) of the last step
        self.baseline: float | None = None
        self.pending: torch.Tensor | None = None
        self.policy_term = PolicyLoss(self, policy_weight)

    def bind(self, student: Outputs, teacher: Outputs) -> None:
        width = student.logits.shape[1] + 1 + self.teachers
        layers: list[nn.Module] = [nn.Linear(width, self.hidden), nn.ReLU(), nn.Linear(self.hidden, 1)] \
            if self.hidden else [nn.Linear(width, 1)]
        self.policy = nn.Sequential(*layers, nn.Flatten(-2), nn.Sigmoid()).to(student.logits.device)
        nn.init.zeros_(layers[-1].weight)  # π = 1/2 for every state at the start: every teacher equally likely
        nn.init.zeros_(layers[-1].bias)

    def forward(self, context: Context, logits: torch.Tensor, temperature: float) -> torch.Tensor:  # type: ignore[override]
        targets = context.batch.targets
        reward = float(student_reward(context.student.logits, logits, targets, temperature))
        self.pending = None
        if self.previous is not None:
            states, actions = self.previous
            advantage = reward - (self.baseline if self.baseline is not None else reward)
            self.pending = reinforce_loss(self.policy(states), actions, advantage)
        previous = reward if self.baseline is None else self.baseline
        self.baseline = self.momentum * previous + (1 - self.momentum) * reward
        states = selection_states(logits, targets, temperature)
        with torch.no_grad():
            actions = torch.bernoulli(self.policy(states))
        self.previous = (states, actions)
        return selection_weights(actions).to(logits.dtype)

    def terms(self) -> list[Term]:
        return [self.policy_term]


@WEIGHTINGS.register("reinforced", "Yuan et al. 2021: a policy picks teachers per sample, trained by REINFORCE")
def reinforced(teachers: int, hidden: Annotated[int, Field(ge=0, le=4096)] = 0,
               baseline_momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9,
               policy_weight: Annotated[float, Field(ge=0)] = 1.0) -> Reinforced:
    """``hidden`` 0: the paper's logistic policy; ``baseline_momentum`` of the reward's moving average."""
    return Reinforced(teachers, hidden, baseline_momentum, policy_weight)
