"""The privacy accountant of PATE: Rényi-DP of the noisy vote aggregators, data-independent and data-dependent.

Papers:

- Papernot, Abadi, Erlingsson, Goodfellow & Talwar (2017), "Semi-supervised Knowledge Transfer for Deep
  Learning from Private Training Data", ICLR (arXiv:1610.05755): LNMax, the moments accountant and its
  data-dependent bound (Theorems 2-3, Lemma 4).
- Papernot, Song, Mironov, Raghunathan, Talwar & Erlingsson (2018), "Scalable Private Learning with PATE",
  ICLR (arXiv:1802.08908): GNMax and Confident-GNMax analysed with Rényi differential privacy (Propositions
  7, 8, 10, Theorem 6), and the RDP -> (ε, δ) conversion (Mironov 2017, "Rényi Differential Privacy", CSF).

Everything here is a pure function of a vote histogram ``votes`` ``(K,)`` (how many of the n teachers vote for
each of the K classes) and noise scales; RDP curves are arrays ``(L,)`` over the Rényi orders λ > 1 ``orders``.

One query's RDP of order λ (the accountant takes the minimum of every bound that holds):

- LNMax, argmax_j(n_j + Lap(1/γ)), is (2γ, 0)-DP. With l = λ − 1 the log moment α(l) = (λ − 1)·ε_RDP(λ) is
  bounded by 2γ²·l(l+1) (Theorem 2, data-independent), by 2γ·l (pure DP) and, when the probability q of
  not answering the plurality satisfies q < (e^{2γ} − 1)/(e^{4γ} − 1), by
  log((1−q)·((1−q)/(1 − e^{2γ}·q))^l + q·e^{2γl}) (Theorem 3), with q ≤ Σ_{j≠j*} (2 + γΔ_j)/(4·e^{γΔ_j}),
  Δ_j = n_{j*} − n_j (Lemma 4).
- GNMax, argmax_j(n_j + N(0, σ²)), is (λ, λ/σ²)-RDP (Proposition 8, data-independent: changing one teacher's
  data moves one vote, an L2 change of √2, and the Gaussian mechanism gives λ·2/(2σ²)). Data-dependent
  (Theorem 6): with q ≤ Σ_{j≠j*} Pr[N(0, 2σ²) ≥ Δ_j] (Proposition 7), μ2 = σ·√(log 1/q), μ1 = μ2 + 1
  (Proposition 10), ε_i = μ_i/σ², when λ < μ1, μ2 > 1, log(1/q) > ε2 and
  q ≤ e^{(μ2−1)ε2} / (μ1/(μ1−1) · μ2/(μ2−1))^{μ2}:
  ε_RDP(λ) ≤ log((1−q)·A^{λ−1} + q·B^{λ−1}) / (λ−1), A = (1−q)/(1 − (q·e^{ε2})^{(μ2−1)/μ2}),
  B = e^{ε1}/q^{1/(μ1−1)}.
- Confident-GNMax's selection step, max_j n_j + N(0, σ1²) ≥ T, has sensitivity 1: (λ, λ/(2σ1²))-RDP. Its
  data-dependent bound is Theorem 6 with σ → √2·σ1 and q the probability of its less likely outcome
  (answered or not), min(p, 1 − p) with p = Pr[N(0, σ1²) ≥ T − max_j n_j], as in the 2018 release.

Composition adds RDP curves order by order; (ε, δ) = min_λ ε_RDP(λ) + log(1/δ)/(λ − 1). A data-dependent ε
depends on the private votes, so publishing it is itself a release (the 2018 paper adds noise scaled to its
smooth sensitivity); this module reports it as the papers' tables do, without that step.
"""

from __future__ import annotations

import math

import numpy as np
import torch

DEFAULT_ORDERS = np.concatenate([np.arange(1.25, 10.0, 0.25), np.arange(10.0, 100.0, 1.0),
                                 np.geomspace(100.0, 1000.0, 40)])
"""Rényi orders λ: a fine grid at small λ (where a few queries' ε is minimised) up to λ = 1000 (many queries
with a tiny data-dependent cost); the 2018 release uses 2..100 by 0.5 and 100..500 on a log scale."""


def log1mexp(log_x: float) -> float:
    """log(1 − e^{log_x}) for ``log_x`` <= 0, accurate near both ends."""
    if log_x > 0:
        raise ValueError(f"log1mexp needs a non-positive argument; got {log_x}")
    if log_x == 0:
        return -math.inf
    return math.log1p(-math.exp(log_x)) if log_x < -math.log(2) else math.log(-math.expm1(log_x))


def normal_log_tail(gaps: np.ndarray, scale: float) -> np.ndarray:
    """log Pr[N(0, scale²) >= gap] for each gap (no underflow for large gaps)."""
    values = torch.special.log_ndtr(-torch.as_tensor(gaps, dtype=torch.float64) / scale)
    return values.numpy()


def _gaps(votes: np.ndarray) -> np.ndarray:
    """Δ_j = n_{j*} − n_j for every class j but the plurality j* (the first maximum)."""
    votes = np.asarray(votes, dtype=np.float64)
    winner = int(np.argmax(votes))
    return np.delete(votes[winner] - votes, winner)


# ------------------------------------------------------------------------------------------------ LNMax (2017)
def lnmax_q(votes: np.ndarray, gamma: float) -> float:
    """Lemma 4 (2017): q ≤ Σ_{j≠j*} (2 + γΔ_j) / (4·exp(γΔ_j)), capped at 1 − 1/K."""
    gaps = gamma * _gaps(votes)
    return float(min(np.sum((2.0 + gaps) / (4.0 * np.exp(gaps))), 1.0 - 1.0 / len(votes)))


def lnmax_log_moment(q: float, gamma: float, moment: float) -> float:
    """The smallest of the 2017 bounds on the log moment α(l) of one LNMax answer, l = ``moment`` > 0."""
    epsilon = 2.0 * gamma
    bounds = [2.0 * gamma**2 * moment * (moment + 1.0), epsilon * moment]  # Theorem 2; pure DP
    if q < (math.exp(epsilon) - 1.0) / (math.exp(2.0 * epsilon) - 1.0):  # Theorem 3's condition
        if q == 0:
            return 0.0
        first = math.log1p(-q) + moment * (math.log1p(-q) - math.log1p(-math.exp(epsilon) * q))
        second = math.log(q) + epsilon * moment
        bounds.append(float(np.logaddexp(first, second)))
    return min(bounds)


def lnmax_rdp(votes: np.ndarray | None, gamma: float, orders: np.ndarray = DEFAULT_ORDERS) -> np.ndarray:
    """RDP curve ``(L,)`` of one LNMax answer: α(λ−1)/(λ−1); data-independent when ``votes`` is ``None``."""
    q = 1.0 if votes is None else lnmax_q(votes, gamma)  # q = 1 fails Theorem 3's condition
    return np.array([lnmax_log_moment(q, gamma, order - 1.0) / (order - 1.0) for order in orders])


# ------------------------------------------------------------------------------------------------ GNMax (2018)
def gnmax_log_q(votes: np.ndarray, sigma: float) -> float:
    """Proposition 7 (2018): log q, q ≤ Σ_{j≠j*} Pr[N(0, 2σ²) ≥ Δ_j], capped at 1 − 1/K."""
    tails = normal_log_tail(_gaps(votes), math.sqrt(2.0) * sigma)
    return float(min(np.logaddexp.reduce(tails), math.log(1.0 - 1.0 / len(votes))))


def gaussian_rdp_data_independent(sigma: float, orders: np.ndarray = DEFAULT_ORDERS) -> np.ndarray:
    """Proposition 8 (2018): GNMax is (λ, λ/σ²)-RDP."""
    return np.asarray(orders, dtype=np.float64) / sigma**2


def gaussian_rdp(log_q: float, sigma: float, orders: np.ndarray = DEFAULT_ORDERS) -> np.ndarray:
    """Theorem 6 (2018) with Proposition 10's μ1, μ2, where it holds; λ/σ² elsewhere (the smaller of both)."""
    orders = np.asarray(orders, dtype=np.float64)
    independent = orders / sigma**2
    if log_q == -math.inf:  # the outcome is certain: nothing about the data is revealed
        return np.zeros_like(orders)
    mu2 = sigma * math.sqrt(-log_q)
    mu1 = mu2 + 1.0
    eps1, eps2 = mu1 / sigma**2, mu2 / sigma**2
    if mu2 <= 1.0 or -log_q <= eps2:
        return independent
    if log_q > (mu2 - 1.0) * eps2 - mu2 * (math.log(mu1 / (mu1 - 1.0)) + math.log(mu2 / (mu2 - 1.0))):
        return independent
    log_1q = log1mexp(log_q)
    log_a = log_1q - log1mexp((log_q + eps2) * (1.0 - 1.0 / mu2))
    log_b = eps1 - log_q / (mu1 - 1.0)
    dependent = np.logaddexp(log_1q + (orders - 1.0) * log_a, log_q + (orders - 1.0) * log_b) / (orders - 1.0)
    return np.where(orders < mu1, np.minimum(dependent, independent), independent)


def gnmax_rdp(votes: np.ndarray | None, sigma: float, orders: np.ndarray = DEFAULT_ORDERS) -> np.ndarray:
    """RDP curve ``(L,)`` of one GNMax answer; data-independent when ``votes`` is ``None``."""
    if votes is None:
        return gaussian_rdp_data_independent(sigma, orders)
    return gaussian_rdp(gnmax_log_q(votes, sigma), sigma, orders)


# ------------------------------------------------------------------------------ Confident-GNMax selection step
def threshold_log_answered(votes: np.ndarray, threshold: float, sigma1: float) -> float:
    """log Pr[max_j n_j + N(0, σ1²) ≥ T]."""
    return float(normal_log_tail(np.array([threshold - float(np.max(votes))]), sigma1)[0])


def threshold_rdp(votes: np.ndarray | None, threshold: float, sigma1: float,
                  orders: np.ndarray = DEFAULT_ORDERS) -> np.ndarray:
    """RDP curve ``(L,)`` of the selection step (whatever its outcome); data-independent when ``votes`` is
    ``None``: λ/(2σ1²)."""
    if votes is None:
        return gaussian_rdp_data_independent(math.sqrt(2.0) * sigma1, orders)
    log_answered = threshold_log_answered(votes, threshold, sigma1)
    log_q = min(log_answered, log1mexp(log_answered))
    return gaussian_rdp(log_q, math.sqrt(2.0) * sigma1, orders)


# ------------------------------------------------------------------------------------------------- conversion
def epsilon(rdp: np.ndarray, delta: float, orders: np.ndarray = DEFAULT_ORDERS) -> tuple[float, float]:
    """(ε, the order λ that gives it) with ε = min_λ ε_RDP(λ) + log(1/δ)/(λ − 1), for a composed curve."""
    values = np.asarray(rdp, dtype=np.float64) + math.log(1.0 / delta) / (np.asarray(orders) - 1.0)
    best = int(np.argmin(values))
    return float(values[best]), float(orders[best])
