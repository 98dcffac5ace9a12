"""FitNets: hints for thin deep nets.

Romero et al. (2015), "FitNets: Hints for Thin Deep Nets", ICLR, arXiv:1412.6550.

Stage 1 (hint training): the student up to its guided layer g, followed by a trainable regressor r,
learns to predict the teacher's hint layer h:

    L_HT = ½ ‖u_h(x) − r(v_g(x))‖²        u_h: (B, C_t, H_t, W_t), v_g: (B, C_s, H_s, W_s)

Stage 2: the whole student is trained with knowledge distillation (soft targets at τ, see ``kd``).
The regressor is a convolution when both tensors are feature maps (``conv3x3`` or ``conv1x1``), a
linear map otherwise. ``hint_epochs=0`` skips stage 1; ``hint_weight`` > 0 keeps the hint as an extra
term during stage 2 (a common single-stage variant).

Scale: L_HT sums over the C·H·W entries of the hint, as the paper writes it. On a Fashion-MNIST CNN pair
(a 64x7x7 hint) its gradient is ~800 times a cross-entropy gradient. Stage 1 has no CE, and the authors'
code (adri-romsor/FitNets) trained it with RMSProp, whose steps do not depend on the loss scale (its
Theano cost sums over one axis of a c01b tensor and averages the rest); Adam behaves alike, while SGD needs
a smaller learning rate for this stage. For ``hint_weight``, RepDistiller's single-stage hint (β = 100 on
the mean over the C·H·W entries) is ``hint_weight`` = 200 / (C·H·W).
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
    hint_weight: Annotated[float, Field(ge=0)] = 0.0,
    temperature: Annotated[float, Field(gt=0)] = 4.0,
    alpha: Annotated[float, Field(ge=0, le=1)] = 0.9,
) -> list[Stage]:
    """Hint pre-training of the guided layer through a regressor, then KD (optionally keeping the hint)."""

    def hint_term(weight: float) -> Distance:
        # ½‖·‖² per sample averaged over the batch: the paper's L_HT
        return Distance(guided, hint, 2, 2, adapter, weight=0.5 * weight, reduction="batchmean", name="hint")

    stages = []
    if hint_epochs > 0:
        stages.append(Stage("hint", Objective(hint_term(1.0)), hint_epochs))
    distill = kd(temperature, alpha)
    if hint_weight > 0:
        distill = Objective(*distill, hint_term(hint_weight))
    stages.append(Stage("distill", distill))
    return stages
