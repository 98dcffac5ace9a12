"""The values that flow through one training step: a batch and what a model produced on it."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Batch:
    """One mini-batch.

    Attributes:
        inputs: model inputs, ``(B, ...)``.
        targets: labels ``(B,)`` (int64) or regression targets.
        indices: positions of the samples in their dataset ``(B,)`` (used by memory banks), if known.
        dataset_size: number of samples in the dataset the batch was drawn from, if known.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    indices: torch.Tensor | None = None
    dataset_size: int | None = None

    def __len__(self) -> int:
        return int(self.inputs.shape[0])


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
