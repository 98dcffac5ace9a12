"""AFI: channel-attention feature interaction, auxiliary classifiers and mutual KD, against a reference."""

from __future__ import annotations

import pytest
import torch

from mentor.batch import Batch
from mentor.errors import MentorError
from mentor.schemes import SCHEMES
from tests.schemes.conftest import CLASSES, small_cnn, two_peers
from tests.schemes.references import reference_ce, reference_kl, sample_batch


def batch(size: int = 4) -> Batch:
    return sample_batch(29, size)


def batch_norm(x: torch.Tensor, norm: torch.nn.BatchNorm2d) -> torch.Tensor:
    mean, var = x.mean(dim=(0, 2, 3), keepdim=True), x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + norm.eps) * norm.weight.view(1, -1, 1, 1) + norm.bias.view(1, -1, 1, 1)


def built(**params):  # noqa: ANN201, ANN003
    peers = two_peers()                                        # stage2 maps: (8, 2, 2) and (12, 2, 2)
    scheme = SCHEMES.get("afi")(peers, tap="stage2", **params)
    scheme.setup(batch())
    scheme.train()
    return peers, scheme


def test_loss_matches_the_formula_of_the_interaction_and_mutual_distillation() -> None:
    (first, second), scheme = built(temperature=2.0, reduction=2)
    data, tau = batch(), 2.0
    output = scheme.loss(data, 0.0, 1)
    joint = torch.cat([first.stage2(first.stage1(data.inputs)), second.stage2(second.stage1(data.inputs))], 1)
    module = scheme.interaction
    hidden = torch.clamp(joint.mean(dim=(2, 3)) @ module.squeeze.weight.T + module.squeeze.bias, min=0)
    attention = torch.sigmoid(hidden @ module.excite.weight.T + module.excite.bias)          # (B, 20)
    attended = joint * attention[:, :, None, None]
    logits = [first(data.inputs), second(data.inputs)]
    expected = torch.zeros(())
    for k in range(2):
        conv, norm = module.projections[k][0], module.projections[k][1]
        mapped = torch.clamp(batch_norm(torch.einsum("bchw,oc->bohw", attended, conv.weight[:, :, 0, 0]), norm), min=0)
        auxiliary = mapped.mean(dim=(2, 3)) @ module.classifiers[k].weight.T + module.classifiers[k].bias
        assert torch.allclose(output.parts[f"interacted{k}/kl"], reference_kl(auxiliary, logits[k], tau), atol=1e-5)
        expected = expected + reference_ce(logits[k], data.targets) + reference_ce(auxiliary, data.targets)
        expected = expected + reference_kl(logits[k], auxiliary, tau) + reference_kl(auxiliary, logits[k], tau)
    assert torch.allclose(output.total, expected, atol=1e-5)


def test_gradients_reach_both_peers_and_every_part_of_the_interaction() -> None:
    _, scheme = built()
    scheme.loss(batch(), 0.0, 1).total.backward()
    assert list(scheme.trained()) == ["peer0", "peer1", "interaction"]
    for name, module in scheme.trained().items():
        for parameter_name, parameter in module.named_parameters():
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, (name, parameter_name)


def test_predictors_include_the_interacted_classifiers() -> None:
    _, scheme = built()
    predictors = scheme.predictors()
    assert list(predictors) == ["peer0", "peer1", "interacted0", "interacted1", "ensemble"]
    with torch.no_grad():
        assert predictors["interacted1"].eval()(batch().inputs).shape == (4, CLASSES)


@pytest.mark.parametrize("models, params", [
    (lambda: [small_cnn(1)], {}),
    (lambda: [small_cnn(1), small_cnn(2), small_cnn(3)], {}),
    (two_peers, {"reduction": 0}),
    (two_peers, {"tap": ["stage1", "stage2", "stage2"]}),
])
def test_bad_parameters_raise_mentor_errors(models, params) -> None:  # noqa: ANN001
    with pytest.raises(MentorError):
        SCHEMES.get("afi")(models(), **params)
