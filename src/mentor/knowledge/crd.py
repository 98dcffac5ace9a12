"""CRD: contrastive representation distillation.

Tian, Krishnan & Isola (2020), "Contrastive Representation Distillation", ICLR, arXiv:1910.10699.

The student's representation is trained to carry as much information about the teacher's as possible
by a contrastive (NCE) lower bound on their mutual information. Embeddings are a linear map then
L2 normalization on each side, g_S(s) and g_T(t) ``(B, d)`` (both heads train; the teacher network does
not). A pair (t, s) from the same input is positive; K negatives per sample are drawn uniformly, with
replacement, from the other N − 1 samples of the dataset (N = ``batch.dataset_size``) and read from
memory banks ``(N, d)`` holding past embeddings (requires ``batch.indices``). With the critic

    h(t, s) = exp(tᵀs/τ) / (exp(tᵀs/τ) + K/N)

the loss of each anchor direction is the negative of the paper's NCE bound, averaged over the batch:

    L_S = −1/B Σ_i [ log h(g_T(t_i), g_S(s_i)) + Σ_{k=1..K} log(1 − h(bank_T[j_ik], g_S(s_i))) ]
    L_T = −1/B Σ_i [ log h(g_T(t_i), g_S(s_i)) + Σ_{k=1..K} log(1 − h(g_T(t_i), bank_S[j'_ik])) ]
    L   = w_CE · CE + w_KD · τ_KD² KL(p_T || p_S) + β (L_S + L_T)

After use, the rows of this batch are updated under no_grad: bank[i] ← normalize(m·bank[i] + (1 − m)·g(x_i)).
Banks are allocated at the first step (``bind`` sees no batch, so N is not known before), as random unit
vectors; they and the negatives come from a generator seeded by ``seed``. Defaults: d = 128, K = 16384,
τ = 0.07, m = 0.5, β = 0.8 (lower K on small data or memory: the step costs O(B·K·d)).
"""

from __future__ import annotations

from typing import Annotated, Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from mentor.batch import Batch, Outputs
from mentor.errors import MentorError
from mentor.knowledge.base import register
from mentor.losses import CE, KL, Context, Objective, Term


def nce_loss(anchors: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor, temperature: float,
             dataset_size: int) -> torch.Tensor:
    """−mean_i [log h(a_i, p_i) + Σ_k log(1 − h(a_i, n_ik))]: ``(B, d)``, ``(B, d)``, ``(B, K, d)`` -> scalar."""
    noise = negatives.shape[1] / dataset_size  # K/N
    positive_scores = (anchors * positives).sum(dim=1) / temperature
    negative_scores = torch.einsum("bd,bkd->bk", anchors, negatives) / temperature
    log_noise = torch.log(torch.tensor(noise, dtype=anchors.dtype, device=anchors.device))
    # log h = s − log(e^s + K/N) and log(1 − h) = log(K/N) − log(e^s + K/N), both in log-sum-exp form
    log_h = positive_scores - torch.logaddexp(positive_scores, log_noise)
    log_one_minus_h = log_noise - torch.logaddexp(negative_scores, log_noise)
    return -(log_h + log_one_minus_h.sum(dim=1)).mean()


def check_batch(batch: Batch) -> tuple[torch.Tensor, int]:
    """The batch's dataset indices and dataset size; a :class:`MentorError` when the loop did not provide them."""
    if batch.indices is None or batch.dataset_size is None:
        raise MentorError("crd needs batch.indices and batch.dataset_size (its memory banks hold one row per "
                          "training sample); build batches with Batch(inputs, targets, indices, dataset_size)")
    indices = batch.indices.long()
    if indices.min() < 0 or indices.max() >= batch.dataset_size:
        raise MentorError(f"crd: batch.indices must lie in [0, dataset_size={batch.dataset_size}); got "
                          f"[{int(indices.min())}, {int(indices.max())}]")
    return indices, int(batch.dataset_size)


class ContrastiveRepresentation(Term):
    """The two-sided NCE loss with trainable embedding heads and momentum memory banks."""

    def __init__(self, student_layer: str, teacher_layer: str, feature_dim: int, negatives: int,
                 temperature: float, momentum: float, seed: int, weight: float) -> None:
        super().__init__("crd", weight)
        self.student_layer, self.teacher_layer = student_layer, teacher_layer
        self.student_taps = () if student_layer == "logits" else (student_layer,)
        self.teacher_taps = () if teacher_layer == "logits" else (teacher_layer,)
        self.feature_dim, self.negatives = feature_dim, negatives
        self.temperature, self.momentum = temperature, momentum
        self.generator = torch.Generator().manual_seed(seed)
        self.student_head: nn.Module = nn.Identity()
        self.teacher_head: nn.Module = nn.Identity()
        # one row per training sample; allocated at the first step, once N is known
        self.register_buffer("student_bank", torch.empty(0, feature_dim))
        self.register_buffer("teacher_bank", torch.empty(0, feature_dim))

    def bind(self, student: Outputs, teacher: Outputs | None) -> None:
        if teacher is None:
            return
        self.student_head = nn.Linear(student.get(self.student_layer).flatten(1).shape[1], self.feature_dim)
        self.teacher_head = nn.Linear(teacher.get(self.teacher_layer).flatten(1).shape[1], self.feature_dim)

    def banks(self, dataset_size: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The memory banks ``(N, d)``, created as random unit vectors on the first call."""
        if len(self.student_bank) == 0:
            for name in ("student_bank", "teacher_bank"):
                rows = torch.randn(dataset_size, self.feature_dim, generator=self.generator)
                setattr(self, name, F.normalize(rows, dim=1).to(like))
        elif len(self.student_bank) != dataset_size:
            raise MentorError(f"crd's memory banks hold {len(self.student_bank)} samples but this batch comes from "
                              f"a dataset of {dataset_size}; create a new crd objective for another dataset")
        return self.student_bank, self.teacher_bank

    def sample_negatives(self, indices: torch.Tensor, dataset_size: int) -> torch.Tensor:
        """K indices ``(B, K)`` per sample, uniform over the other N − 1 samples."""
        if dataset_size < 2:
            raise MentorError("crd needs a dataset of at least 2 samples to draw negatives from")
        drawn = torch.randint(0, dataset_size - 1, (len(indices), self.negatives), generator=self.generator)
        drawn = drawn.to(indices.device)
        return drawn + (drawn >= indices[:, None]).long()  # skip the sample's own index

    def loss(self, context: Context) -> torch.Tensor:
        indices, dataset_size = check_batch(context.batch)
        teacher = context.require_teacher(self.name).get(self.teacher_layer).flatten(1)
        student_embedding = F.normalize(self.student_head(context.student.get(self.student_layer).flatten(1)), dim=1)
        teacher_embedding = F.normalize(self.teacher_head(teacher), dim=1)
        student_bank, teacher_bank = self.banks(dataset_size, student_embedding)
        teacher_negatives = teacher_bank[self.sample_negatives(indices, dataset_size)]
        student_negatives = student_bank[self.sample_negatives(indices, dataset_size)]
        loss = nce_loss(student_embedding, teacher_embedding, teacher_negatives, self.temperature, dataset_size)
        loss = loss + nce_loss(teacher_embedding, student_embedding, student_negatives, self.temperature, dataset_size)
        with torch.no_grad():
            for bank, embedding in ((student_bank, student_embedding), (teacher_bank, teacher_embedding)):
                updated = self.momentum * bank[indices] + (1 - self.momentum) * embedding.detach()
                bank[indices] = F.normalize(updated, dim=1)
        return loss

    def get_extra_state(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        for name in ("student_bank", "teacher_bank"):  # banks may be loaded before the first step allocated them
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args)


@register("crd", "Tian, Krishnan & Isola 2020, Contrastive Representation Distillation (ICLR)")
def crd(
    student_layer: str = "flatten",
    teacher_layer: str = "flatten",
    feature_dim: Annotated[int, Field(ge=1)] = 128,
    negatives: Annotated[int, Field(ge=1)] = 16384,
    temperature: Annotated[float, Field(gt=0)] = 0.07,
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.5,
    seed: Annotated[int, Field(ge=0)] = 0,
    crd_weight: Annotated[float, Field(ge=0)] = 0.8,
    ce_weight: Annotated[float, Field(ge=0)] = 1.0,
    kd_weight: Annotated[float, Field(ge=0)] = 0.0,
    kd_temperature: Annotated[float, Field(gt=0)] = 4.0,
) -> Objective:
    """Hard-label CE, optional soft-target KD (``kd_weight`` > 0: "CRD+KD") and β · the two-sided NCE loss."""
    return Objective(
        CE(weight=ce_weight),
        KL(temperature=kd_temperature, weight=kd_weight),
        ContrastiveRepresentation(student_layer, teacher_layer, feature_dim, negatives, temperature, momentum, seed,
                                  crd_weight),
    )
