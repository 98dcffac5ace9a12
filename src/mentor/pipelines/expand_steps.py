"""The training step of a Noisy Student round (:mod:`mentor.pipelines.expand`) and the teacher's predictions.

Loss of a batch of B rows of :class:`~mentor.pipelines.expand_labels.StudentData` (labeled and pseudo-labeled
rows together, as the paper trains on both at once):

    L = (1 / |A|) Σ_{i ∈ A} − Σ_k q_ik log softmax(f_noised(x̃_i))_k

with q ``(B, K)`` the row's target (one-hot ground truth, or the teacher's soft or hard pseudo label), x̃ the
input after the loop's input noise (shift and Gaussian noise, :class:`~mentor.schemes.online.peers.Distortion`),
f_noised the student in train mode (its dropout on), and A the rows learned now: every labeled row, and with a
curriculum the pseudo-labeled rows whose rank is below the phase's share. The parts ``labeled`` and ``pseudo``
(each summed over its rows and divided by |A|) add up to L.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mentor.batch import Batch
from mentor.data import ArrayDataset
from mentor.engine import predict
from mentor.errors import MentorError
from mentor.losses.objective import LossOutput
from mentor.pipelines.expand_labels import Curriculum
from mentor.schemes.base import Scheme


class NoisyStudentStep(Scheme):
    """One student learning its :class:`~mentor.pipelines.expand_labels.StudentData` (module docstring).

    ``targets`` ``(N, K)`` and ``ranks`` ``(N,)`` are looked up by ``Batch.indices`` (the rows of the training set).
    """

    def __init__(self, student: nn.Module, targets: torch.Tensor, ranks: torch.Tensor,
                 curriculum: Curriculum | None) -> None:
        super().__init__()
        self.student, self.curriculum = student, curriculum
        self.register_buffer("targets", targets, persistent=False)
        self.register_buffer("ranks", ranks, persistent=False)

    def trained(self) -> dict[str, nn.Module]:
        return {"student": self.student}

    def predictors(self) -> dict[str, nn.Module]:
        return {"student": self.student}

    def loss(self, batch: Batch, epoch: float, epochs: int) -> LossOutput:
        if batch.indices is None:
            raise MentorError("the noisy-student step needs batches with sample indices (Batch.indices)")
        indices = batch.indices.to(self.targets.device)
        targets, ranks = self.targets[indices], self.ranks[indices]
        share = self.curriculum.share(epoch, epochs) if self.curriculum is not None else 1.0
        labeled = ranks < 0
        learned = labeled | (ranks < share)
        losses = -(targets * F.log_softmax(self.student(batch.inputs), dim=1)).sum(dim=1)
        count = learned.sum().clamp(min=1)
        return LossOutput.of({"labeled": (losses * labeled).sum() / count,
                              "pseudo": (losses * (learned & ~labeled)).sum() / count})


def teacher_probabilities(teacher: nn.Module, unlabeled: ArrayDataset, batch_size: int) -> torch.Tensor:
    """p = softmax(z_T) ``(N, K)`` on the CPU: the teacher in eval mode (no dropout, BatchNorm's running
    statistics) on the clean inputs (no augmentation), the paper's unnoised teacher."""
    device = next(teacher.parameters()).device
    return torch.softmax(predict(teacher, unlabeled.to(device), batch_size).float(), dim=1).cpu()
