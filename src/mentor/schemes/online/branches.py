"""A multi-branch network built from one ``nn.Sequential``: shared low layers, copied upper layers.

ONE (Lan et al. 2018) and PCL (Wu & Gong 2021) train m branches on a shared trunk. Given a sequential
model and the name of the child where branching starts, the children before it form the trunk and the
children from it on form branch 0; branches 1..m−1 are copies of branch 0 with freshly initialised
weights (each branch starts from its own random point, as in the papers). Branch 0 keeps the model's own
modules, so the model passed in is trained as "trunk + branch 0". The last child of a branch is its
classifier; what enters it is the branch's feature vector.
"""

from __future__ import annotations

import copy
from collections import OrderedDict

import torch
from torch import nn

from mentor.errors import MentorError, nearest


def reinitialize(module: nn.Module) -> nn.Module:
    """Draw fresh weights for every submodule that can reset itself (convolutions, linear, norms)."""
    for child in module.modules():
        reset = getattr(child, "reset_parameters", None)
        if callable(reset):
            reset()
    return module


class MultiBranch(nn.Module):
    """A trunk ``(B, ...) -> shared`` and ``m`` branches ``shared -> (B, K)``."""

    def __init__(self, trunk: nn.Sequential, branches: list[nn.Sequential]) -> None:
        super().__init__()
        self.trunk = trunk
        self.branches = nn.ModuleList(branches)

    @classmethod
    def from_sequential(cls, model: nn.Module, split: str, count: int, scheme: str) -> MultiBranch:
        """Split ``model`` before its child ``split`` into a trunk and ``count`` branches."""
        if not isinstance(model, nn.Sequential):
            raise MentorError(f"the {scheme} scheme builds its branches from an nn.Sequential model (children in "
                              f"order); got {type(model).__name__}; use a model such as cnn-small")
        names = [name for name, _ in model.named_children()]
        if split not in names[1:]:
            close = nearest(split, names[1:])
            hint = f"; nearest: {', '.join(close)}" if close else ""
            raise MentorError(f"The 'split' parameter of {scheme} must name a child of the model after the first "
                              f"one (valid: {', '.join(names[1:])}). Got {split!r} instead{hint}.")
        at = names.index(split)
        children = list(model.named_children())
        trunk = nn.Sequential(OrderedDict(children[:at]))
        first = nn.Sequential(OrderedDict(children[at:]))
        copies = [reinitialize(copy.deepcopy(first)) for _ in range(count - 1)]
        return cls(trunk, [first, *copies])

    def branch(self, index: int, shared: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Feature vector ``(B, D)`` (the classifier's input, flattened) and logits ``(B, K)`` of a branch."""
        layers = self.branches[index]
        features = layers[:-1](shared)
        return features.flatten(1), layers[-1](features)

    def peer(self, index: int) -> nn.Sequential:
        """Trunk + branch ``index`` as one model (a predictor that shares these weights)."""
        return nn.Sequential(self.trunk, self.branches[index])
