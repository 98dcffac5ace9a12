"""DarkRank: transfer of cross-sample similarities by listwise ranking.

Chen, Wang & Zhang (2018), "DarkRank: Accelerating Deep Metric Learning via Cross Sample Similarities
Transfer", AAAI, arXiv:1707.01220. Scores and defaults follow the authors' released code
(TuSimple/DarkRank, ``PYOP/listnet_loss.py``, ``PYOP/listmle_loss.py`` and the README's command).

Each sample q of the batch is a query; the other samples are ranked by their similarity to it,

    S(x_q, x_j) = −α ‖x̂_q − x̂_j‖₂^β          x̂ = x/‖x‖₂: L2-normalized embeddings ``(B, D)`` (widths may differ)

and a ranking π of a list of n candidates has the Plackett-Luce (listwise) probability

    P(π | S) = Π_{r=1..n} exp(S_π(r)) / Σ_{m=r..n} exp(S_π(m)).

Hard transfer (ListMLE) maximizes the likelihood, under the student's scores, of the ranking the
teacher's scores sort to: L_hard = −log P(π_T | S_S). Soft transfer (ListNet) matches the two
distributions over all n! rankings: L_soft = KL(P(· | S_T) || P(· | S_S)) (the code's cross-entropy
less the teacher's entropy: same gradient, zero at a perfect match). Both are averaged over the B queries.

The list of each query is its ``list_size`` = k nearest candidates under the teacher (the teacher's
top-k; ``None`` = all B − 1 others, hard transfer only). Soft transfer enumerates the k! rankings, so it
is limited to k <= 8 (k = 4 is 24 rankings per query).

Both embeddings are L2-normalized, as in the released code (unnormalized, a wide teacher's large
features give scores in the thousands and one-hot rankings). The code then
scales them to squared norm 3.5 and scores −(‖·‖²)², which is α = 3.5² = 12.25 and β = 4 here; with
soft transfer of lists of 4 and a loss weight of 16 under an optimizer that divides all gradients by
the batch of 8, it weighs the query-averaged loss 2 against the batch-mean cross-entropy. These are the
defaults. The code's hand-written backward omits each query's own gradient (only the listed
candidates move); the full gradient taken here was 1.6× larger on a Fashion-MNIST CNN pair.
Re-implementations take other values (lenscloth/RKD: hard transfer, α = 3, β = 3, lists of 4).
"""

from __future__ import annotations

import itertools
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from mentor.errors import MentorError
from mentor.knowledge.base import register
from mentor.losses import CE, Context, Objective, Term

MAX_SOFT_LIST = 8


def similarity(embeddings: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    """S = −α ‖x_i − x_j‖₂^β for all pairs: ``(B, D)`` -> ``(B, B)``."""
    squared = (embeddings[:, None, :] - embeddings[None, :, :]).pow(2).sum(dim=2)
    return -alpha * squared.clamp_min(1e-12).pow(beta / 2)


def ranking_log_probability(scores: torch.Tensor) -> torch.Tensor:
    """log P(π | S) of the ranking in which ``scores (..., n)`` are listed (first = ranked first)."""
    # Σ_r [S_π(r) − logsumexp_{m >= r} S_π(m)]; the suffix log-sum-exp is a reversed cumulative one
    suffix = torch.logcumsumexp(scores.flip(-1), dim=-1).flip(-1)
    return (scores - suffix).sum(dim=-1)


def teacher_lists(teacher_scores: torch.Tensor, size: int) -> torch.Tensor:
    """Indices ``(B, size)`` of each query's candidates in the teacher's order, the query itself excluded."""
    masked = teacher_scores.masked_fill(torch.eye(len(teacher_scores), dtype=torch.bool, device=teacher_scores.device),
                                        float("-inf"))
    return masked.topk(size, dim=1).indices


class DarkRankTerm(Term):
    """Hard or soft listwise transfer of the teacher's ranking of the batch around each query."""

    def __init__(self, variant: str, student_layer: str, teacher_layer: str, alpha: float, beta: float,
                 list_size: int | None, weight: float) -> None:
        super().__init__("darkrank", weight)
        self.variant, self.alpha, self.beta, self.list_size = variant, alpha, beta, list_size
        self.student_layer, self.teacher_layer = student_layer, teacher_layer
        self.student_taps = () if student_layer == "logits" else (student_layer,)
        self.teacher_taps = () if teacher_layer == "logits" else (teacher_layer,)
        if variant == "soft":
            self.register_buffer("rankings", torch.tensor(list(itertools.permutations(range(list_size or 0)))),
                                 persistent=False)

    def loss(self, context: Context) -> torch.Tensor:
        teacher = F.normalize(context.require_teacher(self.name).get(self.teacher_layer).flatten(1), dim=1)
        student = F.normalize(context.student.get(self.student_layer).flatten(1), dim=1)
        size = self.list_size or len(student) - 1
        if size > len(student) - 1:
            raise MentorError(f"The 'list_size' parameter of darkrank ({size}) must be smaller than the batch size "
                              f"({len(student)}). Lower list_size or use larger batches.")
        teacher_scores = similarity(teacher, self.alpha, self.beta)
        student_scores = similarity(student, self.alpha, self.beta)
        lists = teacher_lists(teacher_scores, size)  # ranked by the teacher: π_T
        student_listed = student_scores.gather(1, lists)  # (B, k)
        if self.variant == "hard":
            return -ranking_log_probability(student_listed).mean()
        teacher_listed = teacher_scores.gather(1, lists)
        teacher_log_p = ranking_log_probability(teacher_listed[:, self.rankings])  # (B, k!)
        student_log_p = ranking_log_probability(student_listed[:, self.rankings])
        return (teacher_log_p.exp() * (teacher_log_p - student_log_p)).sum(dim=1).mean()


@register("darkrank", "Chen, Wang & Zhang 2018, DarkRank: cross sample similarities transfer (AAAI)")
def darkrank(
    variant: Literal["soft", "hard"] = "soft",
    list_size: Annotated[int, Field(ge=2)] | None = 4,
    alpha: Annotated[float, Field(gt=0)] = 12.25,
    beta: Annotated[float, Field(gt=0)] = 4.0,
    student_layer: str = "flatten",
    teacher_layer: str = "flatten",
    weight: Annotated[float, Field(ge=0)] = 2.0,
    ce_weight: Annotated[float, Field(ge=0)] = 1.0,
) -> Objective:
    """Hard-label CE plus the soft (KL over the k! rankings) or hard (−log P(π_T | S_S)) transfer."""
    if variant == "soft" and (list_size is None or list_size > MAX_SOFT_LIST):
        raise MentorError(
            f"The 'list_size' parameter of darkrank must be an int in [2, {MAX_SOFT_LIST}] for variant 'soft' "
            f"(it enumerates list_size! rankings). Got {list_size!r} instead. Lower it or use variant: hard."
        )
    return Objective(CE(weight=ce_weight),
                     DarkRankTerm(variant, student_layer, teacher_layer, alpha, beta, list_size, weight))
