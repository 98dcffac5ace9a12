"""Losses and calibration of multi-task learning from specialist teachers (survey §2.4). Pure functions.

MuST (Ghiasi, Zoph, Cubuk, Le & Lin 2021, "Multi-Task Self-Training for Learning General Representations",
ICCV, arXiv:2108.11353) trains one student on the pseudo labels of every task at once,
``L = Σ_t w_t · L_t``: soft cross-entropy ``L_t = −(1/|M_t|) Σ_{i∈M_t} Σ_k q_ik log softmax(z_i)_k`` for a
classification task (the paper's soft classification pseudo labels), the squared error to the teacher's value for a
regression task, each over the samples ``M_t`` that carry a label of task t (a mask; all of them for pseudo labels).

Cross-task knowledge distillation (Yang, Pan, Gao, Jiang, Liu & Chen 2022, "Cross-Task Knowledge Distillation in
Multi-Task Recommendation", AAAI, arXiv:2202.09852) adds, for a task A and another task B with binary labels
``y_A, y_B ∈ {0, 1}``, an auxiliary ranking task with the paper's quadruplet order of samples
``(y_A, y_B) = (1, 1) ≻ (1, 0) ≻ (0, 1) ≻ (0, 0)`` for positively related tasks, and a BPR pairwise loss
``−log σ(s_i − s_j)`` over pairs of neighbouring levels (:func:`quadruplet_ranking`); and it calibrates a teacher's
predictions against the ground truth before they are used as targets (Platt scaling in the paper; here
:func:`fit_temperature`, its one-parameter multi-class form, and :func:`fit_affine` for a regression value).

Shapes: ``B`` samples, ``K`` classes, ``D`` regression outputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mentor.errors import MentorError


def masked_soft_cross_entropy(logits: torch.Tensor, target_probs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``−Σ_k q_ik log softmax(z_i)_k`` averaged over the rows where ``mask`` is true (0 when none is).

    Args:
        logits: ``(B, K)`` student logits.
        target_probs: ``(B, K)`` target distributions (one-hot for ground-truth labels).
        mask: ``(B,)`` booleans, the rows that carry a label of this task.
    """
    per_sample = -(target_probs * F.log_softmax(logits, dim=1)).sum(dim=1)
    return _masked_mean(per_sample, mask)


def masked_squared_error(predictions: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``(1/|M|) Σ_{i∈M} mean_d (ŷ_id − y_id)²`` over the rows where ``mask`` is true (0 when none is).

    Args:
        predictions: ``(B, D)``.
        targets: ``(B, D)``.
        mask: ``(B,)`` booleans.
    """
    return _masked_mean((predictions - targets).pow(2).mean(dim=1), mask)


def _masked_mean(per_sample: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.to(per_sample.dtype)
    return (per_sample * weights).sum() / weights.sum().clamp(min=1.0)


def quadruplet_ranking(scores: torch.Tensor, primary: torch.Tensor, auxiliary: torch.Tensor,
                       related: bool = True) -> torch.Tensor:
    """The auxiliary ranking loss of cross-task KD: samples ordered by task A's label, ties broken by task B's.

    Level ``r_i = 2·y_A,i + y_B,i`` (``1 − y_B,i`` when the tasks are inversely ``related``), so the order is
    ``(1,1) ≻ (1,0) ≻ (0,1) ≻ (0,0)``; every pair (i, j) with ``r_i = r_j + 1`` adds ``−log σ(s_i − s_j)``, and
    the loss is the mean over those pairs (0 when the batch has none).

    Args:
        scores: ``(B,)`` the student's score of task A.
        primary: ``(B,)`` binary labels of task A.
        auxiliary: ``(B,)`` binary labels of task B.
        related: ``True`` when B's positives are more likely A's positives (the paper's click/like case).
    """
    tie_break = auxiliary.float() if related else 1.0 - auxiliary.float()
    level = 2.0 * primary.float() + tie_break  # (B,)
    above = (level[:, None] - level[None, :]) == 1.0  # (B, B): i one level above j
    if not bool(above.any()):
        return scores.sum() * 0.0  # keeps the graph: a batch without such pairs adds nothing
    margins = scores[:, None] - scores[None, :]  # s_i − s_j
    return F.softplus(-margins[above]).mean()  # −log σ(m) = softplus(−m)


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, steps: int = 100) -> float:
    """The temperature T > 0 minimizing the negative log-likelihood of ``softmax(z / T)`` on labelled data
    (Guo et al. 2017's temperature scaling: Platt scaling with one shared parameter for K classes).

    Args:
        logits: ``(N, K)`` a teacher's logits on held-out labelled samples.
        labels: ``(N,)`` their classes.
        steps: L-BFGS iterations on log T.
    """
    if len(labels) == 0:
        raise MentorError("calibration needs labelled held-out samples; give the tasks a validation split "
                          "(validation > 0)")
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.5, max_iter=steps, tolerance_grad=1e-12, tolerance_change=1e-15,
                                  line_search_fn="strong_wolfe")
    logits, labels = logits.detach().double().clone(), labels.detach().clone()  # predictions may be inference tensors

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().exp())


def fit_affine(predictions: torch.Tensor, targets: torch.Tensor) -> tuple[float, float]:
    """``(a, b)`` minimizing ``Σ (a·p + b − y)²`` (least squares) on labelled data: the calibration of a
    regression teacher's values ``(N, 1)`` against the ground truth ``(N, 1)``; ``(1, mean error)`` when the
    predictions do not vary."""
    if len(targets) == 0:
        raise MentorError("calibration needs labelled held-out samples; give the tasks a validation split "
                          "(validation > 0)")
    p, y = predictions.detach().double().flatten(), targets.detach().double().flatten()
    spread = (p - p.mean()).pow(2).sum()
    if float(spread) < 1e-12:
        return 1.0, float((y - p).mean())
    a = float(((p - p.mean()) * (y - y.mean())).sum() / spread)
    return a, float(y.mean() - a * p.mean())
