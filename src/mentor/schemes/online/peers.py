"""What several online schemes share: parameter checks, mutual KL, ensembles, ramp-ups, distortions.

The mean teacher (a temporal average of a model) lives in :mod:`mentor.teachers.ema`.

Shapes: ``B`` samples, ``K`` classes; logits are ``(B, K)``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from mentor.batch import Outputs
from mentor.data.augment import translate
from mentor.errors import MentorError
from mentor.losses.functional import kl_with_temperature
from mentor.losses.objective import LossOutput
from mentor.registry import call_validated
from mentor.schemes.base import SCHEMES
from mentor.taps import run_with_taps
from mentor.teachers.ensemble import Ensemble  # noqa: F401  (re-exported for the schemes)

Factory = TypeVar("Factory", bound=Callable[..., Any])


def online_scheme(name: str, paper: str) -> Callable[[Factory], Factory]:
    """Register ``factory(models, **params)`` under ``name``, validating params from its type hints.

    An unknown parameter lists the valid ones; a wrong type or range raises a :class:`MentorError` naming
    the parameter, what is allowed and what was received.
    """

    def register(factory: Factory) -> Factory:
        @functools.wraps(factory)
        def create(models: list[nn.Module], **params: Any) -> Any:
            if not isinstance(models, (list, tuple)) or not all(isinstance(m, nn.Module) for m in models):
                raise MentorError(f"the {name} scheme takes a list of nn.Module peers; got {type(models).__name__}")
            return call_validated("scheme", name, factory, (list(models),), params)

        SCHEMES.register(name, paper)(create)
        return create  # type: ignore[return-value]

    return register


def check_count(models: Sequence[nn.Module], scheme: str, minimum: int, maximum: int | None = None) -> None:
    """Raise a :class:`MentorError` unless ``minimum <= len(models) <= maximum``."""
    if len(models) < minimum or (maximum is not None and len(models) > maximum):
        allowed = f"exactly {minimum}" if minimum == maximum else f"at least {minimum}"
        if maximum is not None and maximum != minimum:
            allowed = f"{minimum} to {maximum}"
        raise MentorError(f"the {scheme} scheme trains {allowed} models (peers: [...]); got {len(models)}")


def tap_paths(tap: str | Sequence[str], count: int, scheme: str) -> list[str]:
    """One module path per peer: a single path is used for every peer."""
    paths = [tap] * count if isinstance(tap, str) else list(tap)
    if len(paths) != count:
        raise MentorError(f"The 'tap' parameter of {scheme} needs one path per peer ({count}); got {len(paths)}")
    return paths


def forward(model: nn.Module, inputs: torch.Tensor, taps: Sequence[str] = ()) -> Outputs:
    """Logits and tapped tensors of a trained peer, with autograd."""
    logits, features = run_with_taps(model, inputs, taps, role="peer")
    return Outputs(logits, features)


def tapped(
    peers: Sequence[nn.Module], inputs: torch.Tensor, taps: Sequence[str], run: Callable[..., Outputs] = forward
) -> tuple[list[Outputs], list[torch.Tensor]]:
    """Each peer's outputs with its own tap recorded, and the tapped tensors, peer by peer."""
    outs = [run(peer, inputs, (tap,)) for peer, tap in zip(peers, taps, strict=True)]
    return outs, [out.features[tap] for out, tap in zip(outs, taps, strict=True)]


def probe(model: nn.Module, inputs: torch.Tensor, taps: Sequence[str] = ()) -> Outputs:
    """Outputs on a sample batch in eval mode without gradients (BatchNorm statistics stay unchanged)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return forward(model, inputs, taps)
    finally:
        model.train(was_training)


def soft_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """τ² · KL(p_T^τ || p_S^τ) with the teacher detached: the teacher is a target, not a learner."""
    return kl_with_temperature(student_logits, teacher_logits.detach(), temperature)


def mutual_kl(logits: Sequence[torch.Tensor], temperature: float) -> list[torch.Tensor]:
    """DML's mimicry term per peer k: 1/(K−1) Σ_{j≠k} τ² KL(p_j^τ || p_k^τ), other peers detached."""
    count = len(logits)
    return [
        sum(soft_kl(logits[k], logits[j], temperature) for j in range(count) if j != k) / (count - 1)
        for k in range(count)
    ]


def average_probabilities(logits: Sequence[torch.Tensor]) -> torch.Tensor:
    """log of the mean softmax of several ``(B, K)`` logits: an ensemble's logits."""
    return torch.stack([F.softmax(z, dim=1) for z in logits]).mean(0).clamp_min(1e-12).log()


REFERENCE_RAMPUP = 80 / 300
"""Share of the run the distillation weight takes to ramp up when no length is given: the released code of
ONE, OKDDip and FFL ramps up over 80 of its 300 epochs (``--consistency_rampup 80``)."""


def rampup_weight(epoch: float, epochs: int, length: float | None) -> float:
    """Mean-teacher ramp-up exp(−5 (1 − t/L)²) at epoch t, 1 from L on (and when L is 0).

    L = ``length`` epochs, or :data:`REFERENCE_RAMPUP` of the run's ``epochs`` when ``length`` is ``None``.
    """
    length = REFERENCE_RAMPUP * epochs if length is None else length
    if length <= 0:
        return 1.0
    progress = min(max(epoch / length, 0.0), 1.0)
    return math.exp(-5.0 * (1.0 - progress) ** 2)


def ramped(weight: float, parts: dict[str, torch.Tensor], distillation: dict[str, torch.Tensor]) -> LossOutput:
    """The loss of ``parts`` plus the ``distillation`` terms at the ramp-up ``weight``.

    The gradient-scale check sees the distillation terms at their full weight, the one they ramp up to.
    """
    output = LossOutput.of(parts | {name: weight * value for name, value in distillation.items()})
    output.terms.update(distillation)
    return output


@dataclass(frozen=True)
class Distortion:
    """Random whole-pixel shift (zero fill), horizontal flip and Gaussian noise, one draw per sample.

    A batch transform ``(inputs, generator) -> inputs`` like the loop's augmentations: a scheme that shows
    each peer its own distorted view hands the same transform to the peers trained alone, so both see
    the same augmentation. Shifts and flips apply to image batches ``(B, C, H, W)`` only; noise to any
    batch. Every random number comes from ``generator`` (on the CPU), so a seeded generator repeats the
    same views. Flips are off unless asked for: a mirrored digit or letter is another symbol, or none.
    """

    shift: int = 0
    flip: bool = False
    noise: float = 0.0

    @property
    def active(self) -> bool:
        """Whether the transform changes its inputs at all."""
        return self.shift > 0 or self.flip or self.noise > 0

    def __call__(self, inputs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        out, size = inputs, inputs.shape[0]
        if inputs.ndim == 4 and self.flip:
            flipped = (torch.rand(size, generator=generator) < 0.5).to(inputs.device)
            out = torch.where(flipped[:, None, None, None], out.flip(-1), out)
        if inputs.ndim == 4 and self.shift > 0:
            offsets = torch.randint(-self.shift, self.shift + 1, (2, size), generator=generator)
            out = translate(out, offsets[0], offsets[1])
        if self.noise > 0:
            out = out + self.noise * torch.randn(out.shape, generator=generator).to(out.device, out.dtype)
        return out


def resize_maps(maps: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Average-pool feature maps ``(B, C_i, H_i, W_i)`` to the smallest height and width among them."""
    for index, value in enumerate(maps):
        if value.ndim != 4:
            raise MentorError(f"peer {index}'s tapped tensor has shape {tuple(value.shape)}, not a feature map "
                              "(B, C, H, W); tap a convolutional stage (e.g. tap: stage2)")
    size = (min(m.shape[2] for m in maps), min(m.shape[3] for m in maps))
    return [m if tuple(m.shape[2:]) == size else F.adaptive_avg_pool2d(m, size) for m in maps]


class EvalSequential(nn.Sequential):
    """A sequential view that stays in eval mode whatever the caller asks (a predictor over frozen parts)."""

    def train(self, mode: bool = True) -> EvalSequential:
        return super().train(False)
