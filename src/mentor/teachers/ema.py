"""The mean teacher: a temporal average of a model's weights, in one place.

Tarvainen & Valpola (2017), "Mean teachers are better role models: Weight-averaged consistency targets
improve semi-supervised deep learning results", NeurIPS, arXiv:1703.01780, eq. (2):

    θ'_t = α_t θ'_{t−1} + (1 − α_t) θ_t        α_t = min(1 − 1/(t + 1), α)

θ are the weights of the trained model after its t-th optimizer step (t = 0, 1, ...), θ' the teacher's,
every tensor of any shape averaged element-wise. The warm-up α_t (the released code's
``update_ema_variables``) makes θ'_0 a copy of θ_0 and θ' the plain average of every step so far until
t = 1/(1 − α), after which the average forgets at the rate α: it spans about the last 1/(1 − α) steps.

:class:`EMATeacher` holds the averaged copy of a model. It is never stepped by an optimizer and never
learns by gradient: its parameters have ``requires_grad=False``, it stays in eval mode whatever the
caller asks (dropout off, BatchNorm reads its running statistics) and its forward pass runs without
autograd, like :class:`mentor.teachers.FrozenTeacher`. Unlike a frozen teacher its weights do change,
but only through :meth:`EMATeacher.update`; a scheme lists it among its ``trained()`` modules so that
its weights and step count are checkpointed and resumed, and the loop never hands it to an optimizer
(it has no parameter that requires a gradient).

BatchNorm buffers: floating-point buffers (running mean and variance) are averaged with the same α_t
as the weights, integer ones (``num_batches_tracked``) are copied. The teacher runs in eval mode, so it
normalizes with running statistics; averaging them gives statistics gathered over the same span of
steps as the averaged weights they are used with (the choice of timm's ``ModelEmaV2``), whereas copying
the model's latest statistics would pair the averaged weights with statistics measured for other ones.
(The released PyTorch code averages the weights only and lets the teacher, run in train mode, gather
its own statistics; a teacher in eval mode cannot.)
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from mentor.batch import Batch
from mentor.errors import MentorError


def warmup_decay(step: int, decay: float) -> float:
    """α_t = min(1 − 1/(t + 1), α): 0 at step 0 (a copy), then the plain average, then ``decay``."""
    return min(1.0 - 1.0 / (step + 1.0), decay)


def check_decay(decay: float, owner: str = "EMATeacher") -> float:
    """``decay`` as a float, or a :class:`MentorError` unless it lies in [0, 1)."""
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0.0 <= decay < 1.0:
        raise MentorError(f"The 'decay' parameter of {owner} must be a float in [0, 1) (e.g. 0.999); got {decay!r}; "
                          "α = 1 averages nothing in, so pick a value below 1")
    return float(decay)


def steps_per_epoch(batch: Batch) -> int | None:
    """Optimizer steps in one epoch of the loop that drew ``batch`` (``None`` when it does not say)."""
    if not batch.dataset_size or len(batch) == 0:
        return None
    return math.ceil(batch.dataset_size / len(batch))


class EMATeacher(nn.Module):
    """The temporal mean of ``model`` (a deep copy; ``model`` itself is left alone).

    ``teacher(x)`` returns the averaged model's logits without autograd; ``teacher.model`` is the
    averaged network itself (for schemes that run parts of it). ``update(model)`` after every optimizer
    step of ``model``; ``updates`` counts the steps averaged in (a buffer: checkpointed with the weights).
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        super().__init__()
        self.decay = check_decay(decay)
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        for parameter in self.model.parameters():
            parameter.grad = None
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    def span_epochs(self, epochs: float, batch: Batch) -> None:
        """Set α so that the average spans ``epochs`` epochs: α = 1 − 1/(epochs · S), S steps per epoch
        of the loop that drew ``batch`` (unchanged when the batch does not tell its dataset's size)."""
        steps = steps_per_epoch(batch)
        if steps is not None:
            self.decay = 1.0 - 1.0 / max(epochs * steps, 1.0)

    def train(self, mode: bool = True) -> EMATeacher:
        """Stay in eval mode whatever the caller asks."""
        self.training = False
        self.model.eval()
        return self

    @torch.no_grad()
    def update(self, source: nn.Module, step: int | None = None) -> None:
        """Average ``source`` in: θ' ← α_t θ' + (1 − α_t) θ, t = ``step`` (default: the updates so far).

        ``source`` must have the averaged model's parameter and buffer names (the model it was copied from).
        """
        t = int(self.updates) if step is None else step
        alpha = warmup_decay(t, self.decay)
        mean = dict(self.model.named_parameters()) | dict(self.model.named_buffers())
        current = list(source.named_parameters()) + list(source.named_buffers())
        if {name for name, _ in current} != set(mean):
            raise MentorError(f"EMATeacher.update needs the model the teacher averages (a {type(self.model).__name__} "
                              f"with the same parameters); got a {type(source).__name__} with other ones")
        for name, value in current:
            if value.is_floating_point():
                mean[name].mul_(alpha).add_(value.detach(), alpha=1.0 - alpha)
            else:
                mean[name].copy_(value)
        self.updates += 1

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        with torch.no_grad():
            return self.model(inputs)
