"""Calibration, agreement and confusion of classifiers on a labelled set.

Expected calibration error (Guo, Pleiss, Sun & Weinberger 2017, "On Calibration of Modern Neural
Networks", ICML; Naeini et al. 2015): with the confidence ``c_i = max_k p_ik`` and prediction
``ŷ_i = argmax_k p_ik`` of each of the ``N`` samples, split ``(0, 1]`` into ``M`` equal-width bins
``B_m = ((m-1)/M, m/M]`` and

    ECE = Σ_m |B_m| / N · | acc(B_m) − conf(B_m) |,

where ``acc(B_m)`` is the fraction of correct predictions in the bin and ``conf(B_m)`` the mean
confidence in it. The reliability diagram plots ``acc(B_m)`` against the bin centres.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mentor.errors import MentorError

BINS = 15


def _check(scores: torch.Tensor, labels: torch.Tensor, what: str) -> None:
    if scores.ndim != 2 or labels.ndim != 1 or scores.shape[0] != labels.shape[0]:
        raise MentorError(f"{what} needs {what.split()[0]} of shape (N, K) and labels of shape (N,); got "
                          f"{tuple(scores.shape)} and {tuple(labels.shape)}")
    if scores.shape[0] == 0:
        raise MentorError(f"{what} needs at least one sample; got 0")


@dataclass
class Reliability:
    """Per-bin statistics of a reliability diagram.

    Attributes:
        edges: ``(M + 1,)`` bin edges ``0, 1/M, ..., 1``.
        counts: ``(M,)`` samples per bin.
        confidence: ``(M,)`` mean confidence per bin (``nan`` for empty bins).
        accuracy: ``(M,)`` fraction correct per bin (``nan`` for empty bins).
        ece: the expected calibration error.
    """

    edges: torch.Tensor
    counts: torch.Tensor
    confidence: torch.Tensor
    accuracy: torch.Tensor
    ece: float


def reliability(probabilities: torch.Tensor, labels: torch.Tensor, bins: int = BINS) -> Reliability:
    """Bin the confidences of ``probabilities`` ``(N, K)`` against ``labels`` ``(N,)`` into ``bins`` bins."""
    _check(probabilities, labels, "probabilities for calibration")
    if bins < 1:
        raise MentorError(f"the 'bins' parameter of the calibration must be an int >= 1. Got {bins} instead.")
    probabilities = probabilities.detach().double().cpu()
    confidence, predictions = probabilities.max(dim=1)
    correct = (predictions == labels.cpu()).double()
    edges = torch.linspace(0.0, 1.0, bins + 1, dtype=torch.float64)
    # bucketize(right=False) puts c in bin m when edges[m] < c <= edges[m + 1]: the bins (lo, hi].
    index = torch.bucketize(confidence, edges[1:-1], right=False)
    counts = torch.bincount(index, minlength=bins)
    sum_confidence = torch.zeros(bins, dtype=torch.float64).index_add_(0, index, confidence)
    sum_correct = torch.zeros(bins, dtype=torch.float64).index_add_(0, index, correct)
    safe = counts.clamp(min=1).double()
    mean_confidence = torch.where(counts > 0, sum_confidence / safe, torch.nan)
    accuracy = torch.where(counts > 0, sum_correct / safe, torch.nan)
    ece = float((sum_correct - sum_confidence).abs().sum() / labels.shape[0])
    return Reliability(edges, counts, mean_confidence, accuracy, ece)


def expected_calibration_error(probabilities: torch.Tensor, labels: torch.Tensor, bins: int = BINS) -> float:
    """ECE of ``probabilities`` ``(N, K)`` against ``labels`` ``(N,)`` with ``bins`` equal-width bins."""
    return reliability(probabilities, labels, bins).ece


def agreement(logits_a: torch.Tensor, logits_b: torch.Tensor) -> float:
    """Fraction of samples on which two models' argmax predictions are equal (both ``(N, K)``)."""
    if logits_a.shape != logits_b.shape or logits_a.ndim != 2 or logits_a.shape[0] == 0:
        raise MentorError(f"agreement needs two non-empty (N, K) outputs of the same shape; got "
                          f"{tuple(logits_a.shape)} and {tuple(logits_b.shape)}")
    return float((logits_a.argmax(dim=1) == logits_b.argmax(dim=1)).double().mean())


def confusion_matrix(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``(K, K)`` counts: row = true class, column = predicted class, for logits ``(N, K)``."""
    _check(logits, labels, "logits for the confusion matrix")
    classes = logits.shape[1]
    labels = labels.cpu().long()
    if int(labels.min()) < 0 or int(labels.max()) >= classes:
        raise MentorError(f"labels must lie in 0..{classes - 1} for {classes} outputs; got "
                          f"{int(labels.min())}..{int(labels.max())}")
    pairs = labels * classes + logits.detach().cpu().argmax(dim=1)
    return torch.bincount(pairs, minlength=classes * classes).reshape(classes, classes)
