"""A small family of plain CNNs for grey or colour images of any size (8x8 digits to 32x32).

Module paths: ``stage1`` ... ``stageN`` (each conv-BN-ReLU × depth, then 2×2 max-pooling while the map
is larger than 1×1), ``pool`` (global average), ``flatten``, ``head``. Tap ``stageK`` for a feature map
``(B, C_K, H_K, W_K)`` or ``stageK.relu1:input`` for a pre-activation.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Sequence

from torch import nn

from mentor import limits
from mentor.errors import MentorError


def _stage(in_channels: int, out_channels: int, depth: int, pool: bool) -> nn.Sequential:
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for index in range(1, depth + 1):
        layers[f"conv{index}"] = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        layers[f"bn{index}"] = nn.BatchNorm2d(out_channels)
        layers[f"relu{index}"] = nn.ReLU()
        in_channels = out_channels
    if pool:
        layers["pool"] = nn.MaxPool2d(2, ceil_mode=True)
    return nn.Sequential(layers)


class CNN(nn.Sequential):
    """Stages of 3×3 convolutions with BatchNorm, global average pooling and a linear head.

    Args:
        input_shape: ``(C, H, W)``; a flat ``(D,)`` input is not accepted (use an MLP).
        num_classes: output width K.
        channels: output channels of each stage.
        depth: convolutions per stage.
        dropout: dropout before the head (0 disables it).
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        channels: Sequence[int] = (16, 32),
        depth: int = 1,
        dropout: float = 0.0,
    ) -> None:
        if len(input_shape) != 3:
            raise MentorError(f"a CNN needs image inputs (C, H, W); got per-sample shape {tuple(input_shape)}: "
                              "use an mlp model for vectors")
        limits.check(len(channels) * depth, limits.MODEL_LAYERS, "convolutions")
        widths = [input_shape[0], *channels]
        convolutions = sum(9 * a * b + 9 * (depth - 1) * b * b + 2 * depth * b for a, b in itertools.pairwise(widths))
        limits.check(convolutions + (widths[-1] + 1) * num_classes, limits.MODEL_PARAMETERS, "parameters")
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        in_channels, size = input_shape[0], min(input_shape[1:])
        for index, width in enumerate(channels, start=1):
            layers[f"stage{index}"] = _stage(in_channels, width, depth, pool=size > 1)
            in_channels, size = width, (size + 1) // 2 if size > 1 else size
        layers["pool"] = nn.AdaptiveAvgPool2d(1)
        layers["flatten"] = nn.Flatten()
        if dropout > 0:
            layers["drop"] = nn.Dropout(dropout)
        layers["head"] = nn.Linear(in_channels, num_classes)
        super().__init__(layers)
