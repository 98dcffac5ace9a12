"""Optimizer kernels: for-loop, foreach and fused updates are the same update."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mentor.engine.optim import OptimizerSettings, build_optimizer
from mentor.errors import MentorError


def stepped(name: str, kernel: str) -> list[torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    optimizer = build_optimizer(model.parameters(), OptimizerSettings(name, 0.1, weight_decay=1e-2, kernel=kernel))
    for _ in range(3):
        optimizer.zero_grad()
        model(torch.randn(5, 4)).square().mean().backward()
        optimizer.step()
    return [parameter.detach().clone() for parameter in model.parameters()]


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
@pytest.mark.parametrize("kernel", ["foreach", "fused", "auto"])
def test_every_kernel_makes_the_for_loop_update(name: str, kernel: str) -> None:
    for reference, other in zip(stepped(name, "for-loop"), stepped(name, kernel), strict=True):
        assert torch.allclose(reference, other, atol=1e-6)


def test_the_kernel_reaches_the_optimizer() -> None:
    parameters = [nn.Parameter(torch.zeros(2))]
    assert build_optimizer(parameters, OptimizerSettings("adam", kernel="fused")).defaults["fused"] is True
    assert build_optimizer(parameters, OptimizerSettings("sgd", kernel="foreach")).defaults["foreach"] is True
    assert build_optimizer(parameters, OptimizerSettings("sgd", kernel="for-loop")).defaults["foreach"] is False
    with pytest.raises(MentorError, match="optimizer kernel 'fast'"):
        build_optimizer(parameters, OptimizerSettings("sgd", kernel="fast"))
