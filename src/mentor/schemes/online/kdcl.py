"""Knowledge Distillation via Collaborative Learning (KDCL).

Guo, Wang, Wu, Yu, Liang, Hu & Luo (2020), "Online Knowledge Distillation via Collaborative Learning",
CVPR, pp. 11020-11029.

m >= 2 students of different capacities; each sees its own distortion x_k of the batch (random shift,
optional flip and noise from a generator the scheme owns, seeded), and all are taught by one soft target
built from their logits z_k ``(B, K)``:

    KDCL-MinLogit:  z̄_k = z_k − z_k[y] · 1  (each student's logits minus its target-class logit),
                    z_t = min_k z̄_k  element-wise                 (``ensemble: minlogit``)
    naive ensemble: z_t = 1/m Σ_k z_k                             (``ensemble: average``)
    L = Σ_k [CE(y, z_k) + λ τ² KL(softmax(z_t/τ) || softmax(z_k/τ))]

The target is detached (it is the teacher). MinLogit needs the labels: it keeps the target class at 0 and
every other class at its lowest value over the students, i.e. the most confident combined opinion.
No code was released with the paper to compare scales with; the KL carries Hinton's τ², so λ = 1 puts
the soft term on the cross-entropy's gradient scale at any τ (measured on 2 small CNNs: 0.5-0.7 of the
cross-entropy's gradient at the start, 0.1-0.5 after two epochs). The distortion
is the scheme's :meth:`augmentation`, so the students trained alone for comparison see it too; flips
are off by default (a mirrored digit is another digit, or none): turn them on for data they suit.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from mentor.batch import Batch
from mentor.data.batches import Transform
from mentor.losses.objective import LossOutput
from mentor.schemes.base import Scheme
from mentor.schemes.online.peers import Distortion, Ensemble, check_count, forward, online_scheme, soft_kl


def min_logit(logits: list[torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
    """KDCL-MinLogit target ``(B, K)`` from students' logits ``[(B, K)] * m`` and labels ``(B,)``."""
    stacked = torch.stack(logits)                                           # (m, B, K)
    target_logit = stacked.gather(2, targets.view(1, -1, 1).expand(len(logits), -1, 1))
    return (stacked - target_logit).min(dim=0).values


class CollaborativeLearning(Scheme):
    """Students on individually distorted inputs, taught by an ensemble of all of them."""

    def __init__(self, students: list[nn.Module], ensemble: str, temperature: float, weight: float,
                 distortion: Distortion, seed: int) -> None:
        super().__init__()
        self.students = nn.ModuleList(students)
        self.ensemble, self.temperature, self.weight, self.distortion = ensemble, temperature, weight, distortion
        self.generator = torch.Generator().manual_seed(seed)

    def trained(self) -> dict[str, nn.Module]:
        return {f"peer{k}": student for k, student in enumerate(self.students)}

    def predictors(self) -> dict[str, nn.Module]:
        return {**self.trained(), "ensemble": Ensemble(list(self.students))}

    def augmentation(self) -> Transform | None:
        return self.distortion if self.distortion.active else None

    def soft_target(self, logits: list[torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
        if self.ensemble == "minlogit":
            return min_logit(logits, targets)
        return torch.stack(logits).mean(0)

    def loss(self, batch: Batch, epoch: float, epochs: int) -> LossOutput:
        logits = []
        for student in self.students:
            logits.append(forward(student, self.distortion(batch.inputs, self.generator)).logits)
        target = self.soft_target(logits, batch.targets).detach()
        parts = {}
        for k, z in enumerate(logits):
            parts[f"peer{k}/ce"] = F.cross_entropy(z, batch.targets)
            parts[f"peer{k}/kl"] = self.weight * soft_kl(z, target, self.temperature)
        return LossOutput.of(parts)


@online_scheme("kdcl", "Guo et al. 2020, Online Knowledge Distillation via Collaborative Learning (CVPR)")
def kdcl(
    models: list[nn.Module],
    ensemble: Literal["minlogit", "average"] = "minlogit",
    temperature: Annotated[float, Field(gt=0)] = 2.0,
    weight: Annotated[float, Field(ge=0)] = 1.0,
    shift: Annotated[int, Field(ge=0)] = 2,
    flip: bool = False,
    noise: Annotated[float, Field(ge=0)] = 0.0,
    seed: int = 0,
) -> CollaborativeLearning:
    """``models`` = the m >= 2 students (any capacities); ``weight`` = λ of the soft-target term."""
    check_count(models, "kdcl", 2)
    return CollaborativeLearning(models, ensemble, temperature, weight, Distortion(shift, flip, noise), seed)
