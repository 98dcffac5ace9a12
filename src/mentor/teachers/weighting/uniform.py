"""Uniform weighting: every teacher counts the same (survey §4.2; You et al. 2017, Fukuda et al. 2017).

    w_{b,m} = 1/M,  so the target is  p̄ = (1/M) Σ_m softmax(z_m / τ)

the average of the teachers' *tempered* distributions (not the softmax of the log of their τ = 1 mixture).
Shapes: logits ``(B, M, K)`` -> weights ``(B, M)``.
"""

from __future__ import annotations

import torch

from mentor.teachers.weighting.base import WEIGHTINGS, Constant, check_teachers


@WEIGHTINGS.register("uniform", "every teacher weighs 1/M (You et al. 2017)")
def uniform(teachers: int) -> Constant:
    """Equal weights for the ``teachers`` teachers."""
    count = check_teachers(teachers, "weighting 'uniform'")
    return Constant(torch.full((count,), 1.0 / count), "weighting 'uniform'")
