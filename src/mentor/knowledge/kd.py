"""Knowledge distillation with soft targets.

Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural Network", arXiv:1503.02531.

    L = (1 − α) · CE(y, softmax(z_S)) + α · τ² · KL(softmax(z_T/τ) || softmax(z_S/τ))

Shapes: student and teacher logits ``(B, K)``, labels ``(B,)``. The τ² factor keeps the soft term's
gradients on the same scale as the hard term's for any τ. Defaults τ = 4, α = 0.9 (CE 0.1, KL 0.9) and the
batch-mean KL are those of RepDistiller's and mdistiller's CIFAR-100 KD.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from mentor.knowledge.base import register
from mentor.losses import CE, KL, Objective


@register("kd", "Hinton et al. 2015, Distilling the Knowledge in a Neural Network")
def kd(
    temperature: Annotated[float, Field(gt=0)] = 4.0,
    alpha: Annotated[float, Field(ge=0, le=1)] = 0.9,
) -> Objective:
    """Soft targets at temperature τ plus the hard-label cross-entropy, mixed by α."""
    return Objective(CE(weight=1.0 - alpha), KL(temperature=temperature, weight=alpha))
