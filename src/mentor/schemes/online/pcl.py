"""Peer Collaborative Learning (PCL).

Wu & Gong (2021), "Peer Collaborative Learning for Online Knowledge Distillation", AAAI, arXiv:2006.04147.

A multi-branch network (shared trunk, m peers) where each peer sees its own random augmentation x_i of
the batch. Two teachers are built on the fly:

* the peer ensemble teacher, a classifier on the concatenated peer features:
  z_e = W_e · [h_1, ..., h_m]        h_i: (B, D) features entering peer i's classifier; z_e: (B, K)
* the peer mean teachers, a temporal mean (EMA) θ'_i of each peer (trunk + branch i), updated after
  every step and never stepped: z̃_i = f(x_i; θ'_i).

    L_ce = Σ_i CE(y, z_i) + CE(y, z_e)
    L_pe = τ² Σ_i KL(p_e^τ || p_i^τ)                                 ensemble teacher -> peers
    L_pm = τ²/(m−1) Σ_i Σ_{j≠i} KL(p̃_j^τ || p_i^τ)                  mean teachers -> the other peers
    L = L_ce + w(t) (L_pe + L_pm)

Teachers are detached. w(t) = exp(−5(1 − t/T_r)²) is the mean-teacher ramp-up over T_r = ``rampup``
epochs, by default over 80/300 of the run (the released code of ONE and OKDDip, from the same group:
80 of 300 epochs; PCL released none). Readings where the paper leaves room: each mean teacher predicts on
its own peer's view x_j; the peer mean teachers teach the other peers (the collaboration among peers), at
the same ramped weight as the ensemble teacher. For inference the paper deploys a peer mean teacher; the
"mean" predictor is the mean teacher with the best running accuracy on the training batches (EMA 0.9 of
batch accuracy).

The temporal mean θ' ← α θ' + (1 − α) θ uses α_t = min(1 − 1/(t + 1), α) (Tarvainen & Valpola), a plain
average of every step so far until t = 1/(1 − α). The paper's α = 0.999 spans the last ~1000 steps,
2.6 epochs of its 300-epoch CIFAR runs (391 steps per epoch); on a run of a few hundred steps the same
α makes each mean teacher the plain average of the whole run, random start included (measured on
Fashion-MNIST, 5,850 images, 10 epochs: mean teachers 65.7% at 0.999 against 70.7% at 0.99, branches
71-72% either way). So ``decay`` (α) defaults to the paper's span in epochs: α = 1 − 1/(2.56 · S) for S
steps per epoch (0.999 at S = 391; 0.9915 at the 46 steps above); a number sets α itself.

Each peer's view x_i is the scheme's :meth:`augmentation` of the batch (a random shift by default, no
flips: a mirrored digit is another digit, or none), which the peers trained alone for comparison see too.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from mentor.batch import Batch
from mentor.data.batches import Transform
from mentor.losses.objective import LossOutput
from mentor.schemes.base import Scheme
from mentor.schemes.online.branches import MultiBranch
from mentor.schemes.online.peers import (
    Distortion,
    EvalSequential,
    check_count,
    online_scheme,
    ramped,
    rampup_weight,
    soft_kl,
)
from mentor.teachers.ema import EMATeacher

PAPER_DECAY = 0.999
"""The paper's EMA decay α (Tarvainen & Valpola's), used when no batch tells the steps per epoch."""
PAPER_SPAN_EPOCHS = 1 / (1 - PAPER_DECAY) / 391
"""Epochs the paper's temporal mean spans: 1/(1 − α) = 1000 steps at 391 steps per epoch (CIFAR, batch 128)."""


class PeerEnsemble(nn.Module):
    """Predictor: the peer ensemble teacher on the un-augmented input."""

    def __init__(self, network: MultiBranch, head: nn.Linear) -> None:
        super().__init__()
        self.network, self.head = network, head

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        shared = self.network.trunk(inputs)
        return self.head(torch.cat([self.network.branch(i, shared)[0] for i in range(len(self.network.branches))], 1))


class PeerCollaborativeLearning(Scheme):
    """Peers on one trunk, taught by a learned ensemble and by each other's temporal means."""

    def __init__(self, network: MultiBranch, temperature: float, decay: float | None, rampup: float | None,
                 distortion: Distortion, seed: int) -> None:
        super().__init__()
        self.network, self.decay = network, decay
        self.mean_teacher = EMATeacher(network, PAPER_DECAY if decay is None else decay)
        self.mean_teacher.register_buffer("accuracy", torch.zeros(len(network.branches)))
        self.temperature, self.rampup, self.distortion = temperature, rampup, distortion
        self.generator = torch.Generator().manual_seed(seed)
        self.head: nn.Linear | None = None
        self._batch_accuracy: torch.Tensor | None = None

    @property
    def count(self) -> int:
        return len(self.network.branches)

    def setup(self, batch: Batch) -> None:
        if self.decay is None:
            self.mean_teacher.span_epochs(PAPER_SPAN_EPOCHS, batch)
        if self.head is None:
            mean = self.mean_teacher.model
            with torch.no_grad():
                features, logits = mean.branch(0, mean.trunk(batch.inputs))
            self.head = nn.Linear(self.count * features.shape[1], logits.shape[1]).to(batch.device)

    def trained(self) -> dict[str, nn.Module]:
        parts: dict[str, nn.Module] = {"trunk": self.network.trunk}
        parts.update({f"branch{i}": branch for i, branch in enumerate(self.network.branches)})
        parts.update({"ensemble_head": self.head} if self.head is not None else {})
        return parts | {"mean_teacher": self.mean_teacher}

    def predictors(self) -> dict[str, nn.Module]:
        mean = self.mean_teacher.model
        best = int(self.mean_teacher.accuracy.argmax())
        parts: dict[str, nn.Module] = {"mean": EvalSequential(*mean.peer(best))}
        parts.update({f"mean{i}": EvalSequential(*mean.peer(i)) for i in range(self.count)})
        parts.update({f"branch{i}": self.network.peer(i) for i in range(self.count)})
        return parts | ({"ensemble": PeerEnsemble(self.network, self.head)} if self.head is not None else {})

    def loss(self, batch: Batch, epoch: float, epochs: int) -> LossOutput:
        if self.head is None:
            self.setup(batch)
        views = [self.distortion(batch.inputs, self.generator) for _ in range(self.count)]
        branches = [self.network.branch(i, self.network.trunk(x)) for i, x in enumerate(views)]
        features, logits = [h for h, _ in branches], [z for _, z in branches]
        ensemble = self.head(torch.cat(features, dim=1))
        mean = self.mean_teacher.model
        with torch.no_grad():
            means = [mean.branch(j, mean.trunk(x))[1] for j, x in enumerate(views)]
        self._batch_accuracy = torch.stack([(z.argmax(1) == batch.targets).float().mean() for z in means])
        parts, distillation = {"ensemble/ce": F.cross_entropy(ensemble, batch.targets)}, {}
        for i, z in enumerate(logits):
            parts[f"branch{i}/ce"] = F.cross_entropy(z, batch.targets)
            distillation[f"branch{i}/ensemble_kl"] = soft_kl(z, ensemble, self.temperature)
            others = [soft_kl(z, means[j], self.temperature) for j in range(self.count) if j != i]
            distillation[f"branch{i}/mean_kl"] = sum(others) / (self.count - 1)
        return ramped(rampup_weight(epoch, epochs, self.rampup), parts, distillation)

    def augmentation(self) -> Transform | None:
        return self.distortion if self.distortion.active else None

    def after_step(self) -> None:
        self.mean_teacher.update(self.network)
        if self._batch_accuracy is not None:
            self.mean_teacher.accuracy.mul_(0.9).add_(self._batch_accuracy, alpha=0.1)


@online_scheme("pcl", "Wu & Gong 2021, Peer Collaborative Learning for Online Knowledge Distillation (AAAI)")
def pcl(
    models: list[nn.Module],
    split: str,
    branches: Annotated[int, Field(ge=2)] = 3,
    temperature: Annotated[float, Field(gt=0)] = 3.0,
    decay: Annotated[float, Field(ge=0, lt=1)] | None = None,
    rampup: Annotated[float, Field(ge=0)] | None = None,
    shift: Annotated[int, Field(ge=0)] = 2,
    flip: bool = False,
    seed: int = 0,
) -> PeerCollaborativeLearning:
    """``models`` = [one nn.Sequential]; ``split`` names the child where the peers' branches start."""
    check_count(models, "pcl", 1, 1)
    network = MultiBranch.from_sequential(models[0], split, branches, "pcl")
    return PeerCollaborativeLearning(network, temperature, decay, rampup, Distortion(shift, flip), seed)
