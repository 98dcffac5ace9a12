"""A regression student with two heads over one feature extractor (Takamoto et al. 2020's multi-task student).

Takamoto, Morishita & Imaoka (2020), "An Efficient Method of Training Small Models for Regression
Problems with Knowledge Distillation", IEEE MIPR (arXiv:2002.12597): one head regresses the (noisy)
ground truth, the other the teacher's predictions; training both shapes the shared features, and the
ground-truth head alone is used at inference. Shapes: features ``(B, F)`` from the body, each head
``(B, D)``. The forward pass returns the ground-truth head; the teacher head runs in every pass so
that a loss reads it by its module path ``teacher_head`` (see the ``outlier-rejection`` method).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mentor.models.mlp import MLP


class TwoHeadRegressor(nn.Module):
    """``body`` (inputs -> features ``(B, features)``), then ``ground_truth`` and ``teacher_head`` linear heads.

    Args:
        body: any module mapping inputs to flat features ``(B, features)``.
        features: the body's feature width F.
        outputs: D, the number of regression targets.
    """

    def __init__(self, body: nn.Module, features: int, outputs: int) -> None:
        super().__init__()
        self.body = body
        self.ground_truth = nn.Linear(features, outputs)
        self.teacher_head = nn.Linear(features, outputs)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        features = self.body(inputs)
        self.teacher_head(features)  # recorded by a tap on 'teacher_head'; not part of the prediction
        return self.ground_truth(features)


def two_head_mlp(input_shape: Sequence[int], num_classes: int, hidden: Sequence[int] = (16,),
                 dropout: float = 0.0) -> TwoHeadRegressor:
    """An MLP body (``hidden`` widths; default as ``mlp-tiny``) under two heads of ``num_classes`` outputs."""
    body = MLP(input_shape, num_classes, hidden, dropout)
    body.head = nn.Identity()
    return TwoHeadRegressor(body, hidden[-1], num_classes)
