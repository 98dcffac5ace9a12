"""Taps on models Mentor never saw: nested modules, input taps, hook removal, path errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mentor.errors import MentorError
from mentor.taps import Taps, run_with_taps


class UserNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Sequential(nn.Linear(6, 5), nn.Tanh()))
        self.head = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


def test_taps_capture_nested_outputs_and_inputs() -> None:
    net, x = UserNet(), torch.randn(2, 4)
    logits, features = run_with_taps(net, x, ["encoder.2.0", "encoder.1:input", "head"])
    hidden = net.encoder[0](x)
    assert torch.allclose(features["encoder.1:input"], hidden)
    assert torch.allclose(features["encoder.2.0"], net.encoder[2][0](torch.relu(hidden)))
    assert torch.equal(features["head"], logits)


def test_hooks_are_removed_even_when_the_forward_fails() -> None:
    net = nn.Sequential(nn.Linear(4, 3))
    with pytest.raises(RuntimeError), Taps(net, ["0"]):
        net(torch.randn(2, 5))  # wrong width
    assert not net[0]._forward_hooks
    with Taps(net, ["0"]) as captured:
        net(torch.randn(2, 4))
    assert "0" in captured and not net[0]._forward_hooks


def test_unknown_path_names_the_nearest_paths() -> None:
    with pytest.raises(MentorError, match=r"unknown module path 'encoder.3' in student; nearest: encoder.2"):
        Taps(UserNet(), ["encoder.3"], role="student")
    with pytest.raises(MentorError, match="'where' parameter"):
        Taps(UserNet(), [], where="middle")  # type: ignore[arg-type]
