"""A frozen teacher, in one place: eval mode, no gradients, inference mode.

Wrapping a trained model in :class:`FrozenTeacher` guarantees that distillation never changes its
weights: its parameters have ``requires_grad=False``, it stays in eval mode even when the scheme calls
``.train()`` (so BatchNorm running statistics and dropout are fixed), and its forward pass runs under
``torch.inference_mode``. Results are cloned out of inference mode so that loss terms may save them
for the backward pass. It is never handed to an optimizer nor wrapped in DistributedDataParallel.

With ``precision = "bf16"`` the forward pass runs under bfloat16 autocast on the inputs' device and the
outputs are handed on as float32 (the loop sets it from ``FitSettings.teacher_precision``).

The caller's model is given back as it was handed in: :meth:`FrozenTeacher.release` restores each
module's train/eval mode and each parameter's ``requires_grad``; :func:`mentor.engine.fit` holds the
teachers of a scheme while it trains and releases them when it ends, also on an error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Literal

import torch
from torch import nn

from mentor.batch import Inputs, Outputs, device_of, model_device, move
from mentor.taps import run_with_taps


class FrozenTeacher(nn.Module):
    """A teacher model that cannot change. ``teacher(x)`` returns logits; :meth:`outputs` also taps."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.precision: Literal["fp32", "bf16"] = "fp32"
        self._handed_in: tuple[list[bool], list[bool]] | None = None
        self.hold()

    def hold(self) -> None:
        """Freeze the model (eval mode, no gradients), remembering how it was; nothing to do when held."""
        if self._handed_in is not None:
            return
        modules, parameters = list(self.model.modules()), list(self.model.parameters())
        self._handed_in = ([m.training for m in modules], [p.requires_grad for p in parameters])
        self.model.eval()
        for parameter in parameters:
            parameter.requires_grad_(False)
            parameter.grad = None  # a model trained by an earlier phase may still hold its last gradients

    def release(self) -> None:
        """Give the model back as it was handed in: each module's mode, each parameter's ``requires_grad``."""
        if self._handed_in is None:
            return
        modes, requires_grad = self._handed_in
        for module, mode in zip(self.model.modules(), modes, strict=True):
            module.training = mode
        for parameter, flag in zip(self.model.parameters(), requires_grad, strict=True):
            parameter.requires_grad_(flag)
        self._handed_in = None

    def train(self, mode: bool = True) -> FrozenTeacher:
        """Stay in eval mode whatever the caller asks."""
        self.training = False
        self.model.eval()
        return self

    def outputs(self, inputs: Inputs, taps: Iterable[str] = ()) -> Outputs:
        """Logits and the tapped tensors (paths ending in ``:input`` tap a module's input)."""
        inputs = move(inputs, model_device(self.model, device_of(inputs)))  # batches read from a Dataset on the CPU
        bf16 = self.precision == "bf16"
        autocast = torch.autocast(device_of(inputs).type, torch.bfloat16) if bf16 else contextlib.nullcontext()
        with torch.inference_mode(), autocast:
            logits, features = run_with_taps(self.model, inputs, taps, role="teacher")

        def out(value: torch.Tensor) -> torch.Tensor:  # a copy outside inference mode, float32 after bf16
            return value.to(torch.float32, copy=True) if bf16 and value.is_floating_point() else value.clone()

        return Outputs(out(logits), {path: out(value) for path, value in features.items()})

    def forward(self, inputs: Inputs) -> torch.Tensor:  # type: ignore[override]
        return self.outputs(inputs).logits


def freeze(model: nn.Module) -> FrozenTeacher:
    """``model`` as a :class:`FrozenTeacher` (returned unchanged if it already is one)."""
    return model if isinstance(model, FrozenTeacher) else FrozenTeacher(model)


def teachers_in(module: nn.Module) -> list[FrozenTeacher]:
    """The frozen teachers inside ``module`` (a scheme), each once."""
    return list({id(m): m for m in module.modules() if isinstance(m, FrozenTeacher)}.values())
