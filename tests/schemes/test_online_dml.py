"""Deep Mutual Learning: the loss against a hand-written reference, gradients, and parameter checks."""

from __future__ import annotations

import pytest
import torch

from mentor.batch import Batch
from mentor.errors import MentorError
from mentor.schemes import SCHEMES
from tests.schemes.conftest import small_cnn
from tests.schemes.references import reference_ce, reference_kl, sample_batch


def batch(size: int = 4) -> Batch:
    return sample_batch(7, size)


def three_peers() -> list[torch.nn.Module]:
    return [small_cnn(1), small_cnn(2, (6, 12)), small_cnn(3)]


def test_loss_matches_the_papers_formula_for_three_peers() -> None:
    peers, data, tau = three_peers(), batch(), 2.0
    scheme = SCHEMES.get("dml")(peers, temperature=tau)
    scheme.setup(data)
    scheme.train()
    output = scheme.loss(data, 0.0, 1)
    logits = [peer(data.inputs) for peer in peers]
    expected = torch.zeros(())
    for k in range(3):
        ce = reference_ce(logits[k], data.targets)
        kl = sum(reference_kl(logits[k], logits[j], tau) for j in range(3) if j != k) / 2
        assert torch.allclose(output.parts[f"peer{k}/ce"], ce, atol=1e-5)
        assert torch.allclose(output.parts[f"peer{k}/kl"], kl, atol=1e-5)
        expected = expected + ce + kl
    assert torch.allclose(output.total, expected, atol=1e-5)


def test_one_backward_equals_each_peer_minimising_its_own_loss() -> None:
    """Other peers are targets: the gradient of the sum on peer k is the gradient of L_k alone."""
    peers, data = three_peers(), batch()
    scheme = SCHEMES.get("dml")(peers)
    scheme.train()
    scheme.loss(data, 0.0, 1).total.backward()
    logits = [peer(data.inputs) for peer in peers]
    for k, peer in enumerate(peers):
        own = reference_ce(logits[k], data.targets) + sum(
            reference_kl(logits[k], logits[j].detach(), 1.0) for j in range(3) if j != k) / 2
        expected = torch.autograd.grad(own, list(peer.parameters()))
        for parameter, gradient in zip(peer.parameters(), expected, strict=True):
            assert torch.allclose(parameter.grad, gradient, atol=1e-5)


def test_predictors_are_the_peers_then_their_ensemble() -> None:
    peers = three_peers()
    scheme = SCHEMES.get("dml")(peers)
    predictors = scheme.predictors()
    assert list(predictors) == ["peer0", "peer1", "peer2", "ensemble"]
    inputs = batch().inputs
    for peer in peers:
        peer.eval()
    mean = sum(torch.softmax(peer(inputs), dim=1) for peer in peers) / 3
    assert torch.allclose(torch.softmax(predictors["ensemble"](inputs), dim=1), mean, atol=1e-6)


@pytest.mark.parametrize("models, params", [
    (lambda: [small_cnn(1)], {}),
    (three_peers, {"temperature": 0.0}),
    (three_peers, {"temperature": "warm"}),
    (three_peers, {"temprature": 2.0}),
])
def test_bad_parameters_raise_mentor_errors(models, params) -> None:  # noqa: ANN001
    with pytest.raises(MentorError):
        SCHEMES.get("dml")(models(), **params)
