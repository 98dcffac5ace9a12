"""Teacher-free knowledge distillation: a student taught by itself or by a virtual teacher.

Yuan, Tay, Li, Wang & Feng (2020), "Revisiting Knowledge Distillation via Label Smoothing
Regularization", CVPR (arXiv:1909.11723). Shapes: logits ``(B, K)``, labels ``(B,)``.

``tfkd-self`` (Tf-KD_self, eq. 8), two phases: the student is trained alone with CE; then a fresh copy
of it (the same initial weights) learns from that pre-trained student, frozen (p^t its output):

    L_self = (1 − α) · CE(y, p) + α · τ² · KL(p^t_τ || p_τ)    (KL summed over classes, batch mean)

The authors' code (yuanli2333/Teacher-free-Knowledge-Distillation, ``loss_kd_self``) averages its KL over
the B·K elements and multiplies it by a per-network ``multiplier``; its CIFAR-100 ResNet-18 configuration
(α = 0.95, τ = 6, multiplier 50, K = 100) weights the soft term 0.95·36·50/100 = 17.1 against 0.05 for the
labels, a ratio of 342. The defaults α = 0.9, τ = 6 give the same balance (0.9·36 : 0.1 = 324) with the
batch-mean KL used here, independent of K. That balance suits long schedules: on Fashion-MNIST (5,850
images, 10 epochs, a small CNN) the student stayed below its own teacher (68.8% against 74.5%; 72.3% with
α = 0.5, τ = 4), so lower α for short runs.

``tfkd-virtual`` (Tf-KD_reg, eq. 9), one phase: the teacher is the manually designed distribution

    p^d(k) = a for the correct class c, (1 − a) / (K − 1) otherwise   (a >= 0.9)

and L_reg = (1 − α) · CE(y, p) + α · KL(p^d_τ || p_τ), batch mean, with no τ² factor (eq. 9 has none).
``form`` picks how τ enters:

* ``"released"`` (default), the authors' code (yuanli2333/Teacher-free-Knowledge-Distillation,
  ``loss_kd_regularization``): the softmax is applied to the probabilities themselves,
  p^d_τ = softmax(p^d / τ), and the student is not softened, p_τ = softmax(z). With a = 0.99 and
  τ = 20 the target is close to uniform (0.1045 on the label, 0.0995 elsewhere for K = 10): the term is
  a label-smoothing regulariser, which is the paper's point.
* ``"paper"``, the text's reading: p^d_τ = softmax(log p^d / τ) ∝ (p^d)^(1/τ) and p_τ = softmax(z / τ).
  With τ = 1 the KL term is H(p^d, p) − H(p^d), so L_reg is label-smoothed cross-entropy
  (ε = α·K·(1 − a)/(K − 1)) up to the constant −α·H(p^d).

The defaults are the released CIFAR-100 ResNet-18 configuration (``reg_alpha`` 0.1, ``reg_temperature``
20, a = 0.99): the code's ``KLDivLoss()`` averages over the B·K elements and multiplies by ``multiplier``
= 100 = K there, which is the batch-mean KL used here.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from mentor.errors import MentorError
from mentor.losses import CE, KL, Objective
from mentor.losses.functional import kl_divergence
from mentor.losses.terms import Context, Term
from mentor.schemes.base import SCHEMES, Phase, Phased
from mentor.schemes.offline import Offline
from mentor.schemes.online.peers import check_count
from mentor.schemes.selflearning.born_again import TaughtByEarlierPhase

Form = Literal["released", "paper"]


def virtual_teacher(targets: torch.Tensor, classes: int, correct: float, temperature: float,
                    form: Form = "released") -> torch.Tensor:
    """p^d_τ ``(B, K)``: ``correct`` on the label, (1 − correct)/(K − 1) elsewhere, softened at τ as ``form`` says."""
    if classes < 2:
        raise MentorError(f"tfkd-virtual needs a model with at least 2 outputs (classes); got {classes}")
    probs = torch.full((targets.shape[0], classes), (1.0 - correct) / (classes - 1), device=targets.device)
    probs.scatter_(1, targets.long().unsqueeze(1), correct)
    scores = probs if form == "released" else probs.log()
    return F.softmax(scores / temperature, dim=1)


class VirtualTeacherKL(Term):
    """KL(p^d_τ || p_τ) from the virtual teacher of Tf-KD_reg (no real teacher is read)."""

    needs_teacher = False

    def __init__(self, correct: float, temperature: float, form: Form, weight: float) -> None:
        super().__init__("virtual-kl", weight)
        self.correct, self.temperature, self.form = correct, temperature, form

    def loss(self, context: Context) -> torch.Tensor:
        logits = context.student.logits
        teacher = virtual_teacher(context.batch.targets, logits.shape[1], self.correct, self.temperature, self.form)
        softened = logits if self.form == "released" else logits / self.temperature
        return kl_divergence(F.log_softmax(softened, dim=1), teacher)


class TeacherFreeSelf(Phased):
    """Phase 1: the model alone (CE). Phase 2: its untrained copy, taught by the phase-1 model."""

    def __init__(self, model: nn.Module, temperature: float, alpha: float, pretrain_epochs: int | None) -> None:
        self.pretrained, self.student = model, copy.deepcopy(model)
        self.temperature, self.alpha, self.pretrain_epochs = temperature, alpha, pretrain_epochs

    def phases(self) -> Iterator[Phase]:
        yield Phase("pretrain", Offline(self.pretrained, Objective(CE())), self.pretrain_epochs)
        objective = Objective(CE(weight=1.0 - self.alpha), KL(self.temperature, weight=self.alpha))
        yield Phase("self-distill", TaughtByEarlierPhase(self.student, objective, self.pretrained))

    def predictors(self) -> dict[str, nn.Module]:
        return {"student": self.student, "pretrained": self.pretrained}


@SCHEMES.register("tfkd-self", "Yuan et al. 2020, Teacher-free KD by self-training (CVPR)")
def tfkd_self(
    models: list[nn.Module],
    temperature: Annotated[float, Field(gt=0)] = 6.0,
    alpha: Annotated[float, Field(ge=0, le=1)] = 0.9,
    pretrain_epochs: Annotated[int, Field(ge=1)] | None = None,
) -> TeacherFreeSelf:
    """``models`` = [the student]; ``pretrain_epochs`` (default: the run's epochs) for phase 1."""
    check_count(models, "tfkd-self", 1, 1)
    return TeacherFreeSelf(models[0], temperature, alpha, pretrain_epochs)


@SCHEMES.register("tfkd-virtual", "Yuan et al. 2020, Teacher-free KD with a virtual teacher (CVPR)")
def tfkd_virtual(
    models: list[nn.Module],
    correct_probability: Annotated[float, Field(ge=0.9, le=1)] = 0.99,
    temperature: Annotated[float, Field(gt=0)] = 20.0,
    alpha: Annotated[float, Field(ge=0, le=1)] = 0.1,
    form: Form = "released",
) -> Offline:
    """``models`` = [the student]; ``correct_probability`` is the virtual teacher's a (the paper's a >= 0.9)."""
    check_count(models, "tfkd-virtual", 1, 1)
    term = VirtualTeacherKL(correct_probability, temperature, form, alpha)
    return Offline(models[0], Objective(CE(weight=1.0 - alpha), term))
