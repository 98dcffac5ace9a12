"""Teacher-student curriculum learning: Matiisen, Oliver, Cohen & Schulman (2017), "Teacher-student curriculum
learning", arXiv:1707.00183 (IEEE TNNLS 2019), the Online algorithm (their Algorithm 1) with ε-greedy choice.

A curriculum teacher chooses which of ``N`` tasks (subsets of the training data) the student trains on next.
After the student has trained on task a, its score x^a on that task is measured; the reward is the change since
the task was last measured, and the task's value Q follows it as an exponentially weighted average::

    r_t = x_t^a − x_{t'}^a,        Q(a) ← α r_t + (1 − α) Q(a)
    a_{t+1} = argmax_a |Q(a)|  with probability 1 − ε, else a task drawn uniformly

The absolute value makes the teacher return to a task whose score drops (forgetting) as readily as to one that
is being learned. Shapes: ``q`` and ``scores`` ``(N,)``; ties (values within :data:`TIE`) go to the lowest task
index.

Defaults (:data:`ALPHA`, :data:`EPSILON`) are the paper's: α = 0.1 and ε = 0.1 for its decimal-addition runs.
In knowledge adaptation (:mod:`mentor.pipelines.adapt`) the tasks are the target training samples cut into
``N`` equal parts by the teacher's confidence (most confident first), and the score is the student's agreement
with the teacher's classes on a fixed probe of each part: no target label is read.
"""

from __future__ import annotations

import torch
from torch import nn

from mentor.errors import MentorError

ALPHA = 0.1
"""The paper's smoothing α of the task values."""
EPSILON = 0.1
"""The paper's exploration rate ε."""
TIE = 1e-6
"""|Q| values closer than this count as equal (float rounding must not decide a choice)."""


class OnlineCurriculum(nn.Module):
    """The Online algorithm's state (buffers, so a checkpoint keeps it): task values, last scores, current task."""

    def __init__(self, tasks: int, alpha: float = ALPHA, epsilon: float = EPSILON, seed: int = 0) -> None:
        super().__init__()
        if isinstance(tasks, bool) or not isinstance(tasks, int) or tasks < 2:
            raise MentorError(f"The 'tasks' parameter of the curriculum must be an int >= 2 (subsets to choose "
                              f"from). Got {tasks!r} instead.")
        for name, value in (("alpha", alpha), ("epsilon", epsilon)):
            if not 0.0 <= value <= 1.0:
                raise MentorError(f"The {name!r} parameter of the curriculum must be in [0, 1]. Got {value!r} "
                                  f"instead; the paper uses {ALPHA if name == 'alpha' else EPSILON}.")
        self.alpha, self.epsilon = alpha, epsilon
        self.generator = torch.Generator().manual_seed(seed)
        self.register_buffer("q", torch.zeros(tasks))
        self.register_buffer("scores", torch.full((tasks,), float("nan")))
        self.register_buffer("current", torch.zeros((), dtype=torch.long))
        self.register_buffer("chosen", torch.zeros(tasks, dtype=torch.long))

    @property
    def started(self) -> bool:
        """Whether every task's first score is known."""
        return not bool(torch.isnan(self.scores).any())

    def start(self, scores: list[float]) -> None:
        """Every task's score before training (what the first reward of each task is measured from)."""
        if len(scores) != len(self.q):
            raise MentorError(f"the curriculum has {len(self.q)} tasks; got {len(scores)} first scores")
        self.scores.copy_(torch.tensor(scores, dtype=self.scores.dtype))

    def choose(self) -> int:
        """The next task: ε-greedy on |Q| (counted in ``chosen``)."""
        explore = float(torch.rand((), generator=self.generator)) < self.epsilon
        task = int(torch.randint(len(self.q), (), generator=self.generator)) if explore \
            else int(torch.nonzero(self.q.abs() >= self.q.abs().max() - TIE)[0])
        self.current.fill_(task)
        self.chosen[task] += 1
        return task

    def observe(self, score: float) -> float:
        """The current task's new score: its reward r_t, folded into Q."""
        task = int(self.current)
        reward = score - float(self.scores[task])
        self.q[task] = self.alpha * reward + (1.0 - self.alpha) * self.q[task]
        self.scores[task] = score
        return reward
