"""Several models as one predictor (survey §4.2: averaging teachers with identical importance weights).

As the teacher of a run it holds the teachers of multi-teacher distillation: tapping ``members.m`` gives
teacher ``m``'s logits (:mod:`mentor.teachers.weighting`), so every teacher is frozen and cached as one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mentor.errors import MentorError


class Ensemble(nn.Module):
    """Weighted average of the members' softmax outputs; ``forward`` returns its log (usable as logits).

    Args:
        members: models with the same number of outputs ``K``.
        weights: one non-negative weight per member (normalized to sum to 1); uniform by default.

    Shapes: inputs ``(B, ...)`` -> log-probabilities ``(B, K)``.
    """

    def __init__(self, members: Sequence[nn.Module], weights: Sequence[float] | None = None) -> None:
        super().__init__()
        if not members:
            raise MentorError("The 'members' parameter of Ensemble (recipe key 'teachers') must list at least one "
                              "teacher. Got an empty list; give one or more models")
        weights = list(weights) if weights is not None else [1.0] * len(members)
        if len(weights) != len(members) or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise MentorError(f"Ensemble weights must be {len(members)} non-negative numbers with a positive sum; "
                              f"got {weights}")
        self.members = nn.ModuleList(members)
        self.register_buffer("weights", torch.tensor(weights, dtype=torch.float32) / sum(weights))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        logits = [member(inputs) for member in self.members]
        for index, value in enumerate(logits):
            if value.shape != logits[0].shape:
                raise MentorError(f"teachers[{index}] outputs shape {tuple(value.shape[1:])} but teachers[0] "
                                  f"{tuple(logits[0].shape[1:])}; give every teacher the same num_classes")
        pairs = zip(self.weights, logits, strict=True)
        probabilities = sum(weight * torch.softmax(value, dim=1) for weight, value in pairs)
        return torch.log(probabilities.clamp_min(1e-12))
