"""Batch-level image augmentation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from mentor.errors import MentorError


def translate(images: Tensor, dy: Tensor, dx: Tensor) -> Tensor:
    """Shift each image by its own whole-pixel offset, filling uncovered pixels with zeros.

    Args:
        images: ``(B, C, H, W)`` batch.
        dy: ``(B,)`` integer shifts down (negative: up).
        dx: ``(B,)`` integer shifts right (negative: left).

    Returns:
        ``out[b, :, y, x] = images[b, :, y - dy[b], x - dx[b]]`` where that pixel exists, else 0.
    """
    b, _, h, w = images.shape
    pad = int(max(dy.abs().max(), dx.abs().max())) if b else 0
    padded = F.pad(images, (pad, pad, pad, pad))
    dy, dx = dy.to(images.device, torch.long), dx.to(images.device, torch.long)
    rows = torch.arange(h, device=images.device) - dy[:, None] + pad   # (B, H) rows to read
    cols = torch.arange(w, device=images.device) - dx[:, None] + pad   # (B, W) columns to read
    batch = torch.arange(b, device=images.device)[:, None, None]
    # Advanced indices around a slice put the batch/row/column axes first: (B, H, W, C).
    shifted = padded[batch, :, rows[:, :, None], cols[:, None, :]]
    return shifted.permute(0, 3, 1, 2).contiguous()


class Jitter:
    """Random translation by up to ``pixels`` in x and y, one offset per image, zero fill.

    The offsets are drawn from the generator passed in, so a seeded generator gives the same
    result every time.

    Args:
        pixels: Largest shift in each direction (0 leaves images unchanged).
    """

    def __init__(self, pixels: int = 2) -> None:
        if pixels < 0:
            raise MentorError(f"Jitter pixels must be 0 or more; got {pixels}")
        self.pixels = pixels

    def __call__(self, inputs: Tensor, generator: torch.Generator) -> Tensor:
        """Translate every image of the ``(B, C, H, W)`` batch ``inputs`` by a random offset."""
        if inputs.ndim != 4:
            raise MentorError(f"Jitter needs image batches (B, C, H, W); got shape {tuple(inputs.shape)}")
        if self.pixels == 0:
            return inputs
        offsets = torch.randint(-self.pixels, self.pixels + 1, (2, inputs.shape[0]),
                                generator=generator, device=generator.device)
        return translate(inputs, offsets[0], offsets[1])

    def __repr__(self) -> str:
        return f"Jitter(pixels={self.pixels})"
