"""PATE's partitions, teacher bank, noisy aggregators and query budget."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from mentor.batch import Batch
from mentor.errors import MentorError, MentorWarning
from mentor.teachers import privacy
from mentor.teachers.bank import BankTraining, PluralityVote, TeacherBank
from mentor.teachers.pate import UNANSWERED, ConfidentGNMax, GNMax, LNMax, answer_queries, partitions, vote_histograms


def linear(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 3))


def test_partitions_are_disjoint_equal_and_fixed_by_the_seed() -> None:
    parts = partitions(23, 5, seed=0)
    assert parts.shape == (5, 4) and len(set(parts.flatten().tolist())) == 20
    assert torch.equal(parts, partitions(23, 5, seed=0)) and not torch.equal(parts, partitions(23, 5, seed=1))


def test_more_teachers_than_samples_is_a_one_line_error() -> None:
    with pytest.raises(MentorError, match=r"'teachers' parameter of PATE \(11\) is more than the 10 private"):
        partitions(10, 11, seed=0)


def test_the_bank_runs_each_member_as_it_would_run_alone() -> None:
    members = [linear(seed) for seed in range(3)]
    bank = TeacherBank(members)
    inputs = torch.randn(3, 5, 4)
    stacked = bank(inputs)
    shared = bank.shared(inputs[0])
    for index, member in enumerate(members):
        assert torch.allclose(stacked[index], member(inputs[index]), atol=1e-6)
        assert torch.allclose(shared[index], member(inputs[0]), atol=1e-6)
        assert torch.allclose(bank.members()[index](inputs[0]), member(inputs[0]), atol=1e-6)


def test_votes_count_each_members_predicted_class() -> None:
    members = [linear(0) for _ in range(3)]
    for member, favourite in zip(members, (0, 2, 2), strict=True):  # each member always predicts one class
        with torch.no_grad():
            member[1].weight.zero_()
            member[1].bias.copy_(torch.eye(3)[favourite])
    votes = vote_histograms(TeacherBank(members), torch.randn(4, 4), num_classes=3)
    assert votes.tolist() == [[1, 0, 2]] * 4
    logits = PluralityVote(TeacherBank(members))(torch.randn(2, 4))
    assert logits.argmax(dim=1).tolist() == [2, 2]


def test_bank_gradients_reach_each_member_from_its_own_rows_only() -> None:
    bank = TeacherBank([linear(seed) for seed in range(2)])
    scheme = BankTraining(bank)
    inputs, targets = torch.randn(6, 2, 4), torch.randint(0, 3, (6, 2))
    scheme.loss(Batch(inputs, targets), 0.0, 1).total.backward()
    first = [p.grad[1].clone() for p in bank.parameters()]
    bank.zero_grad()
    changed = targets.clone()
    changed[:, 0] = (changed[:, 0] + 1) % 3  # member 0's labels change, member 1's do not
    scheme.loss(Batch(inputs, changed), 0.0, 1).total.backward()
    assert all(torch.equal(before, p.grad[1]) for before, p in zip(first, bank.parameters(), strict=True))


def test_a_bank_trained_full_batch_matches_members_trained_alone() -> None:
    from mentor.data import ArrayDataset
    from mentor.engine import FitSettings, OptimizerSettings, fit

    members = [linear(seed) for seed in range(2)]
    alone = [linear(seed) for seed in range(2)]
    inputs, targets = torch.randn(8, 2, 4), torch.randint(0, 3, (8, 2))
    settings = FitSettings(epochs=3, batch_size=8, optimizer=OptimizerSettings(name="sgd", lr=0.5, momentum=0.0),
                           progress=False, scale_probe=0, teacher_cache=False)
    bank = TeacherBank(members)
    fit(BankTraining(bank), ArrayDataset(inputs, targets), None, settings)
    for index, model in enumerate(alone):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        for _ in range(3):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(inputs[:, index]), targets[:, index]).backward()
            optimizer.step()
        assert torch.allclose(bank.members()[index](inputs[:, 0]), model(inputs[:, 0]), atol=1e-5)


def test_with_almost_no_noise_every_aggregator_returns_the_plurality() -> None:
    votes = np.array([1, 7, 2])
    rng = np.random.default_rng(0)
    assert LNMax(gamma=1e6).answer(votes, rng) == 1
    assert GNMax(sigma=1e-6).answer(votes, rng) == 1
    assert ConfidentGNMax(threshold=5, sigma1=1e-6, sigma2=1e-6).answer(votes, rng) == 1
    assert ConfidentGNMax(threshold=8, sigma1=1e-6, sigma2=1e-6).answer(votes, rng) == UNANSWERED


def test_gnmax_noise_has_the_asked_scale() -> None:
    # with votes (0, 0), class 1 wins when N1 > N0: N1 − N0 ~ N(0, 2σ²) is symmetric, so half the time
    rng = np.random.default_rng(0)
    wins = [GNMax(sigma=3.0).answer(np.array([0, 0]), rng) for _ in range(4000)]
    assert abs(np.mean(wins) - 0.5) < 0.03
    # votes (2, 0), σ = 2: class 1 wins when N(0, 8) > 2: Pr = erfc(2/4)/2 = 0.4795/2 = 0.2398
    wins = [GNMax(sigma=2.0).answer(np.array([2, 0]), rng) for _ in range(4000)]
    assert abs(np.mean(wins) - 0.2398) < 0.03


def test_lnmax_noise_has_the_asked_scale_and_lemma_4_is_exact_for_two_classes() -> None:
    # votes (2, 0), γ = 0.5 (Laplace scale b = 2): class 1 wins when L1 − L0 > 2, and for the difference of two
    # Laplace(b) variables Pr[D > d] = e^{−d/b}(1 + d/(2b))/2 = e^{−1}·1.5/2 = 0.2759, which is Lemma 4's
    # (2 + γΔ)/(4e^{γΔ}) = 3/(4e) = 0.2759 for Δ = 2
    rng = np.random.default_rng(0)
    wins = [LNMax(gamma=0.5).answer(np.array([2, 0]), rng) for _ in range(4000)]
    assert abs(np.mean(wins) - 0.2759) < 0.03
    assert privacy.lnmax_q(np.array([2, 0]), 0.5) == pytest.approx(0.2759, abs=1e-4)


def test_confident_gnmax_answers_as_often_as_its_threshold_allows() -> None:
    # max vote 8, T = 10, σ1 = 2: answered when N(0, 4) ≥ 2, Pr = erfc(1/√2)/2 = 0.3173/2 = 0.1587
    rng = np.random.default_rng(0)
    aggregator = ConfidentGNMax(threshold=10.0, sigma1=2.0, sigma2=1e-6)
    labels = [aggregator.answer(np.array([8, 1, 1]), rng) for _ in range(4000)]
    assert abs(np.mean([label != UNANSWERED for label in labels]) - 0.1587) < 0.03
    assert set(labels) == {UNANSWERED, 0}
    assert math.exp(privacy.threshold_log_answered(np.array([8, 1, 1]), 10.0, 2.0)) == pytest.approx(0.1587, abs=1e-4)


def test_unanswered_queries_cost_only_the_selection_step() -> None:
    orders = np.array([2.0])
    aggregator = ConfidentGNMax(threshold=100.0, sigma1=1.0, sigma2=1.0)
    # data-independent: selection λ/(2σ1²) = 1, GNMax λ/σ2² = 2
    assert aggregator.rdp(None, False, orders) == pytest.approx([1.0])
    assert aggregator.rdp(None, True, orders) == pytest.approx([3.0])
    answers = answer_queries(np.array([[3, 0]] * 4), aggregator, delta=math.exp(-1.0), orders=orders)
    # none is answered (max 3 is 97σ1 below T): 4 selection steps, RDP 4, ε = 4 + 1/(2 − 1) = 5
    assert (answers.labels == UNANSWERED).all() and answers.epsilon_data_independent == pytest.approx(5.0)


def test_a_budget_in_epsilon_stops_before_it_is_exceeded_and_keeps_the_answers() -> None:
    votes = np.array([[5, 0]] * 5)
    orders = np.array([2.0])
    # each GNMax answer with σ = 1 costs λ/σ² = 2 at λ = 2; δ = e⁻¹ adds 1: ε after k answers = 2k + 1
    # with a budget of 7.5, answers 1..3 (ε = 3, 5, 7) are given and answer 4 (ε = 9) is refused
    with pytest.warns(MentorWarning, match=r"PATE stopped after 3 of 5 queries: query 4 would raise the "
                                           r"data-independent ε \(δ=0.367879\) from 7.000 to 9.000"):
        answers = answer_queries(votes, GNMax(sigma=1.0), delta=math.exp(-1.0), epsilon_budget=7.5,
                                 budget_analysis="data-independent", orders=orders)
    assert answers.labels.tolist() == [0, 0, 0] and answers.epsilon_data_independent == pytest.approx(7.0)
    assert "3 answers so far are kept" in answers.stopped


def test_a_budget_in_queries_asks_no_more() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        answers = answer_queries(np.array([[5, 0]] * 10), GNMax(sigma=1.0), delta=1e-5, max_queries=4)
    assert len(answers.labels) == 4 and answers.stopped is None
    assert answers.epsilon <= answers.epsilon_data_independent


def test_the_data_dependent_epsilon_is_the_accountants_sum() -> None:
    votes = np.array([[9, 1, 0], [6, 4, 0]])
    answers = answer_queries(votes, GNMax(sigma=1.0), delta=1e-5)
    curve = privacy.gnmax_rdp(votes[0], 1.0) + privacy.gnmax_rdp(votes[1], 1.0)
    assert answers.epsilon == pytest.approx(privacy.epsilon(curve, 1e-5)[0])


@pytest.mark.parametrize(("make", "message"), [
    (lambda: GNMax(sigma=0.0), r"'sigma' parameter of GNMax must be a finite number > 0. Got 0.0"),
    (lambda: LNMax(gamma=-1.0), r"'gamma' parameter of LNMax must be a finite number > 0. Got -1.0"),
    (lambda: ConfidentGNMax(sigma1=0), r"'sigma1' parameter of ConfidentGNMax"),
    (lambda: answer_queries(np.ones((2, 2)), GNMax(), delta=1.0), r"'delta' parameter of PATE must be a number in "
                                                                   r"\(0, 1\). Got 1.0"),
    (lambda: answer_queries(np.ones((2, 2)), GNMax(), delta=1e-5, max_queries=0), r"'queries' parameter of PATE"),
])
def test_bad_parameters_are_one_line_errors(make: object, message: str) -> None:
    with pytest.raises(MentorError, match=message) as caught:
        make()  # type: ignore[operator]
    assert "\n" not in str(caught.value)
