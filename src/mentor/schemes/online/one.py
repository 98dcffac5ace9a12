"""On-the-fly Native Ensemble (ONE).

Lan, Zhu & Gong (2018), "Knowledge Distillation by On-the-Fly Native Ensemble", NeurIPS, arXiv:1806.04606.

One network is split into shared low layers and m branches (copies of the upper layers). A gate on the
shared features weights the branch logits into an ensemble teacher, which every branch distils from:

    shared = trunk(x)                                  (B, C, H, W)
    z_i = branch_i(shared)                             (B, K), i = 1..m
    g = softmax(ReLU(BN(W_g · GAP(shared))))           (B, m)   the gate: FC + BN + ReLU + softmax
    z_e = Σ_i g_i · z_i                                (B, K)   the on-the-fly native ensemble
    L = Σ_i CE(y, z_i) + CE(y, z_e) + w(t) τ² Σ_i KL(softmax(z_e/τ) || softmax(z_i/τ))

The ensemble is detached in the KL terms (it is the teacher); it learns through its own cross-entropy,
which also trains the gate. As in the authors' released code (τ = 3, KL summed over classes and averaged
over the batch), w(t) = exp(−5(1 − t/T_r)²) ramps the distillation up over T_r = ``rampup`` epochs; by
default over 80/300 of the run, the code's 80 of its 300 epochs. Any branch is deployed alone ("branch0",
the model passed in); the gated ensemble is evaluated as "ensemble". ``models`` is ``[model]``, an
``nn.Sequential``; ``split`` names the child where the branches start (``stage2`` of a two-stage CNN).
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
from mentor.schemes.online.branches import MultiBranch
from mentor.schemes.online.peers import check_count, online_scheme, ramped, rampup_weight, soft_kl


def pooled(shared: torch.Tensor) -> torch.Tensor:
    """Global average over every axis after the channels: ``(B, C, ...) -> (B, C)``."""
    return shared.flatten(2).mean(2) if shared.ndim > 2 else shared


class Gate(nn.Module):
    """FC + BN + ReLU + softmax from the pooled shared features ``(B, C)`` to branch weights ``(B, m)``."""

    def __init__(self, channels: int, branches: int) -> None:
        super().__init__()
        self.fc = nn.Linear(channels, branches)
        self.norm = nn.BatchNorm1d(branches)

    def forward(self, shared: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return F.softmax(F.relu(self.norm(self.fc(pooled(shared)))), dim=1)


def gated_ensemble(network: MultiBranch, gate: Gate, inputs: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Branch logits ``[(B, K)] * m`` and the gated ensemble logits ``(B, K)``."""
    shared = network.trunk(inputs)
    logits = [network.branch(i, shared)[1] for i in range(len(network.branches))]
    weights = gate(shared)
    return logits, torch.einsum("bm,mbk->bk", weights, torch.stack(logits))


class GatedEnsemble(nn.Module):
    """Predictor: the gate-weighted sum of the branch logits."""

    def __init__(self, network: MultiBranch, gate: Gate) -> None:
        super().__init__()
        self.network, self.gate = network, gate

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return gated_ensemble(self.network, self.gate, inputs)[1]


class NativeEnsemble(Scheme):
    """m branches on a shared trunk, taught by their gated ensemble."""

    def __init__(self, network: MultiBranch, temperature: float, rampup: float | None) -> None:
        super().__init__()
        self.network = network
        self.temperature, self.rampup = temperature, rampup
        self.gate: Gate | None = None

    def setup(self, batch: Batch) -> None:
        if self.gate is None:
            with torch.no_grad():
                was_training = self.network.training
                shared = self.network.eval().trunk(batch.inputs)
                self.network.train(was_training)
            self.gate = Gate(pooled(shared).shape[1], len(self.network.branches)).to(batch.device)

    def trained(self) -> dict[str, nn.Module]:
        parts: dict[str, nn.Module] = {"trunk": self.network.trunk}
        parts.update({f"branch{i}": branch for i, branch in enumerate(self.network.branches)})
        return parts | ({"gate": self.gate} if self.gate is not None else {})

    def predictors(self) -> dict[str, nn.Module]:
        branches = {f"branch{i}": self.network.peer(i) for i in range(len(self.network.branches))}
        return branches | ({"ensemble": GatedEnsemble(self.network, self.gate)} if self.gate is not None else {})

    def loss(self, batch: Batch, epoch: float, epochs: int) -> LossOutput:
        if self.gate is None:
            self.setup(batch)
        logits, ensemble = gated_ensemble(self.network, self.gate, batch.inputs)
        parts, distillation = {"ensemble/ce": F.cross_entropy(ensemble, batch.targets)}, {}
        for i, z in enumerate(logits):
            parts[f"branch{i}/ce"] = F.cross_entropy(z, batch.targets)
            distillation[f"branch{i}/kl"] = soft_kl(z, ensemble, self.temperature)
        return ramped(rampup_weight(epoch, epochs, self.rampup), parts, distillation)


@online_scheme("one", "Lan, Zhu & Gong 2018, Knowledge Distillation by On-the-Fly Native Ensemble (NeurIPS)")
def one(
    models: list[nn.Module],
    split: str,
    branches: Annotated[int, Field(ge=2)] = 3,
    temperature: Annotated[float, Field(gt=0)] = 3.0,
    rampup: Annotated[float, Field(ge=0)] | None = None,
) -> NativeEnsemble:
    """``models`` = [one nn.Sequential]; children before ``split`` are shared, the rest copied per branch."""
    check_count(models, "one", 1, 1)
    return NativeEnsemble(MultiBranch.from_sequential(models[0], split, branches, "one"), temperature, rampup)
