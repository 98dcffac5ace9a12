"""Jitter and the translation it is built on."""

from __future__ import annotations

import pytest
import torch

from mentor.data import Jitter
from mentor.data.augment import translate
from mentor.errors import MentorError


def image() -> torch.Tensor:
    """One 1x3x4 image with values 1..12."""
    return torch.arange(1.0, 13.0).view(1, 1, 3, 4)


def test_translate_by_hand() -> None:
    batch = torch.cat([image(), image(), image()])
    out = translate(batch, dy=torch.tensor([1, 0, -1]), dx=torch.tensor([0, -2, 1]))
    down = [[0, 0, 0, 0], [1, 2, 3, 4], [5, 6, 7, 8]]
    left2 = [[3, 4, 0, 0], [7, 8, 0, 0], [11, 12, 0, 0]]
    up_right = [[0, 5, 6, 7], [0, 9, 10, 11], [0, 0, 0, 0]]
    assert out[:, 0].tolist() == [down, left2, up_right]


def test_translate_keeps_channels_together() -> None:
    batch = torch.cat([image(), -image()], dim=1)  # (1, 2, 3, 4)
    out = translate(batch, torch.tensor([1]), torch.tensor([1]))
    assert torch.equal(out[:, 1], -out[:, 0])
    assert out[0, 0, 1:, 1:].tolist() == [[1, 2, 3], [5, 6, 7]]


def test_jitter_is_a_bounded_shift_and_deterministic() -> None:
    batch = torch.rand(16, 2, 5, 5) + 1.0  # no zeros, so a shift is recognisable by its zero fill
    jitter = Jitter(pixels=2)
    out = jitter(batch, torch.Generator().manual_seed(0))
    assert torch.equal(out, jitter(batch, torch.Generator().manual_seed(0)))
    assert not torch.equal(out, jitter(batch, torch.Generator().manual_seed(1)))
    shifts = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)]
    seen = set()
    for b in range(16):
        one = batch[b : b + 1]
        matches = [(dy, dx) for dy, dx in shifts
                   if torch.equal(out[b : b + 1], translate(one, torch.tensor([dy]), torch.tensor([dx])))]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) > 1


def test_jitter_zero_and_bad_arguments() -> None:
    batch = torch.rand(2, 1, 4, 4)
    assert torch.equal(Jitter(0)(batch, torch.Generator()), batch)
    with pytest.raises(MentorError, match="pixels must be 0 or more"):
        Jitter(-1)
    with pytest.raises(MentorError, match=r"image batches \(B, C, H, W\)"):
        Jitter(1)(torch.rand(4, 3), torch.Generator())
