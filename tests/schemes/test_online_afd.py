"""AFD: least-squares adversarial feature-map losses, who updates what, and the loss reference."""

from __future__ import annotations

import pytest
import torch

from mentor.batch import Batch
from mentor.errors import MentorError
from mentor.schemes import SCHEMES
from tests.schemes.conftest import small_cnn, two_peers
from tests.schemes.references import reference_ce, reference_kl, sample_batch


def batch(size: int = 4) -> Batch:
    return sample_batch(19, size)


def built(models: list[torch.nn.Module], **params):  # noqa: ANN201, ANN003
    scheme = SCHEMES.get("afd")(models, tap="stage2", **params)
    scheme.setup(batch())
    scheme.train()
    return scheme


def reference_parts(scheme, data: Batch, tau: float, adversarial: float):  # noqa: ANN001, ANN201
    """(network loss Σ L_k, discriminator loss Σ L_D_k) written out for two networks."""
    peers, (d0, d1) = scheme.peers, scheme.discriminators
    logits = [peer(data.inputs) for peer in peers]
    maps = [scheme.transfers[k](peers[k].stage2(peers[k].stage1(data.inputs))) for k in range(2)]
    networks = torch.zeros(())
    for k, d in enumerate((d0, d1)):
        other = 1 - k
        scores = d(maps[k])                              # (B,) probabilities that each map is the other's
        generator = sum((1 - scores[i]) ** 2 for i in range(len(data))) / len(data)
        mimicry = reference_kl(logits[k], logits[other].detach(), tau)
        networks = networks + reference_ce(logits[k], data.targets) + mimicry + adversarial * generator
    discriminators = torch.zeros(())
    for k, d in enumerate((d0, d1)):
        real, fake = maps[1 - k].detach(), maps[k].detach()
        discriminators = discriminators + ((1 - d(real)) ** 2).mean() + (d(fake) ** 2).mean()
    return networks, discriminators


def test_loss_matches_the_papers_formula_for_networks_of_different_widths() -> None:
    peers, data = two_peers(), batch()                   # stage2 widths 8 and 12: a transfer layer on network 0
    scheme = built(peers, temperature=2.0, adversarial=0.5)
    assert list(scheme.trained()) == ["peer0", "peer1", "transfer0", "discriminator0", "discriminator1"]
    output = scheme.loss(data, 0.0, 1)
    networks, discriminators = reference_parts(scheme, data, 2.0, 0.5)
    assert torch.allclose(output.total, networks + discriminators, atol=1e-5)
    assert torch.allclose(output.parts["discriminator0"] + output.parts["discriminator1"], discriminators, atol=1e-5)


def test_discriminators_learn_only_from_their_loss_and_networks_only_from_theirs() -> None:
    peers, data = two_peers(), batch()
    scheme = built(peers)
    scheme.loss(data, 0.0, 1).total.backward()
    networks, discriminators = reference_parts(scheme, data, 3.0, 1.0)
    discriminator_parameters = list(scheme.discriminators.parameters())
    network_parameters = [p for name in ("peer0", "peer1", "transfer0") for p in scheme.trained()[name].parameters()]
    expected = torch.autograd.grad(discriminators, discriminator_parameters)
    for parameter, gradient in zip(discriminator_parameters, expected, strict=True):
        assert torch.allclose(parameter.grad, gradient, atol=1e-6)
    for parameter, gradient in zip(network_parameters, torch.autograd.grad(networks, network_parameters), strict=True):
        assert torch.allclose(parameter.grad, gradient, atol=1e-6)
    for name, module in scheme.trained().items():
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters()), name


def test_discriminators_have_their_own_optimizer_group() -> None:
    scheme = built(two_peers())
    groups = scheme.optimized()
    assert set(groups) == {"networks", "discriminators"}
    assert {id(p) for p in groups["discriminators"]} == {id(p) for p in scheme.discriminators.parameters()}
    everything = {id(p) for module in scheme.trained().values() for p in module.parameters()}
    assert {id(p) for group in groups.values() for p in group} == everything


def test_three_networks_learn_cyclically() -> None:
    scheme = built([small_cnn(1), small_cnn(2), small_cnn(3)])
    output = scheme.loss(batch(), 0.0, 1)
    assert {f"discriminator{k}" for k in range(3)} <= set(output.parts)
    assert "transfer0" not in scheme.trained()                # equal widths need no transfer layer


@pytest.mark.parametrize("models, params", [
    (lambda: [small_cnn(1)], {}),
    (two_peers, {"tap": ["stage2"]}),
    (two_peers, {"adversarial": -1.0}),
    (two_peers, {"temperature": 0}),
])
def test_bad_parameters_raise_mentor_errors(models, params) -> None:  # noqa: ANN001
    with pytest.raises(MentorError):
        SCHEMES.get("afd")(models(), **params)
