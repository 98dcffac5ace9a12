"""ONE: the branch split, the gated ensemble and the loss against a hand-written reference."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mentor.batch import Batch
from mentor.errors import MentorError
from mentor.schemes import SCHEMES
from tests.schemes.conftest import small_cnn
from tests.schemes.references import reference_ce, reference_kl, sample_batch


def batch(size: int = 4) -> Batch:
    return sample_batch(11, size)


def built(branches: int = 3, tau: float = 3.0):  # noqa: ANN201
    model = small_cnn(1)
    scheme = SCHEMES.get("one")([model], split="stage2", branches=branches, temperature=tau)
    scheme.setup(batch())
    scheme.train()
    return model, scheme


def test_the_split_shares_the_low_layers_and_gives_each_branch_its_own_upper_layers() -> None:
    model, scheme = built()
    assert scheme.network.trunk.stage1 is model.stage1
    assert scheme.network.branches[0].head is model.head          # branch 0 is the model's own upper part
    assert [name for name, _ in scheme.network.branches[1].named_children()] == ["stage2", "pool", "flatten", "head"]
    assert not torch.equal(scheme.network.branches[1].head.weight, model.head.weight)   # freshly initialised
    assert list(scheme.trained()) == ["trunk", "branch0", "branch1", "branch2", "gate"]
    assert list(scheme.predictors()) == ["branch0", "branch1", "branch2", "ensemble"]


def test_loss_matches_the_papers_formula() -> None:
    model, scheme = built(tau=3.0)
    data = batch()
    output = scheme.loss(data, 1.0, 1)  # past the ramp-up: w(t) = 1
    shared = model.stage1(data.inputs)
    logits = [branch(shared) for branch in scheme.network.branches]
    gate = scheme.gate
    score = shared.mean(dim=(2, 3)) @ gate.fc.weight.T + gate.fc.bias                       # (B, m)
    normed = (score - score.mean(0)) / torch.sqrt(score.var(0, unbiased=False) + gate.norm.eps)
    score = torch.clamp(normed * gate.norm.weight + gate.norm.bias, min=0)
    weights = torch.exp(score) / torch.exp(score).sum(1, keepdim=True)
    ensemble = sum(weights[:, i : i + 1] * logits[i] for i in range(3))
    expected = reference_ce(ensemble, data.targets)
    for i in range(3):
        expected = expected + reference_ce(logits[i], data.targets) + reference_kl(logits[i], ensemble, 3.0)
    assert torch.allclose(output.parts["ensemble/ce"], reference_ce(ensemble, data.targets), atol=1e-5)
    assert torch.allclose(output.total, expected, atol=1e-5)
    evaluated = scheme.predictors()["ensemble"]
    assert torch.allclose(evaluated(data.inputs), ensemble, atol=1e-5)


def test_gradients_reach_the_trunk_every_branch_and_the_gate_and_the_teacher_is_detached() -> None:
    _, scheme = built(branches=2)
    data = batch()
    scheme.loss(data, 0.0, 1).total.backward()
    for name, module in scheme.trained().items():
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters()), name
    # The ensemble is a detached target in the KL terms, so the gate learns from CE(y, z_e) alone.
    shared = scheme.network.trunk(data.inputs)
    logits = [scheme.network.branches[i](shared) for i in range(2)]
    ensemble = (scheme.gate(shared)[:, :, None] * torch.stack(logits, 1)).sum(1)
    expected = torch.autograd.grad(reference_ce(ensemble, data.targets), list(scheme.gate.parameters()))
    for parameter, gradient in zip(scheme.gate.parameters(), expected, strict=True):
        assert torch.allclose(parameter.grad, gradient, atol=1e-6)


@pytest.mark.parametrize("models, params", [
    (lambda: [small_cnn(1)], {}),                                   # split missing
    (lambda: [small_cnn(1)], {"split": "stage1"}),                  # nothing would be shared
    (lambda: [small_cnn(1)], {"split": "stage9"}),
    (lambda: [small_cnn(1)], {"split": "stage2", "branches": 1}),
    (lambda: [small_cnn(1), small_cnn(2)], {"split": "stage2"}),
    (lambda: [nn.Linear(4, 2)], {"split": "stage2"}),               # not an nn.Sequential
])
def test_bad_parameters_raise_mentor_errors(models, params) -> None:  # noqa: ANN001
    with pytest.raises(MentorError):
        SCHEMES.get("one")(models(), **params)
