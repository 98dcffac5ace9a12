"""Feature Fusion Learning (FFL).

Kim, Hyun, Chung & Kwak (2021), "Feature Fusion for Online Mutual Knowledge Distillation", ICPR 2020,
arXiv:1904.09058.

N >= 2 sub-networks of any architectures; a fusion module concatenates their feature maps and learns
its own classifier. Ensemble knowledge flows into the fused classifier, fused knowledge into every
sub-network (mutual knowledge distillation):

    F_i = feature map of sub-network i at ``tap``, pooled to the smallest H x W   (B, C_i, H, W)
    u = ReLU(BN(PW(ReLU(BN(DW(concat_i F_i))))))    DW: 3x3 depthwise, PW: 1x1 to C_f  (B, C_f, H, W)
    z_f = W_f · GAP(u)                               fused classifier   (B, K)
    z_e = 1/N Σ_i z_i                                ensemble of the sub-networks' logits
    L_sub   = Σ_i CE(y, z_i) + w(t) τ² Σ_i KL(p_f^τ || p_i^τ)
    L_fused = CE(y, z_f) + w(t) τ² KL(p_e^τ || p_f^τ)

Teachers are detached in each KL (targets); the fused classifier's cross-entropy trains the fusion module
and, through the concatenated maps, the sub-networks. L = L_sub + L_fused in one backward pass equals the
paper's separate updates of sub-networks and fusion module from the same predictions. C_f (``fused_channels``)
defaults to the widest tapped map. As in the authors' released code (τ = 3, KL summed over classes and
averaged over the batch), w(t) = exp(−5(1 − t/T_r)²) ramps the distillation up over T_r = ``rampup``
epochs; by default over 80/300 of the run, the code's 80 of its 300 epochs.
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
    ramped,
    rampup_weight,
    resize_maps,
    soft_kl,
    tap_paths,
    tapped,
)


class FusionModule(nn.Module):
    """Concatenated maps ``(B, ΣC_i, H, W)`` -> depthwise 3x3 + BN + ReLU -> 1x1 + BN + ReLU -> GAP -> FC."""

    def __init__(self, channels: int, fused_channels: int, classes: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
        self.norm1 = nn.BatchNorm2d(channels)
        self.pointwise = nn.Conv2d(channels, fused_channels, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(fused_channels)
        self.classifier = nn.Linear(fused_channels, classes)

    def forward(self, maps: list[torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        x = F.relu(self.norm1(self.depthwise(torch.cat(resize_maps(maps), dim=1))))
        x = F.relu(self.norm2(self.pointwise(x)))
        return self.classifier(x.mean(dim=(2, 3)))


class Fused(nn.Module):
    """Predictor: every sub-network, then the fusion module's classifier."""

    def __init__(self, peers: nn.ModuleList, taps: list[str], fusion: FusionModule) -> None:
        super().__init__()
        self.peers, self.taps, self.fusion = peers, taps, fusion

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.fusion(tapped(self.peers, inputs, self.taps)[1])


class FeatureFusionLearning(Scheme):
    """Sub-networks and a fusion classifier teaching each other."""

    def __init__(self, peers: list[nn.Module], taps: list[str], temperature: float, fused_channels: int | None,
                 rampup: float | None) -> None:
        super().__init__()
        self.peers = nn.ModuleList(peers)
        self.taps, self.temperature, self.fused_channels, self.rampup = taps, temperature, fused_channels, rampup
        self.fusion: FusionModule | None = None

    def setup(self, batch: Batch) -> None:
        if self.fusion is None:
            outs, maps = tapped(self.peers, batch.inputs, self.taps, probe)
            widths = [m.shape[1] for m in resize_maps(maps)]
            fused = self.fused_channels or max(widths)
            self.fusion = FusionModule(sum(widths), fused, outs[0].logits.shape[1]).to(batch.device)

    def trained(self) -> dict[str, nn.Module]:
        peers: dict[str, nn.Module] = {f"peer{k}": peer for k, peer in enumerate(self.peers)}
        return peers | ({"fusion": self.fusion} if self.fusion is not None else {})

    def predictors(self) -> dict[str, nn.Module]:
        peers: dict[str, nn.Module] = {f"peer{k}": peer for k, peer in enumerate(self.peers)}
        fused = {"fused": Fused(self.peers, self.taps, self.fusion)} if self.fusion is not None else {}
        return peers | fused | {"ensemble": Ensemble(list(self.peers))}

    def loss(self, batch: Batch, epoch: float, epochs: int) -> LossOutput:
        if self.fusion is None:
            self.setup(batch)
        outs, maps = tapped(self.peers, batch.inputs, self.taps)
        fused = self.fusion(maps)
        ensemble = torch.stack([out.logits for out in outs]).mean(0)
        parts = {"fused/ce": F.cross_entropy(fused, batch.targets)}
        distillation = {"fused/kl": soft_kl(fused, ensemble, self.temperature)}
        for k, out in enumerate(outs):
            parts[f"peer{k}/ce"] = F.cross_entropy(out.logits, batch.targets)
            distillation[f"peer{k}/kl"] = soft_kl(out.logits, fused, self.temperature)
        return ramped(rampup_weight(epoch, epochs, self.rampup), parts, distillation)


@online_scheme("ffl", "Kim et al. 2021, Feature Fusion for Online Mutual Knowledge Distillation (ICPR)")
def ffl(
    models: list[nn.Module],
    tap: str | list[str] = "pool:input",
    temperature: Annotated[float, Field(gt=0)] = 3.0,
    fused_channels: Annotated[int, Field(gt=0)] | None = None,
    rampup: Annotated[float, Field(ge=0)] | None = None,
) -> FeatureFusionLearning:
    """``models`` = N >= 2 sub-networks; ``tap`` = the module path (one, or one per peer) of the fused maps."""
    check_count(models, "ffl", 2)
    return FeatureFusionLearning(models, tap_paths(tap, len(models), "ffl"), temperature, fused_channels, rampup)
