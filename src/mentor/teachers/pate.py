"""PATE: private aggregation of teacher ensembles (survey §4).

Papers: Papernot, Abadi, Erlingsson, Goodfellow & Talwar (2017), "Semi-supervised Knowledge Transfer for Deep
Learning from Private Training Data", ICLR (arXiv:1610.05755); Papernot, Song, Mironov, Raghunathan, Talwar &
Erlingsson (2018), "Scalable Private Learning with PATE", ICLR (arXiv:1802.08908).

The private training set is split into n disjoint partitions (:func:`partitions`), one teacher learns each
(:mod:`mentor.teachers.bank`), and a student learns from public, unlabeled inputs labelled by a noisy vote
of the teachers. For a query x, n_j(x) = |{i : teacher i predicts class j}| is the vote histogram ``(K,)``
(:func:`vote_histograms` gives ``(Q, K)`` for Q queries). The aggregators:

- :class:`LNMax` (2017, eq. 1): argmax_j {n_j + Lap(1/γ)}; γ = 0.05 by default (their MNIST setting, 250
  teachers: Laplace scale 20).
- :class:`GNMax` (2018, Sec. 3): argmax_j {n_j + N(0, σ²)}; σ = 40 by default (their MNIST σ2).
- :class:`ConfidentGNMax` (2018, Algorithm 1): answer only when max_j n_j + N(0, σ1²) ≥ T, then GNMax with
  σ2; T = 200, σ1 = 150, σ2 = 40 by default (their MNIST setting, 250 teachers).

:func:`answer_queries` asks the queries one by one under a budget: at most ``max_queries`` and, when given,
``epsilon_budget``. Before a query is asked, the ε it would bring (counted as answered, the costlier
outcome) is computed; a query that would exceed the budget is not asked, the run stops with a one-line
warning, and every answer given so far is kept. The budget is checked against the accountant named by
``budget_analysis``: the data-independent ε is a guarantee by itself; the data-dependent one (the papers'
reported ε, much smaller when teachers agree) depends on the private votes, so stopping on it reveals a
little of them, as the papers' own reporting does (:mod:`mentor.teachers.privacy`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from mentor.errors import MentorError, warn
from mentor.teachers import privacy
from mentor.teachers.bank import TeacherBank

Analysis = Literal["data-dependent", "data-independent"]
UNANSWERED = -1
"""The label of a query Confident-GNMax declined to answer."""


def positive(value: float, name: str, owner: str) -> float:
    """``value`` when it is a finite number > 0; a one-line error naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise MentorError(f"The {name!r} parameter of {owner} must be a finite number > 0. Got {value!r} instead; "
                          "pass a positive value.")
    return float(value)


def check_delta(delta: float) -> float:
    """δ of an (ε, δ) guarantee must lie strictly between 0 and 1."""
    if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not 0.0 < delta < 1.0:
        raise MentorError(f"The 'delta' parameter of PATE must be a number in (0, 1). Got {delta!r} instead; "
                          "a common choice is below 1/(number of private samples), e.g. 1e-5.")
    return float(delta)


def check_budget(delta: float, queries: int | None, epsilon_budget: float | None, budget_analysis: str) -> None:
    """One-line errors for a bad δ, query count, ε budget or budget analysis."""
    check_delta(delta)
    if queries is not None and (isinstance(queries, bool) or not isinstance(queries, int) or queries < 1):
        raise MentorError(f"The 'queries' parameter of PATE must be an integer >= 1. Got {queries!r} instead.")
    if epsilon_budget is not None:
        positive(epsilon_budget, "epsilon_budget", "PATE")
    if budget_analysis not in ("data-dependent", "data-independent"):
        raise MentorError(f"The 'budget_analysis' parameter of PATE must be 'data-dependent' or "
                          f"'data-independent'. Got {budget_analysis!r} instead.")


def partitions(samples: int, teachers: int, seed: int) -> torch.Tensor:
    """Disjoint partitions of ``samples`` indices, one per teacher: ``(teachers, samples // teachers)``.

    A seeded permutation is cut into equal parts (the ``samples % teachers`` left over are unused), so the
    teachers can be trained as one batch and the split is the same for the same seed.
    """
    if isinstance(teachers, bool) or not isinstance(teachers, int) or teachers < 1:
        raise MentorError(f"The 'teachers' parameter of PATE must be an integer >= 1. Got {teachers!r} instead.")
    if teachers > samples:
        raise MentorError(f"The 'teachers' parameter of PATE ({teachers}) is more than the {samples} private "
                          f"training samples: each teacher needs its own partition; use at most {samples} teachers.")
    size = samples // teachers
    order = torch.randperm(samples, generator=torch.Generator().manual_seed(seed))
    return order[: size * teachers].view(teachers, size)


def vote_histograms(bank: TeacherBank, inputs: torch.Tensor, num_classes: int, batch_size: int = 256) -> np.ndarray:
    """n_j(x) for every query: ``(Q, K)`` int64 counts of the members' predicted classes (eval mode)."""
    counts = []
    was_training = bank.training
    bank.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(inputs), batch_size):
                predicted = bank.shared(inputs[start:start + batch_size]).argmax(dim=2)  # (n, B)
                one_hot = torch.nn.functional.one_hot(predicted, num_classes)  # (n, B, K)
                counts.append(one_hot.sum(dim=0).cpu())
    finally:
        bank.train(was_training)
    return torch.cat(counts).numpy().astype(np.int64) if counts else np.zeros((0, num_classes), np.int64)


class Aggregator:
    """A noisy vote aggregator: :meth:`answer` labels one query, :meth:`rdp` is its privacy cost."""

    name = "aggregator"

    def answer(self, votes: np.ndarray, rng: np.random.Generator) -> int:
        """The label given for vote histogram ``votes`` ``(K,)``, or :data:`UNANSWERED`."""
        raise NotImplementedError

    def rdp(self, votes: np.ndarray | None, answered: bool, orders: np.ndarray) -> np.ndarray:
        """RDP curve ``(L,)`` of one query with this outcome; data-independent when ``votes`` is ``None``."""
        raise NotImplementedError


@dataclass(frozen=True)
class LNMax(Aggregator):
    """argmax_j {n_j + Lap(1/γ)} (2017); ``gamma`` is the inverse Laplace scale γ."""

    gamma: float = 0.05
    name = "lnmax"

    def __post_init__(self) -> None:
        positive(self.gamma, "gamma", "LNMax")

    def answer(self, votes: np.ndarray, rng: np.random.Generator) -> int:
        return int(np.argmax(votes + rng.laplace(0.0, 1.0 / self.gamma, size=len(votes))))

    def rdp(self, votes: np.ndarray | None, answered: bool, orders: np.ndarray) -> np.ndarray:
        return privacy.lnmax_rdp(votes, self.gamma, orders)


@dataclass(frozen=True)
class GNMax(Aggregator):
    """argmax_j {n_j + N(0, σ²)} (2018)."""

    sigma: float = 40.0
    name = "gnmax"

    def __post_init__(self) -> None:
        positive(self.sigma, "sigma", "GNMax")

    def answer(self, votes: np.ndarray, rng: np.random.Generator) -> int:
        return int(np.argmax(votes + rng.normal(0.0, self.sigma, size=len(votes))))

    def rdp(self, votes: np.ndarray | None, answered: bool, orders: np.ndarray) -> np.ndarray:
        return privacy.gnmax_rdp(votes, self.sigma, orders)


@dataclass(frozen=True)
class ConfidentGNMax(Aggregator):
    """Answer with GNMax(σ2) only when max_j n_j + N(0, σ1²) ≥ T (2018, Algorithm 1)."""

    threshold: float = 200.0
    sigma1: float = 150.0
    sigma2: float = 40.0
    name = "confident-gnmax"

    def __post_init__(self) -> None:
        positive(self.sigma1, "sigma1", "ConfidentGNMax")
        positive(self.sigma2, "sigma2", "ConfidentGNMax")
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float)) \
                or not math.isfinite(self.threshold):
            raise MentorError(f"The 'threshold' parameter of ConfidentGNMax must be a finite number of votes. "
                              f"Got {self.threshold!r} instead.")

    def answer(self, votes: np.ndarray, rng: np.random.Generator) -> int:
        if np.max(votes) + rng.normal(0.0, self.sigma1) < self.threshold:
            return UNANSWERED
        return int(np.argmax(votes + rng.normal(0.0, self.sigma2, size=len(votes))))

    def rdp(self, votes: np.ndarray | None, answered: bool, orders: np.ndarray) -> np.ndarray:
        selection = privacy.threshold_rdp(votes, self.threshold, self.sigma1, orders)
        return selection + privacy.gnmax_rdp(votes, self.sigma2, orders) if answered else selection


AGGREGATORS = {"lnmax": LNMax, "gnmax": GNMax, "confident-gnmax": ConfidentGNMax}


@dataclass
class Answers:
    """What the aggregator answered, and what it cost.

    Attributes:
        labels: ``(asked,)`` int64, one per query asked in order; :data:`UNANSWERED` where none was given.
        epsilon: data-dependent ε of all the queries asked (the papers' reported value), at ``delta``.
        epsilon_data_independent: the ε that holds whatever the votes.
        order: the Rényi order λ that gives ``epsilon``.
        delta: δ of both guarantees.
        stopped: why fewer queries than wanted were asked (``None`` when all were).
    """

    labels: np.ndarray
    epsilon: float
    epsilon_data_independent: float
    order: float
    delta: float
    stopped: str | None = None

    @property
    def answered(self) -> np.ndarray:
        """Boolean mask ``(asked,)`` of the queries that got a label."""
        return self.labels != UNANSWERED


def answer_queries(votes: np.ndarray, aggregator: Aggregator, *, delta: float, max_queries: int | None = None,
                   epsilon_budget: float | None = None, budget_analysis: Analysis = "data-dependent",
                   seed: int = 0, orders: np.ndarray = privacy.DEFAULT_ORDERS) -> Answers:
    """Answer the queries of ``votes`` ``(Q, K)`` in order, within the budget (module docstring)."""
    check_budget(delta, max_queries, epsilon_budget, budget_analysis)
    wanted = len(votes) if max_queries is None else min(max_queries, len(votes))
    rng = np.random.default_rng(seed)
    dependent, independent = np.zeros(len(orders)), np.zeros(len(orders))
    labels: list[int] = []
    stopped = None
    if max_queries is not None and max_queries > len(votes):
        stopped = f"only {len(votes)} public samples could be asked, fewer than queries={max_queries}"
    for histogram in votes[:wanted]:
        cost_dependent = aggregator.rdp(histogram, True, orders)
        cost_independent = aggregator.rdp(None, True, orders)
        if epsilon_budget is not None:
            ledger, cost = (dependent, cost_dependent) if budget_analysis == "data-dependent" \
                else (independent, cost_independent)
            after = privacy.epsilon(ledger + cost, delta, orders)[0]
            if after > epsilon_budget:
                now = privacy.epsilon(ledger, delta, orders)[0] if labels else 0.0
                stopped = (f"PATE stopped after {len(labels)} of {wanted} queries: query {len(labels) + 1} would "
                           f"raise the {budget_analysis} ε (δ={delta:g}) from {now:.3f} to {after:.3f}, above "
                           f"epsilon_budget={epsilon_budget:g}; the {len(labels)} answers so far are kept")
                warn(stopped)
                break
        label = aggregator.answer(histogram, rng)
        labels.append(label)
        dependent += cost_dependent if label != UNANSWERED else aggregator.rdp(histogram, False, orders)
        independent += cost_independent if label != UNANSWERED else aggregator.rdp(None, False, orders)
    eps, order = privacy.epsilon(dependent, delta, orders) if labels else (0.0, math.nan)
    eps_independent = privacy.epsilon(independent, delta, orders)[0] if labels else 0.0
    return Answers(np.array(labels, dtype=np.int64), eps, eps_independent, order, delta, stopped)
