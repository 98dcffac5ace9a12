"""Fixed weighting: weights the user chooses, one per teacher, the same for every sample (survey §4.2).

    w_{b,m} = a_m / Σ_j a_j   for the given a_m >= 0 with Σ_j a_j > 0

e.g. the teachers' validation accuracies. Shapes: logits ``(B, M, K)`` -> weights ``(B, M)``.
"""

from __future__ import annotations

from mentor.teachers.weighting.base import WEIGHTINGS, Constant, check_distribution


@WEIGHTINGS.register("fixed", "user-given weights, one per teacher, normalised to sum to 1")
def fixed(teachers: int, weights: list[float]) -> Constant:
    """``weights``: one non-negative number per teacher with a positive sum (normalised here)."""
    return Constant(check_distribution(weights, teachers, "weighting 'fixed'"), "weighting 'fixed'")
