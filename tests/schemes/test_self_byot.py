"""Be Your Own Teacher (Zhang et al. 2019): shallow classifiers, their loss and predictors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mentor.batch import Batch
from mentor.errors import MentorError
from mentor.schemes import SCHEMES
from mentor.schemes.selflearning.byot import self_distillation_parts
from tests.schemes.conftest import small_cnn, tiny_data


def built(**params):  # noqa: ANN201
    scheme = SCHEMES.get("byot")([small_cnn(1)], **{"taps": ["stage1", "stage2"], **params})
    data = tiny_data()
    batch = Batch(data.inputs[:6], data.targets[:6], torch.arange(6), len(data))
    scheme.setup(batch)
    scheme.train()
    return scheme, batch


def test_shallow_classifiers_match_the_deepest_feature_shape() -> None:
    scheme, batch = built()
    assert list(scheme.exits.classifiers) == ["exit1", "exit2"]
    logits, features = scheme.exits.all(batch.inputs)
    network = scheme.exits.network
    deepest = network.flatten(network.pool(network.stage2(network.stage1(batch.inputs))))
    assert torch.allclose(features[-1], deepest) and torch.allclose(logits[-1], network(batch.inputs))
    assert all(feature.shape == deepest.shape for feature in features)
    assert all(z.shape == (6, 5) for z in logits)


def test_loss_and_its_gradient_scale_follow_the_released_code_on_a_hand_computed_example() -> None:
    # One sample of class 0, two classes; deepest logits (2, 0), shallow (0, 1); α = 0.3, τ = 2, λ = 0.1.
    # CE(deepest) = log(1 + e^-2) = 0.126928 (weight 1); CE(shallow) = log(1 + e) = 1.313262 (weight 1 − α);
    # q^C = softmax((1, 0)) = (0.731059, 0.268941), q^1 = softmax((0, 0.5)) = (0.377541, 0.622459),
    # KL(q^C || q^1) = 0.257403 (no τ²); hint ‖(1, 2) − (0, 4)‖² = 5.
    deepest = torch.tensor([[2.0, 0.0]], requires_grad=True)
    shallow = torch.tensor([[0.0, 1.0]], requires_grad=True)
    features = [torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 4.0]])]
    parts = self_distillation_parts([shallow, deepest], features, torch.tensor([0]), ["exit1"], 0.3, 2.0, 0.1)
    assert parts["ce/deepest"].item() == pytest.approx(0.126928, abs=1e-6)
    assert parts["ce/exit1"].item() == pytest.approx(0.7 * 1.313262, abs=1e-6)
    assert parts["kl/exit1"].item() == pytest.approx(0.3 * 0.257403, abs=1e-6)
    assert parts["hint/exit1"].item() == pytest.approx(0.5, abs=1e-6)
    # The soft term's gradient on the shallow logits is α/τ (q^1 − q^C) = ±0.053028: a quarter of what a τ²
    # factor would give, one tenth of its cross-entropy's 0.7 (p − y) = ±0.511741.
    (gradient,) = torch.autograd.grad(parts["kl/exit1"], shallow)
    assert gradient.tolist()[0] == pytest.approx([-0.053028, 0.053028], abs=1e-6)
    (gradient,) = torch.autograd.grad(parts["ce/exit1"], shallow)
    assert gradient.tolist()[0] == pytest.approx([-0.511741, 0.511741], abs=1e-6)
    assert deepest.grad is None  # the deepest classifier is the teacher of the soft term


def test_defaults_follow_the_released_code() -> None:
    scheme = SCHEMES.create("byot", [small_cnn(1)], taps=["stage1"])
    assert (scheme.alpha, scheme.temperature, scheme.hint_weight) == (0.3, 3.0, 0.0)


def test_the_scheme_loss_is_the_sum_of_its_parts_on_the_networks_outputs() -> None:
    scheme, batch = built(alpha=0.3, temperature=2.0, hint_weight=0.05)
    output = scheme.loss(batch, 0.0, 1)
    logits, features = scheme.exits.all(batch.inputs)
    parts = self_distillation_parts(logits, features, batch.targets, ["exit1", "exit2"], 0.3, 2.0, 0.05)
    assert output.total.item() == pytest.approx(sum(part.item() for part in parts.values()), rel=1e-6)
    assert set(output.parts) == {"ce/deepest", "ce/exit1", "kl/exit1", "hint/exit1", "ce/exit2", "kl/exit2",
                                 "hint/exit2"}


def test_gradients_reach_every_classifier_and_the_head_learns_only_from_the_labels() -> None:
    scheme, batch = built(alpha=0.4)
    scheme.loss(batch, 0.0, 1).total.backward()
    for name, classifier in scheme.exits.classifiers.items():
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in classifier.parameters()), name
    network = scheme.exits.network
    assert network.stage1[0].weight.grad.abs().sum() > 0
    head_gradient = network.head.weight.grad.clone()
    network.zero_grad()
    F.cross_entropy(network(batch.inputs), batch.targets).backward()
    assert torch.allclose(head_gradient, network.head.weight.grad, atol=1e-6)


def test_predictors_are_the_deepest_each_exit_and_their_softmax_average() -> None:
    scheme, batch = built()
    predictors = scheme.predictors()
    assert list(predictors) == ["deepest", "exit1", "exit2", "ensemble"]
    logits, _ = scheme.exits.all(batch.inputs)
    assert torch.allclose(predictors["exit2"](batch.inputs), logits[1])
    average = sum(F.softmax(z, dim=1) for z in logits) / 3
    assert torch.allclose(predictors["ensemble"](batch.inputs), average.log(), atol=1e-6)


@pytest.mark.parametrize(
    "params",
    [{"taps": []}, {"taps": "stage1"}, {"taps": ["stage1", "stage1"]}, {"alpha": 1.0}, {"hint_weight": -1.0},
     {"temperature": -1.0}],
)
def test_bad_parameters_raise(params: dict) -> None:
    with pytest.raises(MentorError, match=next(iter(params))):
        SCHEMES.create("byot", [small_cnn(1)], **{"taps": ["stage1"], **params})


@pytest.mark.parametrize(("taps", "message"), [(["flatten"], "feature maps"), (["stage9"], "stage1")])
def test_taps_that_are_not_maps_or_not_in_the_model_raise_at_setup(taps: list[str], message: str) -> None:
    scheme = SCHEMES.get("byot")([small_cnn(1)], taps=taps)
    data = tiny_data()
    with pytest.raises(MentorError, match=message):
        scheme.setup(Batch(data.inputs[:4], data.targets[:4]))
