"""The values that flow through one training step: a batch and what a model produced on it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, TypeAlias

import torch
from torch import nn

Inputs: TypeAlias = torch.Tensor | Mapping[str, torch.Tensor]
"""What a model takes: one tensor ``(B, ...)``, or named tensors sharing the batch axis (a tokenizer's
``input_ids``, ``attention_mask``, ``token_type_ids``, each ``(B, L)``), passed as keyword arguments."""


def count(inputs: Inputs) -> int:
    """The number of samples B of ``inputs``."""
    if isinstance(inputs, Mapping):
        return int(next(iter(inputs.values())).shape[0])
    return int(inputs.shape[0])


def take(inputs: Inputs, index: torch.Tensor) -> Inputs:
    """The samples at ``index`` (1-D integer tensor, on the inputs' device), in that order."""
    if isinstance(inputs, Mapping):
        return {name: value.index_select(0, index) for name, value in inputs.items()}
    return inputs.index_select(0, index)


def cut(inputs: Inputs, start: int, stop: int | None = None) -> Inputs:
    """The samples ``start:stop`` (a view, no copy)."""
    if isinstance(inputs, Mapping):
        return {name: value[start:stop] for name, value in inputs.items()}
    return inputs[start:stop]


def move(inputs: Inputs, device: torch.device | str) -> Inputs:
    """``inputs`` on ``device``."""
    if isinstance(inputs, Mapping):
        return {name: value.to(device) for name, value in inputs.items()}
    return inputs.to(device)


def device_of(inputs: Inputs) -> torch.device:
    """The device ``inputs`` live on."""
    return next(iter(inputs.values())).device if isinstance(inputs, Mapping) else inputs.device


def model_device(model: nn.Module, default: torch.device | None = None) -> torch.device:
    """Where ``model``'s first parameter or buffer lives (``default``, else the CPU, for one with neither)."""
    first = next(chain(model.parameters(), model.buffers()), None)
    return first.device if first is not None else default or torch.device("cpu")


def sample_shape(inputs: Inputs) -> tuple[int, ...]:
    """The shape of one sample: ``(C, H, W)``, ``(D,)``, or for named tensors the first one's (``(L,)``)."""
    first = next(iter(inputs.values())) if isinstance(inputs, Mapping) else inputs
    return tuple(first.shape[1:])


def tensors(inputs: Inputs) -> dict[str, torch.Tensor]:
    """``inputs`` as named tensors (a single tensor is named ``""``), in a stable order."""
    return dict(sorted(inputs.items())) if isinstance(inputs, Mapping) else {"": inputs}


def call(model: nn.Module, inputs: Inputs) -> Any:
    """``model(**inputs)`` for named tensors, ``model(inputs)`` for one tensor."""
    return model(**inputs) if isinstance(inputs, Mapping) else model(inputs)


@dataclass
class Batch:
    """One mini-batch.

    Attributes:
        inputs: model inputs, ``(B, ...)`` or named tensors (see :data:`Inputs`).
        targets: labels ``(B,)`` (int64) or regression targets.
        indices: positions of the samples in their dataset ``(B,)`` (used by memory banks), if known.
        dataset_size: number of samples in the dataset the batch was drawn from, if known.
    """

    inputs: Inputs
    targets: torch.Tensor
    indices: torch.Tensor | None = None
    dataset_size: int | None = None

    def __len__(self) -> int:
        return count(self.inputs)

    @property
    def device(self) -> torch.device:
        """The device the inputs live on."""
        return device_of(self.inputs)


@dataclass
class Outputs:
    """What one model produced on a batch: its logits ``(B, K)`` and the tensors tapped by path."""

    logits: torch.Tensor
    features: dict[str, torch.Tensor] = field(default_factory=dict)

    def get(self, path: str | None) -> torch.Tensor:
        """The tapped tensor at ``path``; ``None`` or ``"logits"`` means the logits."""
        if path is None or path == "logits":
            return self.logits
        return self.features[path]
