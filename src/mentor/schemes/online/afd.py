"""Online Adversarial Feature map Distillation (AFD).

Chung, Park, Kim & Kwak (2020), "Feature-map-level Online Adversarial Knowledge Distillation", ICML,
arXiv:2002.01775.

N >= 2 networks trained together. Network k has a discriminator D_k that takes the feature maps of the
network it learns from, r(k) = (k − 1) mod N (for two networks: the other one), as real and its own as
fake; network k learns the other's feature-map distribution by fooling D_k (the paper's cyclic learning
scheme for N > 2). Least-squares GAN losses on the maps F_k at ``tap``:

    F_k = T_k(feature map of network k)       T_k: 1x1 conv + BN + ReLU to the widest map's channels when
                                              the widths differ (the paper's transfer layer), then pooled to
                                              the smallest H x W                            (B, C, H, W)
    L_D_k = mean (1 − D_k(F_r(k)))² + mean D_k(F_k)²               discriminator, features detached
    L_G_k = mean (1 − D_k(F_k))²                                    network k, D_k's weights detached
    L_k = CE(y, z_k) + 1/(N−1) Σ_{j≠k} τ² KL(p_j^τ || p_k^τ) + λ L_G_k         logit part: DML style
    L = Σ_k (L_k + L_D_k)

D_k(F) = sigmoid(mean_{h,w} Conv1x1(LeakyReLU(BN(Conv3x3(F))))) ``(B,)``. The generator terms evaluate
D_k with detached parameters (``torch.func.functional_call``) and the discriminator terms see detached
maps, so one backward pass updates the networks with L_k and the discriminators with L_D_k only, as the
paper's alternating updates do; the discriminators have their own optimizer group.

No code was released with the paper to compare scales with. At λ = 1 (``adversarial``) the generator term
has 0.07 of the cross-entropy's gradient at the start and 0.2-0.4 after two epochs; on a short schedule it
still costs accuracy (Fashion-MNIST, 5,850 images, 10 epochs, 2-3 seeds: small CNNs of different widths
70.8% and 66.4% against 74.7% and 67.9% alone, equal widths 72.5% and 71.4% against 74.7% and 73.4%),
while λ = 0.1 trains level with the networks alone (74.1%, 68.0%): lower λ for short runs.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn
from torch.func import functional_call

from mentor.batch import Batch
from mentor.losses.objective import LossOutput
from mentor.schemes.base import Scheme
from mentor.schemes.online.peers import (
    Ensemble,
    check_count,
    mutual_kl,
    online_scheme,
    probe,
    resize_maps,
    tap_paths,
    tapped,
)


class Discriminator(nn.Module):
    """Feature map ``(B, C, H, W)`` -> probability ``(B,)`` that it comes from the other network."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = max(channels // 2, 8)
        self.body = nn.Sequential(nn.Conv2d(channels, hidden, 3, padding=1, bias=False), nn.BatchNorm2d(hidden),
                                  nn.LeakyReLU(0.2), nn.Conv2d(hidden, 1, 1))

    def forward(self, maps: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return torch.sigmoid(self.body(maps).mean(dim=(1, 2, 3)))


def transfer_layer(channels: int, width: int) -> nn.Module:
    """1x1 conv + BN + ReLU from ``channels`` to ``width`` (identity when they match)."""
    if channels == width:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(channels, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())


class AdversarialFeatureDistillation(Scheme):
    """Networks that fool discriminators of each other's feature maps and mimic each other's logits."""

    def __init__(self, peers: list[nn.Module], taps: list[str], temperature: float, adversarial: float) -> None:
        super().__init__()
        self.peers = nn.ModuleList(peers)
        self.taps, self.temperature, self.adversarial = taps, temperature, adversarial
        self.transfers: nn.ModuleList | None = None
        self.discriminators: nn.ModuleList | None = None

    def setup(self, batch: Batch) -> None:
        if self.discriminators is None:
            maps = resize_maps(tapped(self.peers, batch.inputs, self.taps, probe)[1])
            width = max(m.shape[1] for m in maps)
            device = batch.device
            self.transfers = nn.ModuleList(transfer_layer(m.shape[1], width) for m in maps).to(device)
            self.discriminators = nn.ModuleList(Discriminator(width) for _ in maps).to(device)

    def trained(self) -> dict[str, nn.Module]:
        parts: dict[str, nn.Module] = {f"peer{k}": peer for k, peer in enumerate(self.peers)}
        if self.transfers is not None and self.discriminators is not None:
            parts.update({f"transfer{k}": t for k, t in enumerate(self.transfers) if not isinstance(t, nn.Identity)})
            parts.update({f"discriminator{k}": d for k, d in enumerate(self.discriminators)})
        return parts

    def optimized(self) -> dict[str, list[nn.Parameter]]:
        groups: dict[str, list[nn.Parameter]] = {"networks": [], "discriminators": []}
        for name, module in self.trained().items():
            groups["discriminators" if name.startswith("discriminator") else "networks"] += list(module.parameters())
        return groups

    def predictors(self) -> dict[str, nn.Module]:
        peers: dict[str, nn.Module] = {f"peer{k}": peer for k, peer in enumerate(self.peers)}
        return peers | {"ensemble": Ensemble(list(self.peers))}

    def loss(self, batch: Batch, epoch: float, epochs: int) -> LossOutput:
        if self.discriminators is None or self.transfers is None:
            self.setup(batch)
        outs, tapped_maps = tapped(self.peers, batch.inputs, self.taps)
        maps = [transfer(m) for transfer, m in zip(self.transfers, resize_maps(tapped_maps), strict=True)]
        logits = [out.logits for out in outs]
        mimicry = mutual_kl(logits, self.temperature)
        parts: dict[str, torch.Tensor] = {}
        for k, discriminator in enumerate(self.discriminators):
            frozen = {name: p.detach() for name, p in discriminator.named_parameters()}
            fooled = functional_call(discriminator, frozen, (maps[k],))
            real, fake = maps[k - 1].detach(), maps[k].detach()            # r(k) = k − 1 (mod N)
            parts[f"peer{k}/ce"] = F.cross_entropy(logits[k], batch.targets)
            parts[f"peer{k}/kl"] = mimicry[k]
            parts[f"peer{k}/adversarial"] = self.adversarial * (1.0 - fooled).pow(2).mean()
            parts[f"discriminator{k}"] = (1.0 - discriminator(real)).pow(2).mean() + discriminator(fake).pow(2).mean()
        return LossOutput.of(parts)


@online_scheme("afd", "Chung et al. 2020, Feature-map-level Online Adversarial Knowledge Distillation (ICML)")
def afd(
    models: list[nn.Module],
    tap: str | list[str] = "pool:input",
    temperature: Annotated[float, Field(gt=0)] = 3.0,
    adversarial: Annotated[float, Field(ge=0)] = 1.0,
) -> AdversarialFeatureDistillation:
    """``models`` = N >= 2 networks; ``tap`` = the feature map each discriminator sees (one or one per network)."""
    check_count(models, "afd", 2)
    return AdversarialFeatureDistillation(models, tap_paths(tap, len(models), "afd"), temperature, adversarial)
