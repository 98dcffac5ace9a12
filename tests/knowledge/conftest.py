"""A standard tiny teacher/student pair and per-method example parameters for the contract tests.

Each group of methods keeps its examples in its own ``examples_*.py`` module beside this file as a
dict ``EXAMPLES = {name: Example(...)}``; the contract tests run over every registered method and
fail for a method that has no example.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from mentor.batch import Batch
from mentor.models import CNN

INPUT_SHAPE = (1, 8, 8)
CLASSES = 5


@dataclass
class Example:
    """Parameters for ``mentor.knowledge.create`` on the standard pair.

    ``zero_when_identical``: the distillation terms vanish when the student is a copy of the teacher
    (checked with the hard-label CE weight removed where the method has one). ``teacher``: builds the
    teacher instead of :func:`teacher_model` (several teachers as an Ensemble).
    """

    params: dict[str, Any] = field(default_factory=dict)
    zero_when_identical: bool = False
    regression: bool = False
    """The method regresses float targets: the pair has one output and the batch float targets ``(B, 1)``."""
    teacher: Callable[[], nn.Module] | None = None  # another teacher than the standard one (an Ensemble)


def teacher_model(regression: bool = False) -> nn.Module:
    """Teacher: stage1 -> (8, 4, 4), stage2 -> (16, 2, 2), 5 classes (1 output for regression)."""
    torch.manual_seed(1)
    return CNN(INPUT_SHAPE, 1 if regression else CLASSES, channels=(8, 16))


def student_model(regression: bool = False) -> nn.Module:
    """Student: stage1 -> (4, 4, 4), stage2 -> (8, 2, 2), 5 classes (1 output for regression)."""
    torch.manual_seed(2)
    return CNN(INPUT_SHAPE, 1 if regression else CLASSES, channels=(4, 8))


def sample_batch(size: int = 8, seed: int = 0, regression: bool = False) -> Batch:
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(size, *INPUT_SHAPE, generator=generator)
    targets = (torch.randn(size, 1, generator=generator) if regression
               else torch.randint(0, CLASSES, (size,), generator=generator))
    return Batch(inputs, targets, torch.arange(size), dataset_size=64)


def all_examples() -> dict[str, Example]:
    examples: dict[str, Example] = {}
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.name.startswith("examples"):
            module = importlib.import_module(f"{__package__}.{info.name}" if __package__ else info.name)
            examples.update(module.EXAMPLES)
    return examples


@pytest.fixture
def batch() -> Batch:
    return sample_batch()
