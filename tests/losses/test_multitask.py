"""The multi-task losses and calibrations against values computed by hand on tiny tensors."""

from __future__ import annotations

import math

import pytest
import torch

from mentor.errors import MentorError
from mentor.losses.multitask import (
    fit_affine,
    fit_temperature,
    masked_soft_cross_entropy,
    masked_squared_error,
    quadruplet_ranking,
)


def test_soft_cross_entropy_averages_the_labelled_rows_only() -> None:
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0], [5.0, -5.0]])
    targets = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    mask = torch.tensor([True, True, False])
    # row 1: −ln ½ = 0.693147; row 2: softmax (¾, ¼): −(½ ln ¾ + ½ ln ¼) = 0.836988; row 3 masked out
    assert masked_soft_cross_entropy(logits, targets, mask).item() == pytest.approx(0.765068, abs=1e-6)


def test_squared_error_averages_outputs_then_labelled_rows() -> None:
    predictions = torch.tensor([[1.0, 2.0], [3.0, 5.0], [0.0, 0.0]])
    targets = torch.tensor([[1.0, 0.0], [1.0, 1.0], [9.0, 9.0]])
    mask = torch.tensor([True, True, False])
    assert masked_squared_error(predictions, targets, mask).item() == pytest.approx(6.0)  # (0+4)/2, (4+16)/2
    assert masked_squared_error(predictions, targets, torch.zeros(3, dtype=torch.bool)).item() == 0.0


def test_quadruplet_ranking_orders_neighbouring_levels() -> None:
    scores = torch.tensor([2.0, 1.0, 0.0, 3.0])
    primary, auxiliary = torch.tensor([1, 1, 0, 0]), torch.tensor([1, 0, 1, 0])
    # levels (1,1) 3, (1,0) 2, (0,1) 1, (0,0) 0; margins 1, 1, −3: softplus(−1), softplus(−1), softplus(3)
    assert quadruplet_ranking(scores, primary, auxiliary).item() == pytest.approx(1.225037, abs=1e-6)
    # inversely related: levels 2, 3, 0, 1; pairs (1,0) −1, (0,3) −1, (3,2) 3: softplus(1), softplus(1), softplus(−3)
    assert quadruplet_ranking(scores, primary, auxiliary, related=False).item() == pytest.approx(0.891704, abs=1e-6)


def test_quadruplet_ranking_without_pairs_is_zero_and_keeps_the_graph() -> None:
    scores = torch.tensor([1.0, 2.0], requires_grad=True)
    loss = quadruplet_ranking(scores, torch.tensor([1, 1]), torch.tensor([0, 0]))
    loss.backward()
    assert loss.item() == 0.0 and scores.grad is not None and scores.grad.abs().sum() == 0


def test_ranking_gradient_pushes_the_higher_level_up() -> None:
    scores = torch.zeros(2, requires_grad=True)
    quadruplet_ranking(scores, torch.tensor([1, 0]), torch.tensor([0, 1])).backward()
    # one pair (0 above 1)? levels 2 and 1: d/ds0 softplus(s1 − s0) = −σ(0) = −0.5
    assert scores.grad.tolist() == pytest.approx([-0.5, 0.5])


def test_affine_calibration_is_least_squares() -> None:
    assert fit_affine(torch.tensor([[0.0], [1.0], [2.0]]), torch.tensor([[1.0], [3.0], [5.0]])) == \
        pytest.approx((2.0, 1.0))
    assert fit_affine(torch.tensor([[1.0], [1.0]]), torch.tensor([[2.0], [4.0]])) == pytest.approx((1.0, 2.0))


def test_temperature_matches_the_observed_accuracy() -> None:
    # logits (2, 0), three right and one wrong: the best σ(2/T) is ¾, so T = 2 / ln 3 = 1.820478
    logits = torch.tensor([[2.0, 0.0]] * 4)
    labels = torch.tensor([0, 0, 0, 1])
    assert fit_temperature(logits, labels) == pytest.approx(1.820478, abs=1e-4)


def test_calibration_without_labelled_samples_is_a_one_line_error() -> None:
    with pytest.raises(MentorError, match="validation split"):
        fit_temperature(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))
    with pytest.raises(MentorError, match="validation split"):
        fit_affine(torch.zeros(0, 1), torch.zeros(0, 1))
