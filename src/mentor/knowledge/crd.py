"""CRD: contrastive representation distillation.

Tian, Krishnan & Isola (2020), "Contrastive Representation Distillation", ICLR, arXiv:1910.10699.
Implemented as the authors' released code does it (HobbitLong/RepDistiller, ``crd/memory.py`` and
``crd/criterion.py``), where it differs from the paper's text.

The student's representation is trained to carry as much information about the teacher's as possible
by a contrastive (NCE) lower bound on their mutual information. Embeddings are a linear map then
L2 normalization on each side, g_S(s) and g_T(t) ``(B, d)`` (both heads train; the teacher network does
not). Memory banks ``(N, d)`` hold one past embedding per training sample of each side (N =
``batch.dataset_size``; requires ``batch.indices``). Each anchor is contrasted with the OTHER side's
memory: row i (its own sample: the positive) and K rows j_ik drawn uniformly, with replacement, from the
other N − 1 samples (the negatives). With scores s = anchor · memory row, the critic is

    h(s) = P(s) / (P(s) + K/N),   P(s) = exp(s/τ) / Z     i.e.   h(s) = sigmoid(s/τ − log(K · Z/N))

where Z = N · mean(exp(s/τ)) over the (positive and negative) scores of the first batch, set once per
direction and then fixed: P is then an estimate of a softmax over the N samples (the paper's eq. 18
omits Z; without it exp(s/τ) ≫ K/N and the loss and its gradient grow by orders of magnitude). Each
direction's loss is the negative of the NCE bound, averaged over the batch:

    L_S = −1/B Σ_i [ log h(g_S(s_i)·bank_T[i]) + Σ_k log(1 − h(g_S(s_i)·bank_T[j_ik])) ]   (student anchors)
    L_T = −1/B Σ_i [ log h(g_T(t_i)·bank_S[i]) + Σ_k log(1 − h(g_T(t_i)·bank_S[j'_ik])) ]  (teacher anchors)
    L   = w_CE · CE + w_KD · τ_KD² KL(p_T || p_S) + β (L_S + L_T)

Banks are read before this batch's update and never carry gradients, so the student learns through
L_S and the teacher head through L_T (as in the released code; the paper's text writes the positive pair
with both current embeddings). After use, the rows of this batch are updated under no_grad:
bank[i] ← normalize(m·bank[i] + (1 − m)·g(x_i)). Banks are allocated at the first step (``bind`` sees no
batch, so N is not known before) as random unit vectors; they and the negatives come from a generator
seeded by ``seed``. Banks, Z and the generator are part of the state dict, so a resumed run continues
exactly.

Defaults are the released code's: d = 128, K = 16384, τ = 0.07, m = 0.5, β = 0.8, CE weight 1 and no KD
(CRD+KD there adds KL with weight 1 at τ_KD = 4). One difference: with its default ``mode: exact`` the
released code draws negatives from samples of other classes, which needs every sample's label; here
they are drawn from all other samples. Lower K on small data or memory (the step costs O(B·K·d)).
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from mentor.batch import Batch, Outputs
from mentor.errors import MentorError
from mentor.knowledge.base import register
from mentor.losses import CE, KL, Context, Objective, Term


def nce_loss(logits: torch.Tensor, offset: float) -> torch.Tensor:
    """−mean_i [log h_i0 + Σ_k log(1 − h_ik)] with h = sigmoid(logits − offset).

    Args:
        logits: ``(B, 1 + K)`` scores over τ, the positive in column 0.
        offset: log(K · Z/N).
    """
    shifted = logits - offset
    return -(F.logsigmoid(shifted[:, 0]) + F.logsigmoid(-shifted[:, 1:]).sum(dim=1)).mean()


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
    """The two-sided NCE loss with trainable embedding heads, momentum memory banks and fixed Z."""

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
        # log Z of the student-anchor and teacher-anchor directions; NaN until the first batch sets them
        self.register_buffer("log_normalizers", torch.full((2,), math.nan, dtype=torch.float64))

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

    def direction(self, index: int, anchors: torch.Tensor, memory: torch.Tensor, indices: torch.Tensor,
                  dataset_size: int) -> torch.Tensor:
        """NCE loss of ``anchors (B, d)`` against the other side's ``memory``: positive row i, K negative rows."""
        rows = torch.cat([indices[:, None], self.sample_negatives(indices, dataset_size)], dim=1)  # (B, 1 + K)
        logits = torch.einsum("bd,bkd->bk", anchors, memory[rows]) / self.temperature
        if torch.isnan(self.log_normalizers[index]):  # Z = N · mean exp(s/τ) of the first batch, then fixed
            mean_log = torch.logsumexp(logits.detach().double().flatten(), dim=0) - math.log(logits.numel())
            self.log_normalizers[index] = mean_log + math.log(dataset_size)
        offset = math.log(self.negatives) + float(self.log_normalizers[index]) - math.log(dataset_size)
        return nce_loss(logits, offset)

    def loss(self, context: Context) -> torch.Tensor:
        indices, dataset_size = check_batch(context.batch)
        teacher = context.require_teacher(self.name).get(self.teacher_layer).flatten(1)
        student_embedding = F.normalize(self.student_head(context.student.get(self.student_layer).flatten(1)), dim=1)
        teacher_embedding = F.normalize(self.teacher_head(teacher), dim=1)
        student_bank, teacher_bank = self.banks(dataset_size, student_embedding)
        loss = self.direction(0, student_embedding, teacher_bank, indices, dataset_size)
        loss = loss + self.direction(1, teacher_embedding, student_bank, indices, dataset_size)
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
