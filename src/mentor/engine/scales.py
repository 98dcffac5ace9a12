"""The gradient-scale check: how hard each loss term pulls on the trained models, next to cross-entropy.

A term's scale is part of its correctness: a weight tuned for another network, a sum where a mean was
meant or a missing normalisation constant shows up as a term whose gradient is hundreds of times that of
the cross-entropy (it alone trains the model) or a thousandth of it (it does nothing). In the first steps
of a stage (of its second epoch when the teachers learn alongside the students, as peers do) the loop
measures, for every term of the scheme's :class:`~mentor.losses.LossOutput`,

    ratio_i = ‖∇_θ (w_i · L_i)‖₂ / ‖∇_θ L_CE‖₂

over the parameters θ of the models being evaluated (the student, or the peers), where w_i is the term's
full weight (after any warm-up) and L_CE the plain cross-entropy of the same predictions. The median
ratio over the probed steps is logged as ``scale/<term>`` in that epoch's metrics record, and a term
outside [1/1000, 50] is named in one warning line when it has other terms to outweigh or be outweighed by
(a stage that trains one term alone, such as a hint pre-training stage, is logged but not warned about).
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Iterable

import torch
from torch import nn

from mentor.losses.objective import LossOutput

DOMINANT = 50.0
"""A term whose gradient exceeds the cross-entropy's by more than this factor is reported."""
VANISHING = 1e-3
"""A term whose gradient is below this fraction of the cross-entropy's is reported."""


class ScaleWarning(UserWarning):
    """A loss term dominates or vanishes next to the cross-entropy at the start of training."""


def parameters(models: Iterable[nn.Module]) -> list[nn.Parameter]:
    """The trainable parameters of ``models``, each once (ensembles share their members' parameters)."""
    found: dict[int, nn.Parameter] = {}
    for model in models:
        for parameter in model.parameters():
            if parameter.requires_grad:
                found.setdefault(id(parameter), parameter)
    return list(found.values())


def _norm(value: torch.Tensor, params: list[nn.Parameter]) -> float | None:
    """‖∇ value‖₂ over ``params``; ``None`` when ``value`` does not depend on them."""
    if not value.requires_grad or not params:
        return None
    grads = [g for g in torch.autograd.grad(value.float(), params, retain_graph=True, allow_unused=True)
             if g is not None]
    if not grads:
        return None
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads])))


def measure(output: LossOutput, params: list[nn.Parameter]) -> dict[str, float]:
    """Each term's gradient norm over ``params`` divided by the reference cross-entropy's.

    Terms that do not reach ``params`` (a discriminator's own loss, a paraphraser's reconstruction) are
    left out, and so is everything when there is no reference or its gradient is zero.
    """
    loss = output.reference_loss()
    if loss is None:
        return {}
    reference = _norm(loss, params)
    if not reference:
        return {}
    ratios = {}
    for name, value in output.terms.items():
        norm = _norm(value, params)
        if norm is not None:
            ratios[name] = norm / reference
    return ratios


class Probe:
    """Collects the ratios of the first ``steps`` steps of a stage and reports their medians once."""

    def __init__(self, steps: int) -> None:
        self.steps = steps
        self.samples: dict[str, list[float]] = {}
        self.taken = 0
        self.weights: dict[str, float] = {}

    @property
    def active(self) -> bool:
        return self.taken < self.steps

    def take(self, output: LossOutput, params: list[nn.Parameter]) -> None:
        self.taken += 1
        self.weights.update(output.weights)
        for name, ratio in measure(output, params).items():
            self.samples.setdefault(name, []).append(ratio)

    def ratios(self) -> dict[str, float]:
        """The median ratio of each term over the probed steps."""
        return {name: statistics.median(values) for name, values in self.samples.items()}

    def report(self, where: str) -> dict[str, float]:
        """The median ratios, with a :class:`ScaleWarning` for every term out of range (cross-entropy aside)."""
        ratios = self.ratios()
        if len(ratios) < 2:
            return ratios
        for name, ratio in ratios.items():
            if "ce" in name.split("/") or not math.isfinite(ratio):
                continue
            message = problem(name, ratio, self.weights.get(name))
            if message:
                warnings.warn(f"{where}: {message}", ScaleWarning, stacklevel=2)
        return ratios


def problem(name: str, ratio: float, weight: float | None) -> str | None:
    """One line naming a term that dominates or vanishes, and what to do; ``None`` when it is in range."""
    now = f" (now {weight:g})" if weight is not None else ""
    if ratio > DOMINANT:
        return f"term {name!r} has {ratio:.0f}× the gradient of cross-entropy: lower its weight{now}"
    if 0 < ratio < VANISHING:
        return f"term {name!r} has 1/{1 / ratio:.0f} of the gradient of cross-entropy: raise its weight{now}"
    return None
