"""The data of knowledge adaptation (:mod:`mentor.pipelines.adapt`): the target's standardization, the renderings
of the source that make the multi-source domains, hidden target labels, and the curriculum's tasks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch
from torch import nn

from mentor.data import ArrayDataset, Splits
from mentor.data.digits28 import low_resolution
from mentor.engine import predict
from mentor.errors import MentorError

VARIANTS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "none": lambda images: images, "low-resolution": low_resolution, "inverted": lambda images: 1.0 - images}
"""Renderings of source images in [0, 1] that make the multi-source domains."""


def align(source: Splits, target: Splits, normalize: str) -> Splits:
    """``target`` standardized with the source's statistics (``source``) or its own (``own``: as
    :func:`mentor.data.load` gives it)."""
    if normalize == "own":
        return target
    if source.mean is None or source.std is None or target.mean is None or target.std is None:
        raise MentorError("adapt.normalize 'source' re-standardizes the target with the source's statistics; load "
                          "both with normalize=True (recipe: data.normalize: true), or use normalize 'own'")
    shape = (1, -1) + (1,) * (len(target.input_shape) - 1)
    scale, shift = (target.std / source.std).view(shape), ((target.mean - source.mean) / source.std).view(shape)

    def moved(part: ArrayDataset | None) -> ArrayDataset | None:
        return None if part is None else ArrayDataset(part.inputs * scale + shift, part.targets)

    return replace(target, train=moved(target.train), validation=moved(target.validation), test=moved(target.test),
                   mean=source.mean, std=source.std)


def rendered(source: Splits, variant: str) -> Splits:
    """``source`` with every image drawn as ``variant`` in pixel space, standardized again with its statistics."""
    if variant == "none":
        return source
    mean = source.mean if source.mean is not None else torch.zeros(1)
    std = source.std if source.std is not None else torch.ones(1)
    shape = (1, -1, 1, 1)

    def drawn(part: ArrayDataset | None) -> ArrayDataset | None:
        if part is None:
            return None
        pixels = part.inputs * std.view(shape) + mean.view(shape)
        return ArrayDataset((VARIANTS[variant](pixels) - mean.view(shape)) / std.view(shape), part.targets)

    return replace(source, train=drawn(source.train), validation=drawn(source.validation), test=drawn(source.test))


def unlabeled(part: ArrayDataset) -> ArrayDataset:
    """``part``'s inputs with every label hidden (target −1)."""
    return ArrayDataset(part.inputs, torch.full_like(part.targets, -1))


def confidence_tasks(teacher: nn.Module, inputs: torch.Tensor, tasks: int) -> list[torch.Tensor]:
    """The target samples cut into ``tasks`` equal parts by the teacher's confidence, most confident first."""
    confidence = torch.softmax(predict(teacher, ArrayDataset(inputs, torch.zeros(len(inputs), dtype=torch.long))),
                               dim=1).max(dim=1).values
    return list(torch.argsort(confidence.cpu(), descending=True, stable=True).tensor_split(tasks))
