"""MCL: in-batch InfoNCE between peers' embeddings plus DML mimicry, against a hand-written reference."""

from __future__ import annotations

import pytest
import torch

from mentor.batch import Batch
from mentor.errors import MentorError
from mentor.schemes import SCHEMES
from mentor.schemes.online.mcl import info_nce
from tests.schemes.conftest import small_cnn, two_peers
from tests.schemes.references import reference_ce, reference_kl, sample_batch


def batch(size: int = 4) -> Batch:
    return sample_batch(23, size)


def reference_info_nce(anchors: torch.Tensor, others: torch.Tensor, temperature: float) -> torch.Tensor:
    total = torch.zeros(())
    for i in range(len(anchors)):
        scores = torch.stack([torch.dot(anchors[i], others[j]) / temperature for j in range(len(others))])
        total = total - torch.log(torch.exp(scores[i]) / torch.exp(scores).sum())
    return total / len(anchors)


def embed(linear: torch.nn.Linear, features: torch.Tensor) -> torch.Tensor:
    projected = features @ linear.weight.T + linear.bias
    return projected / projected.pow(2).sum(1, keepdim=True).sqrt()


def test_loss_matches_the_papers_formula_for_three_peers() -> None:
    peers, data, tau, t_c = [small_cnn(1), small_cnn(2, (6, 12)), small_cnn(3)], batch(), 2.0, 0.5
    scheme = SCHEMES.get("mcl")(peers, temperature=tau, contrast_temperature=t_c, contrast_weight=0.3, dim=6)
    scheme.setup(data)
    scheme.train()
    output = scheme.loss(data, 0.0, 1)
    logits = [peer(data.inputs) for peer in peers]
    views = [embed(scheme.embeddings[k].linear, torch.nn.Sequential(*list(peer.children())[:-1])(data.inputs))
             for k, peer in enumerate(peers)]
    expected = torch.zeros(())
    for a in range(3):
        others = [b for b in range(3) if b != a]
        contrast = 0.3 * sum(reference_info_nce(views[a], views[b], t_c) for b in others) / 2
        mimicry = sum(reference_kl(logits[a], logits[b], tau) for b in others) / 2
        assert torch.allclose(output.parts[f"peer{a}/contrast"], contrast, atol=1e-5)
        expected = expected + reference_ce(logits[a], data.targets) + mimicry + contrast
    assert torch.allclose(output.total, expected, atol=1e-5)


def test_gradients_reach_every_peer_and_every_projection_head() -> None:
    scheme = SCHEMES.get("mcl")(two_peers(), dim=4)
    scheme.setup(batch())
    scheme.train()
    scheme.loss(batch(), 0.0, 1).total.backward()
    assert list(scheme.trained()) == ["peer0", "peer1", "embedding0", "embedding1"]
    for name, module in scheme.trained().items():
        for parameter_name, parameter in module.named_parameters():
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, (name, parameter_name)


def test_contrast_is_low_when_the_peers_embed_alike() -> None:
    from mentor.schemes.online.mcl import info_nce

    anchors = torch.nn.functional.normalize(torch.randn(6, 4), dim=1)
    assert info_nce(anchors, anchors, 0.05) < info_nce(anchors, anchors.roll(1, dims=0), 0.05)


@pytest.mark.parametrize("models, params", [
    (lambda: [small_cnn(1)], {}),
    (two_peers, {"dim": 0}),
    (two_peers, {"contrast_temperature": -1.0}),
    (two_peers, {"contrast_weight": -1.0}),
])
def test_bad_parameters_raise_mentor_errors(models, params) -> None:  # noqa: ANN001
    with pytest.raises(MentorError):
        SCHEMES.get("mcl")(models(), **params)


def test_contrast_value_and_gradient_scale_on_a_hand_computed_pair() -> None:
    # Unit embeddings a = (1, 0), (0, 1) and b = (0.6, 0.8), (0.8, 0.6), T = 0.1: scores (6, 8) and (8, 6), each
    # row's positive (its diagonal) 2 below its negative: InfoNCE = log(1 + e²) = 2.126928. Its gradient on a₀ is
    # (1/B)(1/T) Σ_j (p_0j − δ_0j) b_j = 5 · 0.880797 · (0.2, −0.2) = (0.880797, −0.880797).
    anchors = torch.tensor([[1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    others = torch.tensor([[0.6, 0.8], [0.8, 0.6]])
    value = info_nce(anchors, others, 0.1)
    assert value.item() == pytest.approx(2.126928, abs=1e-6)
    (gradient,) = torch.autograd.grad(value, anchors)
    assert gradient[0].tolist() == pytest.approx([0.880797, -0.880797], abs=1e-6)


def test_the_contrast_is_weighted_by_the_released_codes_beta() -> None:
    scheme = SCHEMES.get("mcl")(two_peers())
    defaults = (scheme.contrast_weight, scheme.contrast_temperature, scheme.temperature, scheme.dim)
    assert defaults == (0.025, 0.1, 3.0, 128)
