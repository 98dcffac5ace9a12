"""Regression data through the loop: the diabetes dataset, MSE/MAE evaluation and selection on validation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import mentor
from mentor.data import ArrayDataset
from mentor.engine import FitSettings, evaluate, fit
from mentor.engine.evaluate import selection_score
from mentor.losses.regression import supervised_objective
from mentor.schemes import Offline


def test_diabetes_loads_float_targets_with_one_output_and_fixed_splits() -> None:
    data = mentor.data.load("diabetes", validation=0.15, seed=0)
    assert data.num_classes == 1 and data.input_shape == (10,)
    assert data.train.targets.dtype == torch.float32 and data.train.targets.shape[1:] == (1,)
    assert (len(data.train), len(data.validation), len(data.test)) == (282, 50, 110)  # 442: 25% test, 15% val
    again = mentor.data.load("diabetes", validation=0.15, seed=0)
    assert torch.equal(data.validation.targets, again.validation.targets)
    other = mentor.data.load("diabetes", validation=0.15, seed=1)
    assert torch.equal(data.test.targets, other.test.targets)  # the test split never depends on the seed
    assert not torch.equal(data.validation.targets, other.validation.targets)


def test_evaluate_reports_mse_and_mae_for_float_targets() -> None:
    constant = nn.Linear(1, 1)
    with torch.no_grad():
        constant.weight.zero_()
        constant.bias.fill_(1.0)
    # predictions 1, 1 against 0 and 4: errors 1 and 3 -> MSE (1 + 9) / 2 = 5, MAE (1 + 3) / 2 = 2
    metrics = evaluate(constant, ArrayDataset(torch.zeros(2, 1), torch.tensor([[0.0], [4.0]])))
    assert metrics == {"mse": 5.0, "mae": 2.0, "loss": 5.0}


def test_selection_maximizes_accuracy_or_minus_mse() -> None:
    assert selection_score({"accuracy": 0.5, "loss": 1.0}) == 0.5
    assert selection_score({"mse": 4.0, "mae": 2.0, "loss": 4.0}) == -4.0


def test_a_regression_fit_keeps_the_epoch_of_lowest_validation_mse() -> None:
    torch.manual_seed(0)
    inputs = torch.randn(64, 2)
    data = ArrayDataset(inputs, inputs @ torch.tensor([[2.0], [-1.0]]))
    model = nn.Linear(2, 1)
    assert [term.name for term in supervised_objective(data.targets)] == ["mse"]
    settings = FitSettings(epochs=4, batch_size=16, progress=False)
    result = fit(Offline(model, supervised_objective(data.targets)), data, data, settings)
    errors = [record["val/student/mse"] for record in result.history]
    assert result.best_epoch == 1 + errors.index(min(errors))
    assert evaluate(model, data)["mse"] == pytest.approx(min(errors), rel=1e-5)
