"""Domain-similarity weighting: Ruder, Ghaffari & Breslin (2017), "Knowledge Adaptation: Teaching to Adapt",
arXiv:1702.02052, §3.2.

Each teacher was trained on a source domain; a teacher whose source data resemble the target (student's)
data is trusted more. The paper measures the similarity of two domains by the Jensen-Shannon divergence of
their term distributions; for inputs that are not text the distributions compared here are normalised
histograms of the input values (for images: the pixel-intensity distribution, the analogue of a bag of terms),
over ``bins`` equal bins spanning the smallest to the largest value of all the data:

    JS(P, Q) = ½ KL(P || M) + ½ KL(Q || M),  M = ½ (P + Q),  in bits so 0 <= JS <= 1
    sim_m = 1 − JS(P_{source m}, P_target),   w_m = sim_m / Σ_j sim_j   (the same for every sample)

Shapes: sources ``[(N_m, ...)]``, target ``(N, ...)``; weights ``(B, M)``. ``bins`` = 32 resolves the pixel
histograms of 8-bit images to 8 grey levels a bin, enough to tell a class or a domain apart while every bin
still holds many values on subsets of a few hundred images.

In a recipe the sources are the training subsets of the ``teachers:`` and the target the student's training
set; from Python, pass ``sources`` and ``target`` (or call :meth:`Domain.fit` later).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import torch
from pydantic import Field

from mentor.errors import MentorError
from mentor.losses.terms import Context
from mentor.teachers.weighting.base import WEIGHTINGS, Weighting


def histogram(values: torch.Tensor, bins: int, low: float, high: float) -> torch.Tensor:
    """Normalised histogram ``(bins,)`` of all the values of ``values``."""
    counts = torch.histc(values.detach().float().flatten().cpu(), bins=bins, min=low, max=high)
    return counts / counts.sum().clamp_min(1.0)


def jensen_shannon(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """JS divergence in bits of two distributions ``(bins,)`` (0 for equal ones, 1 for disjoint ones)."""
    middle = 0.5 * (left + right)

    def kl(p: torch.Tensor) -> torch.Tensor:
        return (torch.special.xlogy(p, p) - torch.special.xlogy(p, middle)).sum() / torch.log(torch.tensor(2.0))

    return 0.5 * kl(left) + 0.5 * kl(right)


def similarities(sources: Sequence[torch.Tensor], target: torch.Tensor, bins: int) -> torch.Tensor:
    """sim_m = 1 − JS(histogram of source m, histogram of target), ``(M,)``."""
    everything = [target, *sources]
    low = min(float(x.min()) for x in everything if x.numel())
    high = max(float(x.max()) for x in everything if x.numel())
    high = high if high > low else low + 1.0
    reference = histogram(target, bins, low, high)
    return torch.stack([1.0 - jensen_shannon(histogram(source, bins, low, high), reference) for source in sources])


class Domain(Weighting):
    """w_m ∝ 1 − JS(source m, target), fixed once the domains are known."""

    def __init__(self, teachers: int, bins: int) -> None:
        super().__init__(teachers, "weighting 'domain'")
        self.bins = bins
        self.register_buffer("weights", torch.full((teachers,), float("nan")))

    @property
    def fitted(self) -> bool:
        return not bool(torch.isnan(self.weights).any())

    def fit(self, sources: Sequence[torch.Tensor], target: torch.Tensor) -> None:
        """Set the weights from each teacher's source inputs and the target inputs."""
        if len(sources) != self.teachers or any(source.numel() == 0 for source in sources) or target.numel() == 0:
            raise MentorError(f"The 'sources' parameter of weighting 'domain' must hold {self.teachers} non-empty "
                              f"input tensors (one per teacher) and 'target' a non-empty one. Got {len(sources)}.")
        sims = similarities(sources, target, self.bins).clamp_min(0.0)
        if float(sims.sum()) <= 0:
            raise MentorError("weighting 'domain': every teacher's source data is disjoint from the target data "
                              "(similarity 0); use weighting uniform")
        self.weights.copy_(sims / sims.sum())

    def forward(self, context: Context, logits: torch.Tensor, temperature: float) -> torch.Tensor:  # type: ignore[override]
        if not self.fitted:
            raise MentorError("weighting 'domain' has no domains: give it sources (each teacher's training inputs) "
                              "and target (the student's), or use it in a recipe with teachers:")
        return self.weights.to(logits.dtype).expand(logits.shape[0], -1)


@WEIGHTINGS.register("domain", "Ruder et al. 2017: w_m ∝ 1 − JS(source m, target) of input histograms")
def domain(teachers: int, sources: list[torch.Tensor] | None = None, target: torch.Tensor | None = None,
           bins: Annotated[int, Field(ge=2, le=4096)] = 32) -> Domain:
    """Weights from each teacher's source inputs and the target inputs (set later when not given)."""
    weighting = Domain(teachers, bins)
    if sources is not None or target is not None:
        if sources is None or target is None:
            raise MentorError("weighting 'domain' needs both 'sources' and 'target', or neither (set by a recipe)")
        weighting.fit(sources, target)
    return weighting
