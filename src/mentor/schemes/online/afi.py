"""Attention-based Feature Interaction (AFI) for online KD.

Su, Liang, Zhang, Yu, Wang & Liu (2021), "Attention-based Feature Interaction for Efficient Online
Knowledge Distillation", ICDM, pp. 579-588, doi:10.1109/ICDM51629.2021.00069.

Two peers exchange features through an attention module; the interacted features feed one auxiliary
classifier per peer, and each peer and its interacted classifier teach each other:

    u = [F_1, F_2]              peers' maps at ``tap``, pooled to the smallest H x W   (B, C_1 + C_2, H, W)
    s = sigmoid(W_2 ReLU(W_1 GAP(u)))                channel attention on both peers' channels  (B, C_1 + C_2)
    g_k = ReLU(BN(Conv1x1_k(s ⊙ u)))                  interacted features for peer k           (B, C_k, H, W)
    z'_k = W'_k GAP(g_k)                              interacted (auxiliary) classifier k       (B, K)
    L = Σ_k [CE(y, z_k) + CE(y, z'_k) + τ² KL(p'_k^τ || p_k^τ) + τ² KL(p_k^τ || p'_k^τ)]

Targets are detached in every KL. Readings where the paper is vague: the interaction is a squeeze-and-
excitation channel attention over the concatenated maps (hidden width (C_1 + C_2)/``reduction``), and each
peer's interacted map is a 1x1 projection of the re-weighted concatenation back to that peer's width; the
interaction lives in these auxiliary heads only, so each peer's own forward pass is unchanged and deploys
alone; "mutual KD" is the two-way KL between each peer and its own interacted classifier. The paper
(which names the method AFID) exchanges maps at low and middle depths and adds a peer-fused and a
peer-ensemble teacher; here one tap is exchanged and the interacted classifiers play the fused teachers'
role (pass the deeper stage as ``tap``).
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from mentor.batch import Batch
from mentor.losses.objective import LossOutput
from mentor.schemes.base import Scheme
from mentor.schemes.online.peers import (
    Ensemble,
    check_count,
    online_scheme,
    probe,
    resize_maps,
    soft_kl,
    tap_paths,
    tapped,
)


class FeatureInteraction(nn.Module):
    """Both peers' maps -> channel attention -> one interacted map and classifier per peer."""

    def __init__(self, widths: list[int], classes: int, reduction: int) -> None:
        super().__init__()
        channels = sum(widths)
        self.squeeze = nn.Linear(channels, max(channels // reduction, 1))
        self.excite = nn.Linear(max(channels // reduction, 1), channels)
        self.projections = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels, w, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU()) for w in widths)
        self.classifiers = nn.ModuleList(nn.Linear(w, classes) for w in widths)

    def forward(self, maps: list[torch.Tensor]) -> list[torch.Tensor]:  # type: ignore[override]
        joint = torch.cat(resize_maps(maps), dim=1)
        attention = torch.sigmoid(self.excite(F.relu(self.squeeze(joint.mean(dim=(2, 3))))))
        attended = joint * attention[:, :, None, None]
        heads = zip(self.projections, self.classifiers, strict=True)
        return [classifier(project(attended).mean(dim=(2, 3))) for project, classifier in heads]


class Interacted(nn.Module):
    """Predictor: interacted classifier ``index`` (runs both peers)."""

    def __init__(self, peers: nn.ModuleList, taps: list[str], interaction: FeatureInteraction, index: int) -> None:
        super().__init__()
        self.peers, self.taps, self.interaction, self.index = peers, taps, interaction, index

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.interaction(tapped(self.peers, inputs, self.taps)[1])[self.index]


class AttentiveFeatureInteraction(Scheme):
    """Two peers and their attention-interacted auxiliary classifiers, teaching each other."""

    def __init__(self, peers: list[nn.Module], taps: list[str], temperature: float, reduction: int) -> None:
        super().__init__()
        self.peers = nn.ModuleList(peers)
        self.taps, self.temperature, self.reduction = taps, temperature, reduction
        self.interaction: FeatureInteraction | None = None

    def setup(self, batch: Batch) -> None:
        if self.interaction is None:
            outs, maps = tapped(self.peers, batch.inputs, self.taps, probe)
            maps = resize_maps(maps)
            interaction = FeatureInteraction([m.shape[1] for m in maps], outs[0].logits.shape[1], self.reduction)
            self.interaction = interaction.to(batch.device)

    def trained(self) -> dict[str, nn.Module]:
        peers: dict[str, nn.Module] = {f"peer{k}": peer for k, peer in enumerate(self.peers)}
        return peers | ({"interaction": self.interaction} if self.interaction is not None else {})

    def predictors(self) -> dict[str, nn.Module]:
        parts: dict[str, nn.Module] = {f"peer{k}": peer for k, peer in enumerate(self.peers)}
        if self.interaction is not None:
            parts.update({f"interacted{k}": Interacted(self.peers, self.taps, self.interaction, k) for k in (0, 1)})
        return parts | {"ensemble": Ensemble(list(self.peers))}

    def loss(self, batch: Batch, epoch: float, epochs: int) -> LossOutput:
        if self.interaction is None:
            self.setup(batch)
        outs, maps = tapped(self.peers, batch.inputs, self.taps)
        interacted = self.interaction(maps)
        parts = {}
        for k, (out, auxiliary) in enumerate(zip(outs, interacted, strict=True)):
            parts[f"peer{k}/ce"] = F.cross_entropy(out.logits, batch.targets)
            parts[f"peer{k}/kl"] = soft_kl(out.logits, auxiliary, self.temperature)
            parts[f"interacted{k}/ce"] = F.cross_entropy(auxiliary, batch.targets)
            parts[f"interacted{k}/kl"] = soft_kl(auxiliary, out.logits, self.temperature)
        return LossOutput.of(parts)


@online_scheme("afi", "Su et al. 2021, Attention-based Feature Interaction for Efficient Online KD (ICDM)")
def afi(
    models: list[nn.Module],
    tap: str | list[str] = "pool:input",
    temperature: Annotated[float, Field(gt=0)] = 3.0,
    reduction: Annotated[int, Field(gt=0)] = 4,
) -> AttentiveFeatureInteraction:
    """``models`` = the two peers; ``tap`` = where their feature maps are exchanged (one or one per peer)."""
    check_count(models, "afi", 2, 2)
    return AttentiveFeatureInteraction(models, tap_paths(tap, 2, "afi"), temperature, reduction)
