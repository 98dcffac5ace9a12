"""PCL: peer ensemble teacher, peer mean teachers (EMA), augmented views and the loss reference."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from mentor.batch import Batch
from mentor.errors import MentorError
from mentor.schemes import SCHEMES
from tests.schemes.conftest import small_cnn
from tests.schemes.references import reference_ce, reference_kl, sample_batch


def batch(size: int = 4) -> Batch:
    return sample_batch(9, size)


def built(branches: int = 3, **params):  # noqa: ANN201, ANN003
    scheme = SCHEMES.get("pcl")([small_cnn(1)], split="stage2", branches=branches, **params)
    scheme.setup(batch())
    scheme.train()
    return scheme


def test_loss_matches_the_papers_formula_without_augmentation() -> None:
    scheme, data, tau = built(3, temperature=2.0, rampup=2.0, shift=0, flip=False), batch(), 2.0
    means = copy.deepcopy(scheme.network).eval()          # the mean teachers start as copies of the peers
    output = scheme.loss(data, 1.0, 4)
    shared = scheme.network.trunk(data.inputs)
    features = [branch[:-1](shared) for branch in scheme.network.branches]
    logits = [branch[-1](h) for branch, h in zip(scheme.network.branches, features, strict=True)]
    ensemble = torch.cat(features, 1) @ scheme.head.weight.T + scheme.head.bias
    with torch.no_grad():
        mean_logits = [branch(means.trunk(data.inputs)) for branch in means.branches]
    weight = math.exp(-5 * (1 - 1.0 / 2.0) ** 2)
    expected = reference_ce(ensemble, data.targets)
    for i in range(3):
        peer_mean = sum(reference_kl(logits[i], mean_logits[j], tau) for j in range(3) if j != i) / 2
        assert torch.allclose(output.parts[f"branch{i}/mean_kl"], weight * peer_mean, atol=1e-5)
        expected = expected + reference_ce(logits[i], data.targets)
        expected = expected + weight * (reference_kl(logits[i], ensemble, tau) + peer_mean)
    assert torch.allclose(output.total, expected, atol=1e-5)


def test_mean_teachers_are_frozen_and_follow_the_peers_as_an_exponential_average() -> None:
    scheme = built(2, decay=0.9)
    assert all(not p.requires_grad for p in scheme.mean_teacher.parameters())
    optimized = {id(p) for group in scheme.optimized().values() for p in group}
    assert not optimized & {id(p) for p in scheme.mean_teacher.parameters()}
    optimizer = torch.optim.SGD([p for group in scheme.optimized().values() for p in group], lr=0.5)
    history = []
    for _ in range(3):
        optimizer.zero_grad()
        scheme.loss(batch(), 0.0, 1).total.backward()
        assert all(p.grad is None for p in scheme.mean_teacher.parameters())
        optimizer.step()
        history.append(scheme.network.branches[1].head.weight.detach().clone())
        scheme.after_step()
    # α_t = min(1 − 1/(t + 1), decay): 0 (copy), then 0.5, then min(2/3, 0.9).
    expected = history[0]
    expected = 0.5 * expected + 0.5 * history[1]
    expected = (2 / 3) * expected + (1 / 3) * history[2]
    assert torch.allclose(scheme.mean_teacher.model.branches[1].head.weight, expected, atol=1e-6)
    assert scheme.mean_teacher.training is False


def test_each_peer_sees_its_own_augmented_view() -> None:
    scheme, seen = built(2, shift=1, flip=True, seed=3), []
    handle = scheme.network.trunk.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    scheme.loss(batch(8), 0.0, 1)
    handle.remove()
    assert len(seen) == 2 and not torch.equal(seen[0], seen[1])


def test_gradients_reach_the_trunk_every_branch_and_the_ensemble_classifier() -> None:
    scheme = built(2)
    scheme.loss(batch(), 0.0, 1).total.backward()
    for name, module in scheme.trained().items():
        if name != "mean_teacher":
            assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters()), name


def test_the_mean_predictor_is_the_mean_teacher_with_the_best_running_accuracy() -> None:
    scheme = built(2)
    scheme.mean_teacher.accuracy.copy_(torch.tensor([0.2, 0.7]))
    predictors = scheme.predictors()
    assert list(predictors)[:3] == ["mean", "mean0", "mean1"]
    inputs = batch().inputs
    assert torch.equal(predictors["mean"](inputs), predictors["mean1"](inputs))
    predictors["mean"].train()
    assert not scheme.mean_teacher.model.trunk.training      # predictors of mean teachers stay in eval mode


@pytest.mark.parametrize("params", [
    {}, {"split": "stage2", "decay": 1.0}, {"split": "stage2", "branches": 1}, {"split": "stage2", "shift": -1},
])
def test_bad_parameters_raise_mentor_errors(params) -> None:  # noqa: ANN001
    with pytest.raises(MentorError):
        SCHEMES.get("pcl")([small_cnn(1)], **params)


@pytest.mark.parametrize(("size", "expected"), [
    (50_048, 0.999),      # 391 steps of 128 per epoch: the paper's CIFAR setting and α
    (5_850, 0.991500),    # 46 steps per epoch: 1 − 391 / (1000 · 46), the same 2.56-epoch span
])
def test_the_default_decay_spans_the_papers_epochs_whatever_the_steps_per_epoch(size: int, expected: float) -> None:
    scheme = SCHEMES.get("pcl")([small_cnn(1)], split="stage2")
    sample = batch(128)
    scheme.setup(Batch(sample.inputs, sample.targets, None, size))
    assert scheme.mean_teacher.decay == pytest.approx(expected, abs=1e-6)
    fixed = SCHEMES.get("pcl")([small_cnn(1)], split="stage2", decay=0.95)
    fixed.setup(Batch(sample.inputs, sample.targets, None, size))
    assert fixed.mean_teacher.decay == 0.95
