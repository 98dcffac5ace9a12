"""Be Your Own Teacher (Zhang et al. 2019): shallow classifiers, their loss and predictors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mentor.batch import Batch
from mentor.errors import MentorError
from mentor.schemes import SCHEMES
from tests.schemes.conftest import small_cnn, tiny_data


def built(**params):  # noqa: ANN201
    scheme = SCHEMES.get("byot")([small_cnn(1)], **{"taps": ["stage1", "stage2"], **params})
    data = tiny_data()
    batch = Batch(data.inputs[:6], data.targets[:6], torch.arange(6), len(data))
    scheme.setup(batch)
    scheme.train()
    return scheme, batch


def log_softmax_row(values: list[float], tau: float = 1.0) -> list[float]:
    scaled = [v / tau for v in values]
    top = max(scaled)
    norm = top + math.log(sum(math.exp(v - top) for v in scaled))
    return [v - norm for v in scaled]


def test_shallow_classifiers_match_the_deepest_feature_shape() -> None:
    scheme, batch = built()
    assert list(scheme.exits.classifiers) == ["exit1", "exit2"]
    logits, features = scheme.exits.all(batch.inputs)
    network = scheme.exits.network
    deepest = network.flatten(network.pool(network.stage2(network.stage1(batch.inputs))))
    assert torch.allclose(features[-1], deepest) and torch.allclose(logits[-1], network(batch.inputs))
    assert all(feature.shape == deepest.shape for feature in features)
    assert all(z.shape == (6, 5) for z in logits)


def test_loss_matches_the_papers_sum_over_classifiers() -> None:
    alpha, tau, hint = 0.3, 2.0, 0.05
    scheme, batch = built(alpha=alpha, temperature=tau, hint_weight=hint)
    output = scheme.loss(batch, 0.0, 1)
    logits, features = (
        [t.detach() for t in tensors] for tensors in scheme.exits.all(batch.inputs)
    )
    expected = 0.0
    for row, label in enumerate(batch.targets.tolist()):
        deepest = logits[-1][row].tolist()
        expected += (1 - alpha) * -log_softmax_row(deepest)[label]
        teacher = log_softmax_row(deepest, tau)
        for index in range(2):
            shallow = logits[index][row].tolist()
            expected += (1 - alpha) * -log_softmax_row(shallow)[label]
            student = log_softmax_row(shallow, tau)
            kl = sum(math.exp(t) * (t - s) for t, s in zip(teacher, student, strict=True))
            expected += alpha * tau**2 * kl
            shallow_feature, deepest_feature = features[index][row].tolist(), features[-1][row].tolist()
            squared = sum((a - b) ** 2 for a, b in zip(shallow_feature, deepest_feature, strict=True))
            expected += hint * squared
    assert output.total.item() == pytest.approx(expected / len(batch), rel=1e-5)
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
    (0.6 * F.cross_entropy(network(batch.inputs), batch.targets)).backward()
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
