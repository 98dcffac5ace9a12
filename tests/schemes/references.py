"""Reference computations written out independently of the library, shared by the scheme tests."""

from __future__ import annotations

import torch

from mentor.batch import Batch
from tests.schemes.conftest import CLASSES, INPUT_SHAPE


def sample_batch(seed: int, size: int = 4) -> Batch:
    generator = torch.Generator().manual_seed(seed)
    return Batch(torch.randn(size, *INPUT_SHAPE, generator=generator),
                 torch.randint(0, CLASSES, (size,), generator=generator))


def reference_ce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy, sample by sample."""
    losses = [-torch.log(torch.exp(z[y]) / torch.exp(z).sum()) for z, y in zip(logits, targets, strict=True)]
    return sum(losses) / len(logits)


def reference_kl(student: torch.Tensor, teacher: torch.Tensor, tau: float) -> torch.Tensor:
    """τ² · KL(softmax(t/τ) || softmax(s/τ)), averaged over the samples."""
    total = torch.zeros(())
    for s, t in zip(student, teacher, strict=True):
        p, q = torch.exp(t / tau) / torch.exp(t / tau).sum(), torch.exp(s / tau) / torch.exp(s / tau).sum()
        total = total + (p * (p.log() - q.log())).sum()
    return tau**2 * total / len(student)
