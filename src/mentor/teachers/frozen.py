"""A frozen teacher, in one place: eval mode, no gradients, inference mode.

Wrapping a trained model in :class:`FrozenTeacher` guarantees that distillation never changes it:
its parameters have ``requires_grad=False``, it stays in eval mode even when the scheme calls
``.train()`` (so BatchNorm running statistics and dropout are fixed), and its forward pass runs under
``torch.inference_mode``. Results are cloned out of inference mode so that loss terms may save them
for the backward pass. It is never handed to an optimizer nor wrapped in DistributedDataParallel.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from mentor.batch import Outputs
from mentor.taps import run_with_taps


class FrozenTeacher(nn.Module):
    """A teacher model that cannot change. ``teacher(x)`` returns logits; :meth:`outputs` also taps."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.model.eval()
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
            parameter.grad = None  # a model trained by an earlier phase may still hold its last gradients

    def train(self, mode: bool = True) -> FrozenTeacher:
        """Stay in eval mode whatever the caller asks."""
        self.training = False
        self.model.eval()
        return self

    def outputs(self, inputs: torch.Tensor, taps: Iterable[str] = ()) -> Outputs:
        """Logits and the tapped tensors (paths ending in ``:input`` tap a module's input)."""
        with torch.inference_mode():
            logits, features = run_with_taps(self.model, inputs, taps, role="teacher")
        return Outputs(logits.clone(), {path: value.clone() for path, value in features.items()})

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.outputs(inputs).logits


def freeze(model: nn.Module) -> FrozenTeacher:
    """``model`` as a :class:`FrozenTeacher` (returned unchanged if it already is one)."""
    return model if isinstance(model, FrozenTeacher) else FrozenTeacher(model)
