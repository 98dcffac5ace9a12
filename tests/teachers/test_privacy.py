"""The PATE accountant against values worked out by hand from the papers' formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mentor.teachers import privacy


def test_lnmax_q_is_lemma_4_of_the_2017_paper() -> None:
    # votes (3, 1, 0), γ = 1: gaps 2 and 3;
    # q = (2 + 2)/(4e²) + (2 + 3)/(4e³) = 1/e² + 1.25/e³ = 0.1353353 + 0.0622339 = 0.1975691 (below 1 − 1/3)
    assert privacy.lnmax_q(np.array([3, 1, 0]), 1.0) == pytest.approx(0.1975691, abs=1e-6)
    # a tie: gap 0 -> q = 2/4 = 0.5, capped at 1 − 1/2 = 0.5
    assert privacy.lnmax_q(np.array([2, 2]), 1.0) == pytest.approx(0.5)


def test_lnmax_log_moment_is_theorem_3_when_its_condition_holds() -> None:
    # q = 0.01, γ = 0.5 (ε = 2γ = 1), l = 2; condition q < 1/(e + 1) = 0.2689 holds.
    # (1 − q)·((1 − q)/(1 − e·q))² + q·e² = 0.99·(0.99/0.9728172)² + 0.01·7.389056
    #   = 0.99·1.0356383 + 0.0738906 = 1.0991725, log = 0.0945572
    # Theorem 2 gives 2γ²·l(l+1) = 3, pure DP gives ε·l = 2: the minimum is Theorem 3's.
    assert privacy.lnmax_log_moment(0.01, 0.5, 2.0) == pytest.approx(0.0945572, abs=1e-6)


def test_lnmax_rdp_falls_back_to_the_data_independent_bounds() -> None:
    # votes (3, 1, 0), γ = 1: q = 0.1976 ≥ 1/(e² + 1) = 0.1192, Theorem 3 does not apply.
    # λ = 2 (l = 1): min(2γ²·1·2 = 4, 2γ·1 = 2) = 2, divided by l = 1 -> 2
    assert privacy.lnmax_rdp(np.array([3, 1, 0]), 1.0, np.array([2.0])) == pytest.approx([2.0])
    # data-independent, γ = 0.5, λ = 3 (l = 2): min(2·0.25·2·3 = 3, 1·2 = 2) / 2 = 1
    assert privacy.lnmax_rdp(None, 0.5, np.array([3.0])) == pytest.approx([1.0])


def test_gnmax_log_q_is_proposition_7_of_the_2018_paper() -> None:
    # votes (5, 1, 0), σ = 1: gaps 4 and 5, each against N(0, 2σ²) = N(0, 2):
    # Pr[N(0,2) ≥ 4] = erfc(4/2)/2 = 0.004677735/2 = 0.0023388675
    # Pr[N(0,2) ≥ 5] = erfc(5/2)/2 = 0.000406952/2 = 0.0002034760
    # q = 0.0025423435, log q = ln 2.5423435 − ln 1000 = 0.9330865 − 6.9077553 = −5.9746688
    assert privacy.gnmax_log_q(np.array([5, 1, 0]), 1.0) == pytest.approx(-5.9746688, abs=1e-6)


def test_gnmax_data_independent_rdp_is_lambda_over_sigma_squared() -> None:
    # Proposition 8 (2018): λ/σ²; σ = 2 -> 2/4, 3/4, 5/4
    assert privacy.gnmax_rdp(None, 2.0, np.array([2.0, 3.0, 5.0])) == pytest.approx([0.5, 0.75, 1.25])


def test_gaussian_rdp_is_theorem_6_below_mu1_and_data_independent_above() -> None:
    # log q = −16, σ = 1: μ2 = σ·√16 = 4, μ1 = 5, ε1 = 5, ε2 = 4; −log q = 16 > ε2, and
    # log q = −16 ≤ (μ2 − 1)ε2 − μ2·(log 5/4 + log 4/3) = 12 − 4·0.5108256 = 9.957 holds.
    # λ = 2 < μ1: A = (1 − q)/(1 − (q·e⁴)^{3/4}) = (1 − e⁻¹⁶)/(1 − e⁻⁹), B = e⁵/q^{1/4} = e⁹
    # (1 − q)·A + q·B = (1 − e⁻¹⁶)²/(1 − e⁻⁹) + e⁻⁷ = 1.0001232 + 0.0009119 = 1.0010351, log = 0.0010346
    # λ = 6 ≥ μ1: the data-independent λ/σ² = 6
    assert privacy.gaussian_rdp(-16.0, 1.0, np.array([2.0, 6.0])) == pytest.approx([0.0010346, 6.0], abs=1e-6)


def test_a_certain_outcome_costs_nothing_and_a_likely_one_never_more_than_data_independent() -> None:
    orders = np.array([2.0, 8.0, 32.0])
    assert privacy.gaussian_rdp(-math.inf, 1.0, orders) == pytest.approx([0.0, 0.0, 0.0])
    dependent = privacy.gnmax_rdp(np.array([250, 0, 0]), 40.0, orders)
    assert np.all(dependent >= 0) and np.all(dependent <= orders / 40.0**2)


def test_the_threshold_step_has_sensitivity_one() -> None:
    # data-independent λ/(2σ1²): σ1 = 2, λ = 4 -> 4/8 = 0.5
    assert privacy.threshold_rdp(None, 10.0, 2.0, np.array([4.0])) == pytest.approx([0.5])
    # max vote = T: answered with probability 1/2, q = 1/2; with σ = √2·σ1 = √2, μ2 = √2·√(ln 2) = 1.1774,
    # ε2 = μ2/2 = 0.5887 and (μ2 − 1)ε2 − μ2(log(μ1/(μ1−1)) + log(μ2/(μ2−1))) = 0.104 − 1.1774·(0.615 + 1.894)
    # = −2.85 < log q = −0.693: Theorem 6 does not apply, the data-independent λ/(2σ1²) = 2/2 = 1 holds.
    assert privacy.threshold_rdp(np.array([10, 0]), 10.0, 1.0, np.array([2.0])) == pytest.approx([1.0])


def test_rdp_to_epsilon_delta_minimises_over_orders() -> None:
    # 10 GNMax answers, σ = 2: RDP 10·λ/4 = 5, 7.5, 12.5 at λ = 2, 3, 5; δ = e⁻⁴ adds 4/(λ − 1) = 4, 2, 1:
    # ε = min(9, 9.5, 13.5) = 9 at λ = 2
    orders = np.array([2.0, 3.0, 5.0])
    curve = 10 * privacy.gnmax_rdp(None, 2.0, orders)
    assert privacy.epsilon(curve, math.exp(-4.0), orders) == pytest.approx((9.0, 2.0))


def test_lnmax_data_independent_epsilon_of_the_2017_mnist_setting() -> None:
    # 100 queries, γ = 0.05: α(l) = 100·2γ²·l(l+1) = 0.5·l(l+1); ε = min_l (α(l) + ln 1e5)/l;
    # at l = 4.75 (λ = 5.75): (0.5·4.75·5.75 + 11.512925)/4.75 = (13.65625 + 11.512925)/4.75 = 5.298774
    epsilon, order = privacy.epsilon(100 * privacy.lnmax_rdp(None, 0.05), 1e-5)
    assert epsilon == pytest.approx(5.298774, abs=1e-5) and order == 5.75
