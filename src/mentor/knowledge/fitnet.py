"""FitNets: hints for thin deep nets.

Romero et al. (2015), "FitNets: Hints for Thin Deep Nets", ICLR, arXiv:1412.6550.

Stage 1 (hint training): the student up to its guided layer g, followed by a trainable regressor r,
learns to predict the teacher's hint layer h:

    L_HT = β · mean over the batch and the C·H·W entries of (u_h(x) − r(v_g(x)))²
           u_h: (B, C_t, H_t, W_t), v_g: (B, C_s, H_s, W_s)

Stage 2: the whole student is trained with knowledge distillation (soft targets at τ, see ``kd``).
The regressor is a convolution when both tensors are feature maps (``conv3x3`` or ``conv1x1``), a
linear map otherwise. ``hint_epochs=0`` skips stage 1; ``hint_weight`` > 0 keeps the hint, with that
weight on the same mean squared error, as an extra term during stage 2 (RepDistiller's single-stage
variant uses 100).

Scale: the paper writes ½‖u_h − r(v_g)‖², a sum over the C·H·W entries, i.e. β = C·H·W / 2, and its
code (adri-romsor/FitNets) trained stage 1 with RMSProp, whose steps do not depend on the loss scale.
One optimizer trains every stage here, usually SGD at the task's learning rate: at the paper's scale a
64×7×7 hint has ~800 times a cross-entropy gradient and SGD at lr 0.05 diverges in the first epoch. The
default β = 100 on the mean is RepDistiller's scale (β = 100 with ``nn.MSELoss``), about 50 times a
cross-entropy gradient on that pair, which SGD trains; RMSProp or Adam give the same steps at any β.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from mentor.knowledge.base import Stage, register
from mentor.knowledge.kd import kd
from mentor.losses import Distance, Objective


@register("fitnet", "Romero et al. 2015, FitNets: Hints for Thin Deep Nets")
def fitnet(
    hint: str,
    guided: str,
    adapter: Literal["linear", "conv1x1", "conv3x3", "identity"] = "conv1x1",
    hint_epochs: Annotated[int, Field(ge=0)] = 5,
    beta: Annotated[float, Field(gt=0)] = 100.0,
    hint_weight: Annotated[float, Field(ge=0)] = 0.0,
    temperature: Annotated[float, Field(gt=0)] = 4.0,
    alpha: Annotated[float, Field(ge=0, le=1)] = 0.9,
) -> list[Stage]:
    """Hint pre-training of the guided layer through a regressor (β · mean squared error), then KD (optionally
    keeping the hint with ``hint_weight``)."""

    def hint_term(weight: float) -> Distance:
        return Distance(guided, hint, 2, 2, adapter, weight=weight, reduction="mean", name="hint")

    stages = []
    if hint_epochs > 0:
        stages.append(Stage("hint", Objective(hint_term(beta)), hint_epochs))
    distill = kd(temperature, alpha)
    if hint_weight > 0:
        distill = Objective(*distill, hint_term(hint_weight))
    stages.append(Stage("distill", distill))
    return stages
