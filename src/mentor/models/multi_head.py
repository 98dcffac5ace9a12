"""A multi-task student: one shared body, one linear head per task (MuST's student, Ghiasi et al. 2021).

The body maps inputs ``(B, C, H, W)`` to features ``(B, F)``; head ``t`` maps them to ``(B, D_t)``: class logits
(``D_t = K_t``) for a classification task, ``D_t`` values for a regression task. The forward pass returns every
head's output as a dict ``{task: (B, D_t)}``; :class:`TaskHead` is the view of one task (a plain model
returning one tensor), which is what evaluation and export read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from mentor.errors import MentorError
from mentor.models.cnn import CNN
from mentor.models.mlp import MLP


class MultiHead(nn.Module):
    """``body`` (inputs -> features ``(B, features)``) under ``heads`` (task name -> output width).

    Args:
        body: any module mapping inputs to flat features ``(B, features)``.
        features: the body's feature width F.
        heads: task name -> its head's output width D_t, in task order.
    """

    def __init__(self, body: nn.Module, features: int, heads: Mapping[str, int]) -> None:
        super().__init__()
        if not heads:
            raise MentorError("a multi-head model needs at least one head; give heads as {task: outputs}")
        bad = {name: width for name, width in heads.items() if not isinstance(width, int) or width < 1}
        if bad:
            raise MentorError(f"every head of a multi-head model has an output width >= 1; got {bad}")
        self.body = body
        self.heads = nn.ModuleDict({name: nn.Linear(features, width) for name, width in heads.items()})

    @property
    def tasks(self) -> dict[str, int]:
        """Task name -> output width, in order."""
        return {name: head.out_features for name, head in self.heads.items()}  # type: ignore[misc]

    def forward(self, inputs: torch.Tensor) -> dict[str, torch.Tensor]:  # type: ignore[override]
        features = self.body(inputs)
        return {name: head(features) for name, head in self.heads.items()}


class TaskHead(nn.Module):
    """The view of one task of a :class:`MultiHead`: ``inputs -> (B, D_t)`` (shares the model's weights)."""

    def __init__(self, model: MultiHead, task: str) -> None:
        super().__init__()
        if task not in model.heads:
            raise MentorError(f"the multi-head model has no head {task!r} (its heads: {', '.join(model.heads)})")
        self.model = model
        self.task = task

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.model.heads[self.task](self.model.body(inputs))


def multi_head_cnn(input_shape: Sequence[int], num_classes: int = 10, channels: Sequence[int] = (16, 32),
                   depth: int = 1, heads: Mapping[str, int] | None = None) -> MultiHead:
    """A :class:`~mentor.models.cnn.CNN` body (``channels``, ``depth``) under one head per task.

    ``heads`` defaults to one head ``output`` of ``num_classes`` outputs; a multi-task run fills it from its tasks.
    """
    body = CNN(input_shape, 1, channels, depth)
    features = body.head.in_features
    body.head = nn.Identity()
    return MultiHead(body, features, dict(heads) if heads is not None else {"output": num_classes})


def multi_head_mlp(input_shape: Sequence[int], num_classes: int = 10, hidden: Sequence[int] = (256, 256),
                   dropout: float = 0.0, heads: Mapping[str, int] | None = None) -> MultiHead:
    """An :class:`~mentor.models.mlp.MLP` body (``hidden`` widths, default as ``mlp-medium``) under one head per
    task (``heads`` as for :func:`multi_head_cnn`)."""
    if not hidden:
        raise MentorError("a multi-head MLP needs at least one hidden layer (its features); give hidden: [256]")
    body = MLP(input_shape, 1, hidden, dropout)
    body.head = nn.Identity()
    return MultiHead(body, hidden[-1], dict(heads) if heads is not None else {"output": num_classes})
