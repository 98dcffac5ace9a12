"""FFL: the fusion module and the two-way distillation against a hand-written reference."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mentor.batch import Batch
from mentor.errors import MentorError
from mentor.schemes import SCHEMES
from tests.schemes.conftest import CLASSES, small_cnn, two_peers
from tests.schemes.references import reference_ce, reference_kl, sample_batch


def batch(size: int = 4) -> Batch:
    return sample_batch(5, size)


def batch_norm(x: torch.Tensor, norm: torch.nn.BatchNorm2d) -> torch.Tensor:
    mean, var = x.mean(dim=(0, 2, 3), keepdim=True), x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + norm.eps) * norm.weight.view(1, -1, 1, 1) + norm.bias.view(1, -1, 1, 1)


def test_loss_matches_the_papers_formula_with_maps_of_different_sizes() -> None:
    peers, data, tau = two_peers(), batch(), 3.0
    scheme = SCHEMES.get("ffl")(peers, tap=["stage1", "stage2"], temperature=tau, fused_channels=6)
    scheme.setup(data)
    scheme.train()
    output = scheme.loss(data, 1.0, 1)  # past the ramp-up: w(t) = 1
    first = peers[0].stage1(data.inputs)                                   # (B, 4, 4, 4)
    first = (first[:, :, 0::2, 0::2] + first[:, :, 1::2, 0::2] + first[:, :, 0::2, 1::2] + first[:, :, 1::2, 1::2]) / 4
    second = peers[1].stage2(peers[1].stage1(data.inputs))                # (B, 12, 2, 2)
    joint = torch.cat([first, second], dim=1)                              # (B, 16, 2, 2)
    fusion = scheme.fusion
    x = F.conv2d(joint, fusion.depthwise.weight, padding=1, groups=16)
    x = torch.clamp(batch_norm(x, fusion.norm1), min=0)
    x = torch.einsum("bchw,oc->bohw", x, fusion.pointwise.weight[:, :, 0, 0])
    x = torch.clamp(batch_norm(x, fusion.norm2), min=0)
    fused = x.mean(dim=(2, 3)) @ fusion.classifier.weight.T + fusion.classifier.bias
    logits = [peer(data.inputs) for peer in peers]
    ensemble = (logits[0] + logits[1]) / 2
    expected = reference_ce(fused, data.targets) + reference_kl(fused, ensemble, tau)
    for z in logits:
        expected = expected + reference_ce(z, data.targets) + reference_kl(z, fused, tau)
    assert torch.allclose(output.parts["fused/kl"], reference_kl(fused, ensemble, tau), atol=1e-5)
    assert torch.allclose(output.total, expected, atol=1e-5)
    assert list(scheme.predictors()) == ["peer0", "peer1", "fused", "ensemble"]


def test_gradients_reach_every_sub_network_and_the_fusion_module() -> None:
    scheme = SCHEMES.get("ffl")(two_peers(), tap="stage2")
    scheme.setup(batch())
    scheme.train()
    scheme.loss(batch(), 0.0, 1).total.backward()
    assert list(scheme.trained()) == ["peer0", "peer1", "fusion"]
    for name, module in scheme.trained().items():
        for parameter_name, parameter in module.named_parameters():
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, (name, parameter_name)


def test_fused_predictor_runs_in_eval_mode() -> None:
    scheme = SCHEMES.get("ffl")(two_peers(), tap="stage2")
    scheme.setup(batch())
    fused = scheme.predictors()["fused"].eval()
    with torch.no_grad():
        assert fused(batch().inputs).shape == (4, CLASSES)


@pytest.mark.parametrize("models, params", [
    (lambda: [small_cnn(1)], {}),
    (two_peers, {"tap": ["stage2"]}),
    (two_peers, {"temperature": -1.0}),
    (two_peers, {"fused_channels": 0}),
])
def test_bad_parameters_raise_mentor_errors(models, params) -> None:  # noqa: ANN001
    with pytest.raises(MentorError):
        SCHEMES.get("ffl")(models(), **params)


def test_a_tap_that_is_not_a_feature_map_is_refused_at_setup() -> None:
    scheme = SCHEMES.get("ffl")(two_peers(), tap="head")
    with pytest.raises(MentorError, match="feature map"):
        scheme.setup(batch())
