"""Optimizers and learning-rate schedules built from plain settings (a recipe's ``train`` section)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from mentor.errors import unknown

OPTIMIZERS = ("sgd", "adam", "adamw")
KERNELS = ("auto", "for-loop", "foreach", "fused")
SCHEDULERS = ("constant", "cosine", "step", "multistep")


@dataclass
class OptimizerSettings:
    """Which optimizer and its hyper-parameters.

    ``kernel``: how the update runs over the parameter tensors: ``for-loop`` (one tensor at a time),
    ``foreach`` (grouped tensor operations), ``fused`` (one fused kernel per group), or ``auto`` (torch's own
    choice: ``foreach`` on CUDA, the for-loop on the CPU). ``mentor bench student_step`` compares them.
    """

    name: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    nesterov: bool = False
    kernel: str = "auto"


@dataclass
class SchedulerSettings:
    """Learning-rate schedule over epochs: constant, cosine (to 0), step (×gamma every step_size) or multistep."""

    name: str = "constant"
    step_size: int = 30
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.1


def build_optimizer(parameters: Iterable[nn.Parameter], settings: OptimizerSettings) -> torch.optim.Optimizer:
    """An optimizer over the parameters that require gradients."""
    params = [p for p in parameters if p.requires_grad]
    if settings.kernel not in KERNELS:
        raise unknown("optimizer kernel", settings.kernel, KERNELS)
    kernel = {"auto": {}, "for-loop": {"foreach": False}, "foreach": {"foreach": True},
              "fused": {"fused": True}}[settings.kernel]
    if settings.name == "sgd":
        return torch.optim.SGD(
            params, lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay,
            nesterov=settings.nesterov, **kernel,
        )
    if settings.name == "adam":
        return torch.optim.Adam(params, lr=settings.lr, weight_decay=settings.weight_decay, **kernel)
    if settings.name == "adamw":
        return torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay, **kernel)
    raise unknown("optimizer", settings.name, OPTIMIZERS)


def build_scheduler(
    optimizer: torch.optim.Optimizer, settings: SchedulerSettings, epochs: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """A per-epoch learning-rate scheduler."""
    lr = torch.optim.lr_scheduler
    if settings.name == "constant":
        return lr.LambdaLR(optimizer, lambda epoch: 1.0)
    if settings.name == "cosine":
        return lr.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))
    if settings.name == "step":
        return lr.StepLR(optimizer, step_size=settings.step_size, gamma=settings.gamma)
    if settings.name == "multistep":
        return lr.MultiStepLR(optimizer, milestones=settings.milestones, gamma=settings.gamma)
    raise unknown("scheduler", settings.name, SCHEDULERS)
