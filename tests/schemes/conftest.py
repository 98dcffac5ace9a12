"""Examples for the scheme contract tests: how to build each registered scheme on tiny models.

Each group of schemes keeps its examples in its own ``examples_*.py`` module beside this file as a
dict ``EXAMPLES = {name: SchemeExample(...)}``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mentor.data import ArrayDataset
from mentor.models import CNN

INPUT_SHAPE = (1, 8, 8)
CLASSES = 5


def small_cnn(seed: int, channels: tuple[int, ...] = (4, 8)) -> nn.Module:
    """Stages ``stage1`` (C1, 4, 4), ``stage2`` (C2, 2, 2), then pool, flatten, head; 5 classes."""
    torch.manual_seed(seed)
    return CNN(INPUT_SHAPE, CLASSES, channels=channels)


def two_peers() -> list[nn.Module]:
    return [small_cnn(1), small_cnn(2, (6, 12))]


@dataclass
class SchemeExample:
    """``models()`` builds the models handed to the factory; ``params`` are its keyword arguments."""

    models: Callable[[], list[nn.Module]] = two_peers
    params: dict[str, Any] = field(default_factory=dict)


def tiny_data(size: int = 32, seed: int = 3) -> ArrayDataset:
    generator = torch.Generator().manual_seed(seed)
    return ArrayDataset(torch.randn(size, *INPUT_SHAPE, generator=generator),
                        torch.randint(0, CLASSES, (size,), generator=generator))


def all_examples() -> dict[str, SchemeExample]:
    examples: dict[str, SchemeExample] = {}
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.name.startswith("examples"):
            examples.update(importlib.import_module(f"{__package__}.{info.name}").EXAMPLES)
    return examples
