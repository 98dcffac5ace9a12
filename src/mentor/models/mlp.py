"""Multi-layer perceptrons with readable module paths (``fc1``, ``act1``, ..., ``head``)."""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict
from collections.abc import Sequence

from torch import nn

from mentor import limits


class MLP(nn.Sequential):
    """Flatten -> [Linear -> ReLU -> Dropout] × len(hidden) -> Linear head.

    Args:
        input_shape: per-sample input shape, e.g. ``(1, 28, 28)`` or ``(64,)``.
        num_classes: output width K.
        hidden: widths of the hidden layers.
        dropout: dropout probability after each hidden layer (0 disables it).
    """

    def __init__(
        self, input_shape: Sequence[int], num_classes: int, hidden: Sequence[int] = (256,), dropout: float = 0.0
    ) -> None:
        widths = [math.prod(input_shape), *hidden, num_classes]
        limits.check(len(hidden), limits.MODEL_LAYERS, "hidden layers")
        limits.check(sum((a + 1) * b for a, b in itertools.pairwise(widths)), limits.MODEL_PARAMETERS, "parameters")
        layers: OrderedDict[str, nn.Module] = OrderedDict(flatten=nn.Flatten())
        width = widths[0]
        for index, size in enumerate(hidden, start=1):
            layers[f"fc{index}"] = nn.Linear(width, size)
            layers[f"act{index}"] = nn.ReLU()
            if dropout > 0:
                layers[f"drop{index}"] = nn.Dropout(dropout)
            width = size
        layers["head"] = nn.Linear(width, num_classes)
        super().__init__(layers)
