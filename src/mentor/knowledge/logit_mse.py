"""Regressing logits: the student matches the teacher's pre-softmax outputs with a squared L2 loss.

Ba & Caruana (2014), "Do Deep Nets Really Need to be Deep?", NeurIPS, arXiv:1312.6184: a shallow
student regresses the teacher's logits z_T directly (no softmax, no temperature),

    L_mimic = ‖z_T − z_S‖²₂         per sample, averaged over the batch (the paper's 1/(2T) Σ_t up to ½).

Tang et al. (2019), "Distilling Task-Specific Knowledge from BERT into Simple Neural Networks",
arXiv:1903.12136, mix it with the hard-label cross-entropy:

    L = α · CE(y, softmax(z_S)) + (1 − α) · ‖z_T − z_S‖²₂

Shapes: student and teacher logits ``(B, K)`` (same K), labels ``(B,)``. ``alpha=0`` (the default) is
Ba & Caruana's pure logit regression.

Scale: neither paper released code; the distance is the papers' squared L2 over the K logits. Against a
trained teacher its gradient starts at ~80 times a cross-entropy gradient (Fashion-MNIST CNN pair), so
with 0 < α < 1 the regression leads until the logits match; the default α = 0 has no CE to balance.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from mentor.knowledge.base import register
from mentor.losses import CE, Distance, Objective


@register("logit_mse", "Ba & Caruana 2014, Do Deep Nets Really Need to be Deep?; Tang et al. 2019 (arXiv:1903.12136)")
def logit_mse(alpha: Annotated[float, Field(ge=0, le=1)] = 0.0) -> Objective:
    """α · CE + (1 − α) · ‖z_T − z_S‖²₂ on the logits (squared L2 per sample, batch mean)."""
    regression = Distance(None, None, 2, 2, None, weight=1.0 - alpha, reduction="batchmean", name="logit_mse")
    return Objective(CE(weight=alpha), regression)
