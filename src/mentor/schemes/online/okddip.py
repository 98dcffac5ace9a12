"""Online Knowledge Distillation with Diverse Peers (OKDDip).

Chen, Mei, Wang, Feng & Chen (2020), "Online Knowledge Distillation with Diverse Peers", AAAI,
arXiv:1912.00350.

m >= 2 auxiliary peers and one group leader, trained together with two-level distillation. Each peer a
derives its own target from all peers' logits with attention weights computed from their features:

    h_a = features of peer a at ``feature`` (flattened)                    (B, D)
    α_ab = softmax_b((W_q h_a)ᵀ (W_k h_b))          W_q, W_k: D -> d, shared  (B, m, m)
    t_a = Σ_b α_ab z_b                                                      (B, K)
    L_1 = τ² Σ_a KL(softmax(t_a/τ) || softmax(z_a/τ))        first level: peer targets -> peers
    L_2 = τ² KL(softmax(z̄/τ) || softmax(z_L/τ)),  z̄ = 1/m Σ_a z_a (detached)   second level: -> leader
    L = Σ_a CE(y, z_a) + CE(y, z_L) + w(t) (L_1 + L_2)

The first-level targets keep their gradient path, so the projections W_q, W_k learn from L_1 as in the
paper's end-to-end training and the authors' released code (τ = 3, KL summed over classes and averaged
over the batch). The leader's target is detached, so the leader never changes the peers: the released
code leaves the peers' mean attached there, which lets the second level pull the peers toward the leader
as well; the paper describes a transfer from the group to the leader only, which is what is done here.
d (``attention_dim``) defaults to D/8 as in the paper; w(t) = exp(−5(1 − t/T_r)²) is the sigmoid ramp-up
over T_r = ``rampup`` epochs, by default over 80/300 of the run (the released code's 80 of its 300
epochs). ``models`` = [leader, peer_1, ..., peer_m]; the leader is the deployed model.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from mentor.batch import Batch
from mentor.errors import MentorError
from mentor.losses.functional import kl_divergence
from mentor.losses.objective import LossOutput
from mentor.schemes.base import Scheme
from mentor.schemes.online.peers import (
    Ensemble,
    check_count,
    forward,
    online_scheme,
    probe,
    ramped,
    rampup_weight,
    soft_kl,
)


def peer_targets(logits: torch.Tensor, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """t_a = Σ_b softmax_b(q_a · k_b) z_b for logits ``(B, m, K)``, queries and keys ``(B, m, d)``."""
    attention = F.softmax(queries @ keys.transpose(1, 2), dim=2)   # (B, m, m), rows sum to 1
    return attention @ logits


class DiversePeers(Scheme):
    """A group leader and auxiliary peers with attention-derived, peer-specific targets."""

    def __init__(self, leader: nn.Module, peers: list[nn.Module], feature: str, temperature: float,
                 attention_dim: int | None, rampup: float | None) -> None:
        super().__init__()
        self.leader, self.peers = leader, nn.ModuleList(peers)
        self.feature, self.temperature, self.attention_dim, self.rampup = feature, temperature, attention_dim, rampup
        self.attention: nn.ModuleDict | None = None

    def setup(self, batch: Batch) -> None:
        if self.attention is None:
            widths = {probe(peer, batch.inputs, (self.feature,)).features[self.feature].flatten(1).shape[1]
                      for peer in self.peers}
            if len(widths) != 1:
                raise MentorError(f"okddip shares its attention projections across peers, so every peer's "
                                  f"'{self.feature}' must have the same width; got widths {sorted(widths)}")
            width = widths.pop()
            dim = self.attention_dim or max(1, width // 8)
            self.attention = nn.ModuleDict({"query": nn.Linear(width, dim, bias=False),
                                            "key": nn.Linear(width, dim, bias=False)}).to(batch.device)

    def trained(self) -> dict[str, nn.Module]:
        parts: dict[str, nn.Module] = {"leader": self.leader}
        parts.update({f"peer{k}": peer for k, peer in enumerate(self.peers)})
        return parts | ({"attention": self.attention} if self.attention is not None else {})

    def predictors(self) -> dict[str, nn.Module]:
        peers = {f"peer{k}": peer for k, peer in enumerate(self.peers)}
        return {"leader": self.leader, **peers, "ensemble": Ensemble(list(self.peers))}

    def loss(self, batch: Batch, epoch: float, epochs: int) -> LossOutput:
        if self.attention is None:
            self.setup(batch)
        outs = [forward(peer, batch.inputs, (self.feature,)) for peer in self.peers]
        leader = forward(self.leader, batch.inputs).logits
        logits = torch.stack([out.logits for out in outs], dim=1)                       # (B, m, K)
        features = torch.stack([out.features[self.feature].flatten(1) for out in outs], dim=1)
        targets = peer_targets(logits, self.attention["query"](features), self.attention["key"](features))
        tau = self.temperature
        parts = {"leader/ce": F.cross_entropy(leader, batch.targets)}
        distillation = {"leader/kl": soft_kl(leader, logits.mean(1), tau)}
        for a in range(len(self.peers)):
            parts[f"peer{a}/ce"] = F.cross_entropy(logits[:, a], batch.targets)
            first_level = kl_divergence(F.log_softmax(logits[:, a] / tau, 1), F.softmax(targets[:, a] / tau, 1))
            distillation[f"peer{a}/kl"] = tau**2 * first_level
        return ramped(rampup_weight(epoch, epochs, self.rampup), parts, distillation)


@online_scheme("okddip", "Chen et al. 2020, Online Knowledge Distillation with Diverse Peers (AAAI)")
def okddip(
    models: list[nn.Module],
    feature: str = "head:input",
    temperature: Annotated[float, Field(gt=0)] = 3.0,
    attention_dim: Annotated[int, Field(gt=0)] | None = None,
    rampup: Annotated[float, Field(ge=0)] | None = None,
) -> DiversePeers:
    """``models`` = [leader, peer_1, ..., peer_m] with m >= 2; ``feature`` = the path of the peers' features."""
    check_count(models, "okddip", 3)
    return DiversePeers(models[0], models[1:], feature, temperature, attention_dim, rampup)
