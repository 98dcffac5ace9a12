"""Deep Mutual Learning (DML).

Zhang, Xiang, Hospedales & Lu (2018), "Deep Mutual Learning", CVPR, arXiv:1706.00384.

K >= 2 peers of any architectures learn together; each minimises its cross-entropy plus the mean KL
divergence from every other peer's prediction to its own:

    L_k = CE(y, p_k) + 1/(K−1) Σ_{j≠k} τ² · KL(p_j^τ || p_k^τ)

Logits ``(B, K)`` per peer; p^τ = softmax(z/τ). The paper uses τ = 1 (then τ² = 1 and this is its
equation exactly). The other peers' predictions are detached: they are targets for peer k. Because of
that, the gradient of Σ_k L_k with respect to peer k's weights is the gradient of L_k alone, so one
backward pass of the sum followed by one optimizer step is exactly the simultaneous update of every peer
from the same predictions. (The paper's Algorithm 1 alternates the peers' updates, predicting again
between them; the simultaneous form needs one forward pass per peer per step.)
"""

from __future__ import annotations

from typing import Annotated

import torch.nn.functional as F
from pydantic import Field
from torch import nn

from mentor.batch import Batch
from mentor.losses.objective import LossOutput
from mentor.schemes.base import Scheme
from mentor.schemes.online.peers import Ensemble, check_count, forward, mutual_kl, online_scheme


class DeepMutualLearning(Scheme):
    """K peers, each learning from the labels and from the others' predictions."""

    def __init__(self, peers: list[nn.Module], temperature: float = 1.0) -> None:
        super().__init__()
        self.peers = nn.ModuleList(peers)
        self.temperature = temperature

    def trained(self) -> dict[str, nn.Module]:
        return {f"peer{k}": peer for k, peer in enumerate(self.peers)}

    def predictors(self) -> dict[str, nn.Module]:
        return {**self.trained(), "ensemble": Ensemble(list(self.peers))}

    def loss(self, batch: Batch, epoch: float, epochs: int) -> LossOutput:
        logits = [forward(peer, batch.inputs).logits for peer in self.peers]
        mimicry = mutual_kl(logits, self.temperature)
        parts = {}
        for k, (z, kl) in enumerate(zip(logits, mimicry, strict=True)):
            parts[f"peer{k}/ce"], parts[f"peer{k}/kl"] = F.cross_entropy(z, batch.targets), kl
        return LossOutput.of(parts)


@online_scheme("dml", "Zhang et al. 2018, Deep Mutual Learning (CVPR)")
def dml(models: list[nn.Module], temperature: Annotated[float, Field(gt=0)] = 1.0) -> DeepMutualLearning:
    """``models`` = the K >= 2 peers (any architectures with the same classes)."""
    check_count(models, "dml", 2)
    return DeepMutualLearning(models, temperature)
