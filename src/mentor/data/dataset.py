"""In-memory datasets and the train/validation/test bundle handed to training code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from mentor.batch import Inputs, count, device_of, move, take
from mentor.errors import MentorError


@dataclass
class ArrayDataset:
    """A dataset held in memory as two tensors.

    Attributes:
        inputs: ``float32`` samples, ``(N, C, H, W)`` for images or ``(N, D)`` for vectors; or named tensors
            sharing the first axis, e.g. token ids and attention mask ``(N, L)`` of texts.
        targets: ``int64`` class labels of shape ``(N,)`` (floating point for regression sets).
    """

    inputs: Inputs
    targets: torch.Tensor

    def __post_init__(self) -> None:
        sizes = {name: int(value.shape[0]) for name, value in self.inputs.items()} \
            if isinstance(self.inputs, dict) else {"inputs": int(self.inputs.shape[0])}
        for name, size in sizes.items():
            if size != self.targets.shape[0]:
                raise MentorError(f"inputs and targets differ in length: {size} {name} "
                                  f"vs {self.targets.shape[0]} targets")

    def __len__(self) -> int:
        return count(self.inputs)

    def __repr__(self) -> str:
        shown = {name: tuple(value.shape) for name, value in self.inputs.items()} \
            if isinstance(self.inputs, dict) else f"{tuple(self.inputs.shape)} {self.inputs.dtype}"
        return (f"ArrayDataset(n={len(self)}, inputs={shown}, targets={self.targets.dtype}, "
                f"device={device_of(self.inputs)})")

    def subset(self, indices: torch.Tensor) -> ArrayDataset:
        """The samples at ``indices`` (a 1-D integer tensor), in that order, as a new dataset."""
        indices = indices.to(device=device_of(self.inputs), dtype=torch.long)
        return ArrayDataset(take(self.inputs, indices), self.targets.index_select(0, indices))

    def to(self, device: torch.device | str) -> ArrayDataset:
        """A copy with both tensors on ``device`` (so batches are sliced there directly)."""
        return ArrayDataset(move(self.inputs, device), self.targets.to(device))


@dataclass
class Splits:
    """A dataset split into train, optional validation, and test parts.

    Attributes:
        name: The dataset name (registry name, or the directory for user folders).
        train: Training samples.
        validation: Samples carved out of the training part, or ``None`` when ``validation=0``.
        test: The held-out test samples.
        num_classes: Number of classes ``K``; labels are ``0..K-1`` (for float regression targets ``(N, D)``:
            the number of outputs D).
        input_shape: Shape of one sample, e.g. ``(1, 28, 28)``.
        mean: Per-channel mean subtracted from the inputs (``None`` when not normalized).
        std: Per-channel standard deviation the inputs were divided by (``None`` when not normalized).
        recipe: the recipe's ``data`` section that loads these splits again (set by :func:`mentor.data.load`).
    """

    name: str
    train: ArrayDataset
    validation: ArrayDataset | None
    test: ArrayDataset
    num_classes: int
    input_shape: tuple[int, ...]
    mean: torch.Tensor | None = None
    std: torch.Tensor | None = None
    recipe: dict[str, Any] | None = None


@dataclass
class RawData:
    """What a registered loader returns: the official train part and, when there is one, test part.

    Inputs are already ``float32`` in their final layout; targets are ``int64`` class labels, or ``float32``
    regression targets ``(N, D)`` with ``num_classes`` = D outputs. ``test_inputs`` and
    ``test_targets`` are ``None`` for datasets without an official test split.
    """

    train_inputs: torch.Tensor
    train_targets: torch.Tensor
    test_inputs: torch.Tensor | None
    test_targets: torch.Tensor | None
    num_classes: int
