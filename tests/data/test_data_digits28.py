"""digits-28: scikit-learn's digits in MNIST's frame, and MNIST rendered like it."""

from __future__ import annotations

import pytest
import torch

import mentor
from mentor.data.digits28 import low_resolution, mnist_frame
from mentor.errors import MentorError


def test_digits28_has_mnists_shape_and_frame() -> None:
    splits = mentor.data.load("digits-28", validation=0.1, seed=0, normalize=False)
    assert splits.input_shape == (1, 28, 28) and splits.num_classes == 10
    assert len(splits.train) + len(splits.validation) + len(splits.test) == 1797
    inputs = splits.train.inputs
    assert inputs.min() >= 0.0 and inputs.max() <= 1.0
    border = torch.ones(28, 28, dtype=torch.bool)
    border[4:24, 4:24] = False
    assert inputs[:, 0, border].abs().max() == 0  # the digit lies in the centred 20x20 box
    assert inputs[:, 0, 4:24, 4:24].amax(dim=(1, 2)).min() > 0


def test_the_frame_resizes_bilinearly_into_the_centred_box() -> None:
    small = torch.tensor([[[[0.0, 1.0]]]])  # 1x2: a left-right ramp
    framed = mnist_frame(small)
    assert framed.shape == (1, 1, 28, 28) and framed[0, 0, :4].abs().max() == 0
    row = framed[0, 0, 14, 4:24]
    # align_corners=False: output pixel j samples x = (j + 0.5)·2/20 − 0.5; the first 5 clamp to 0, the last 5 to 1
    assert row[:5].tolist() == [0.0] * 5 and row[-5:].tolist() == [1.0] * 5
    assert row[5].item() == pytest.approx(0.05) and row[10].item() == pytest.approx(0.55)


def test_low_resolution_averages_and_quantizes_to_16_levels() -> None:
    image = torch.zeros(1, 1, 28, 28)
    image[0, 0, 4:24, 4:24] = 0.3
    drawn = low_resolution(image)
    assert drawn.shape == (1, 1, 28, 28)
    # 0.3 · 16 = 4.8 -> 5 levels: 5/16 inside the box, zero outside
    assert torch.allclose(drawn[0, 0, 4:24, 4:24], torch.full((20, 20), 5 / 16))
    assert drawn[0, 0, :4].abs().max() == 0
    with pytest.raises(MentorError, match=r"low-resolution rendering takes MNIST-like images \(N, 1, 28, 28\)"):
        low_resolution(torch.zeros(2, 1, 8, 8))
