"""The distillation ramp-up of ONE, FFL, OKDDip and PCL: the released code's 80 of 300 epochs by default."""

from __future__ import annotations

import pytest
import torch

from mentor.schemes import SCHEMES
from mentor.schemes.online.peers import rampup_weight
from tests.schemes.conftest import small_cnn
from tests.schemes.references import sample_batch


@pytest.mark.parametrize(("epoch", "epochs", "length", "expected"), [
    (0.0, 10, None, 0.006738),   # exp(−5)
    (1.0, 10, None, 0.141830),   # L = 80/300 · 10 = 2.6667: exp(−5 (1 − 0.375)²)
    (2.0, 10, None, 0.731616),   # exp(−5 (1 − 0.75)²)
    (3.0, 10, None, 1.0),        # past the ramp-up
    (1.0, 10, 2.0, 0.286505),    # exp(−5 (1 − 0.5)²)
    (0.0, 10, 0.0, 1.0),         # no ramp-up
])
def test_rampup_weight_against_hand_values(epoch: float, epochs: int, length: float | None, expected: float) -> None:
    assert rampup_weight(epoch, epochs, length) == pytest.approx(expected, abs=1e-6)


def one_network() -> list:
    return [small_cnn(1)]


SCHEMES_WITH_RAMPUP = {
    "one": (one_network, {"split": "stage2", "branches": 2}, "branch0/kl"),
    "ffl": (lambda: [small_cnn(1), small_cnn(2)], {"tap": "stage2"}, "peer0/kl"),
    "okddip": (lambda: [small_cnn(1), small_cnn(2), small_cnn(3)], {"attention_dim": 4}, "leader/kl"),
    "pcl": (one_network, {"split": "stage2", "branches": 2, "shift": 0}, "branch0/ensemble_kl"),
}


@pytest.mark.parametrize("name", sorted(SCHEMES_WITH_RAMPUP))
def test_distillation_terms_ramp_up_over_the_reference_share_of_the_run(name: str) -> None:
    models, params, part = SCHEMES_WITH_RAMPUP[name]
    scheme, batch = SCHEMES.get(name)(models(), **params), sample_batch(4, size=6)
    scheme.setup(batch)
    scheme.train()
    with torch.no_grad():
        outputs = [scheme.loss(batch, epoch, 10) for epoch in (0.0, 1.0, 3.0)]
    start, ramped, done = (float(output.parts[part]) for output in outputs)
    assert done > 0
    assert start / done == pytest.approx(0.006738, rel=1e-3)
    assert ramped / done == pytest.approx(0.141830, rel=1e-3)
    # the gradient-scale check sees the term at the full weight it ramps up to
    assert float(outputs[0].terms[part]) == pytest.approx(done, rel=1e-5)
