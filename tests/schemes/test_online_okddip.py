"""OKDDip: attention-derived peer targets, the leader's second-level distillation, and the loss reference."""

from __future__ import annotations

import pytest
import torch

from mentor.batch import Batch
from mentor.errors import MentorError
from mentor.schemes import SCHEMES
from tests.schemes.conftest import small_cnn
from tests.schemes.references import reference_ce, reference_kl, sample_batch


def batch(size: int = 4) -> Batch:
    return sample_batch(13, size)


def group(peers: int = 3) -> list[torch.nn.Module]:
    return [small_cnn(10, (6, 12))] + [small_cnn(seed) for seed in range(1, peers + 1)]


def built(models: list[torch.nn.Module], **params):  # noqa: ANN201, ANN003
    scheme = SCHEMES.get("okddip")(models, attention_dim=4, **params)
    scheme.setup(batch())
    scheme.train()
    return scheme


def test_loss_matches_the_papers_two_level_distillation() -> None:
    models, data, tau = group(3), batch(), 3.0
    scheme = built(models, temperature=tau, rampup=0.0)
    output = scheme.loss(data, 0.0, 1)
    leader, peers = models[0], models[1:]
    logits = [peer(data.inputs) for peer in peers]
    features = [torch.nn.Sequential(*list(peer.children())[:-1])(data.inputs) for peer in peers]   # (B, 8)
    query, key = scheme.attention["query"].weight, scheme.attention["key"].weight
    expected = reference_ce(leader(data.inputs), data.targets)
    for a in range(3):
        targets = []
        for i in range(len(data)):
            energy = torch.stack([(query @ features[a][i]) @ (key @ features[b][i]) for b in range(3)])
            weights = torch.exp(energy) / torch.exp(energy).sum()
            targets.append(sum(weights[b] * logits[b][i] for b in range(3)))
        first_level = reference_kl(logits[a], torch.stack(targets), tau)
        assert torch.allclose(output.parts[f"peer{a}/kl"], first_level, atol=1e-5)
        expected = expected + reference_ce(logits[a], data.targets) + first_level
    second_level = reference_kl(leader(data.inputs), sum(logits) / 3, tau)
    assert torch.allclose(output.parts["leader/kl"], second_level, atol=1e-5)
    assert torch.allclose(output.total, expected + second_level, atol=1e-5)
    assert list(scheme.predictors()) == ["leader", "peer0", "peer1", "peer2", "ensemble"]


def test_gradients_reach_leader_peers_and_attention_and_the_leader_never_moves_the_peers() -> None:
    models, data = group(2), batch()
    scheme = built(models)
    scheme.loss(data, 0.0, 1).total.backward()
    for name, module in scheme.trained().items():
        for parameter_name, parameter in module.named_parameters():
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, (name, parameter_name)
    before = [p.grad.clone() for p in models[1].parameters()]
    scheme.zero_grad()
    with torch.no_grad():
        models[0].head.weight.mul_(3.0)                                      # a different leader ...
    scheme.loss(data, 0.0, 1).total.backward()
    for parameter, gradient in zip(models[1].parameters(), before, strict=True):   # ... leaves the peers' gradients
        assert torch.allclose(parameter.grad, gradient, atol=1e-6)


def test_rampup_scales_both_distillation_levels() -> None:
    scheme = built(group(2), rampup=4.0)
    early, late = scheme.loss(batch(), 0.0, 8), scheme.loss(batch(), 4.0, 8)
    factor = torch.exp(torch.tensor(-5.0))
    assert torch.allclose(early.parts["leader/kl"], factor * late.parts["leader/kl"], rtol=1e-4)
    assert torch.allclose(early.parts["peer1/kl"], factor * late.parts["peer1/kl"], rtol=1e-4)


def test_peers_whose_features_differ_in_width_are_refused() -> None:
    scheme = SCHEMES.get("okddip")([small_cnn(1), small_cnn(2), small_cnn(3, (6, 12))])
    with pytest.raises(MentorError, match="same width"):
        scheme.setup(batch())


@pytest.mark.parametrize("count, params", [(2, {}), (3, {"temperature": 0.0}), (3, {"attention_dim": 0})])
def test_bad_parameters_raise_mentor_errors(count, params) -> None:  # noqa: ANN001
    with pytest.raises(MentorError):
        SCHEMES.get("okddip")(group(count - 1), **params)
