"""Trainable adapters that map a student tensor onto the shape of a teacher tensor.

FitNets calls this the regressor r(·); it is trained together with the student. Built once the
shapes are known (:meth:`mentor.losses.terms.Term.bind`).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from mentor.errors import MentorError

AdapterName = Literal["identity", "linear", "conv1x1", "conv3x3"]
ADAPTERS: tuple[str, ...] = ("identity", "linear", "conv1x1", "conv3x3")


class ConvAdapter(nn.Module):
    """Convolution from C_s to C_t channels, then a resize to the teacher's H_t x W_t when they differ."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, size: tuple[int, int]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.norm = nn.BatchNorm2d(out_channels)
        self.size = size

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        out = self.norm(self.conv(features))
        if tuple(out.shape[-2:]) != self.size:
            out = F.adaptive_avg_pool2d(out, self.size)
        return out


def build_adapter(name: str | None, student: torch.Size, teacher: torch.Size, where: str) -> nn.Module:
    """An adapter mapping per-sample shape ``student`` to ``teacher`` (both without the batch axis).

    ``None`` means "no adapter": the shapes must then already match.
    ``linear`` maps token sequences ``(L, D_s) -> (L, D_t)`` (hidden states of two transformers over the same
    tokens) token by token; any other shapes are flattened and mapped as a whole.
    """
    if name is None or name == "identity":
        if student != teacher:
            kind = "conv1x1" if len(student) == 3 and len(teacher) == 3 else "linear"
            raise MentorError(
                f"{where}: cannot compare student shape {tuple(student)} with teacher shape {tuple(teacher)}; "
                f"add an adapter (adapter: {kind})"
            )
        return nn.Identity()
    if name == "linear" and len(student) == len(teacher) == 2 and student[0] == teacher[0]:
        # a sequence of L tokens (L, D_s) -> (L, D_t): one linear map of each token's vector, as TinyBERT's W_h
        # (Jiao et al. 2020, eq. 7) maps a student's hidden states onto the teacher's width
        return nn.Linear(student[1], teacher[1])
    if name == "linear":
        return nn.Sequential(nn.Flatten(), nn.Linear(student.numel(), teacher.numel()), nn.Unflatten(1, teacher))
    if name in ("conv1x1", "conv3x3"):
        if len(student) != 3 or len(teacher) != 3:
            raise MentorError(
                f"{where}: adapter {name!r} needs feature maps (C, H, W) on both sides; got student "
                f"{tuple(student)} and teacher {tuple(teacher)}; use adapter: linear"
            )
        return ConvAdapter(student[0], teacher[0], 1 if name == "conv1x1" else 3, (teacher[1], teacher[2]))
    raise MentorError(f"{where}: unknown adapter {name!r} (valid: {', '.join(ADAPTERS)})")
