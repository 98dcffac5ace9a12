"""A teacher that learns to teach (survey §4): MetaDistill's pilot update and meta-gradient teacher step.

Zhou, Xu & McAuley (2022), "BERT Learns to Teach: Knowledge Distillation with Meta Learning", ACL
(arXiv:2106.04570). With student weights θ_s, teacher weights θ_t, a training batch (x, y) and a quiz
batch (q, y_q) held out of the training split:

    pilot update   θ_s'(θ_t) = θ_s − λ ∇_θs L_S(x, y; θ_s, θ_t)                       (kept differentiable in θ_t)
    teacher step   θ_t ← θ_t − μ ∇_θt [ CE(y_q, S(q; θ_s'(θ_t))) + β · CE(y, T(x; θ_t)) ]

L_S is the student's distillation loss (the scheme's; see :mod:`mentor.schemes.meta_distill`). The
quiz loss reaches θ_t only through the pilot student's weights, a second-order gradient that autograd
computes because the pilot step is taken with ``create_graph=True``. The pilot student runs through
:func:`torch.func.functional_call` on copies of the student's buffers, so the real student (its
weights and BatchNorm statistics) is untouched by the pilot.

β (``teacher_ce_weight``) is 0 by default: the paper's released image-classification code steps the
teacher with the quiz loss alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

StudentLoss = Callable[[torch.Tensor], torch.Tensor]
"""The student's distillation loss L_S as a function of its logits ``(B, K)`` (teacher logits inside, with autograd)."""


def pilot_parameters(student: nn.Module, inputs: torch.Tensor, loss: StudentLoss,
                     step_size: float) -> dict[str, torch.Tensor]:
    """θ_s' = θ_s − λ ∇_θs L_S: one SGD step of the student, differentiable in whatever ``loss`` depends on.

    Args:
        student: the real student (its parameters are read, never changed).
        inputs: the training batch ``(B, ...)``.
        loss: L_S of the student's logits on ``inputs``.
        step_size: λ.

    Returns:
        the pilot student's parameters by name (tensors that carry the graph back to the teacher).
    """
    params = {name: p for name, p in student.named_parameters() if p.requires_grad}
    logits = functional_call(student, {**params, **_buffer_copies(student)}, (inputs,))
    grads = torch.autograd.grad(loss(logits), list(params.values()), create_graph=True, allow_unused=True)
    return {name: p if g is None else p - step_size * g for (name, p), g in zip(params.items(), grads, strict=True)}


def pilot_logits(student: nn.Module, params: dict[str, torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
    """The pilot student's logits on ``inputs``; the real student's buffers stay as they are."""
    return functional_call(student, {**params, **_buffer_copies(student)}, (inputs,))


def _buffer_copies(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of the buffers (BatchNorm statistics), so a functional forward in train mode updates the copies."""
    return {name: buffer.clone() for name, buffer in model.named_buffers()}


class LearningTeacher(nn.Module):
    """A teacher stepped by its own SGD optimizer with the meta-gradient, outside the loop's optimizers.

    It stays in eval mode (dropout off, BatchNorm statistics fixed: the teacher's forward passes only
    carry gradients). Its optimizer's state (momentum) is part of its ``state_dict``, so checkpoints and
    resumed runs keep it. ``forward`` gives the teacher's logits, as the wrapped model does.

    Args:
        model: the teacher (trained beforehand, as in the paper).
        lr: μ; momentum and weight_decay: of its SGD optimizer.
    """

    def __init__(self, model: nn.Module, lr: float, momentum: float, weight_decay: float) -> None:
        super().__init__()
        self.model = model.eval()
        self.model.requires_grad_(True)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=lr, momentum=momentum,
                                         weight_decay=weight_decay)

    def train(self, mode: bool = True) -> LearningTeacher:
        self.training = False
        self.model.eval()
        return self

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.model(inputs)

    def step(self, quiz_loss: torch.Tensor, own_loss: torch.Tensor | None = None, own_weight: float = 0.0) -> None:
        """θ_t ← θ_t − μ ∇_θt (quiz_loss + β · own_loss); the gradients stay in ``.grad`` until the next step."""
        objective = quiz_loss if own_loss is None or own_weight == 0.0 else quiz_loss + own_weight * own_loss
        params = [p for p in self.model.parameters() if p.requires_grad]
        grads = torch.autograd.grad(objective, params, allow_unused=True)
        for parameter, grad in zip(params, grads, strict=True):
            parameter.grad = torch.zeros_like(parameter) if grad is None else grad.detach()
        from mentor.engine.distributed import average_gradients, world  # here: the engine imports the schemes

        average_gradients(params, world())
        self.optimizer.step()

    def get_extra_state(self) -> dict[str, Any]:
        return self.optimizer.state_dict()

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state)


def teacher_cross_entropy(teacher_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The teacher's own CE on the training batch (the β term of the teacher step)."""
    return F.cross_entropy(teacher_logits, targets)
