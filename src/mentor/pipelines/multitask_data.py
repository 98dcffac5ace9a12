"""The data of a multi-task run (:mod:`mentor.pipelines.multitask`): the tasks, their labelled splits, the shared
pool of unlabelled images, and the packing of every task's targets into one tensor per sample.

Each task names a dataset (:func:`mentor.data.load`) and a target: ``classes`` (the dataset's labels) or ``ink``,
a regression target computed from the image itself. Every dataset's training split is cut once per seed: a
``pool_fraction`` of it (seeded draw) goes, without labels, to the shared pool, the rest is what the task's
specialist teacher learns from. Inputs stay in their raw [0, 1] range (no per-dataset standardization), so the
same image means the same to every teacher and to the student.

``ink`` is the percentage of the image's pixels whose intensity is above one half (28×28: the share of the
784 pixels that are "inked"): a real property of every image of either dataset (a digit's stroke length and
thickness, a garment's size), its exact value known for every test image, and learnable from pixels only by a
model that sees the whole image (it is not a class).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from mentor.data import ArrayDataset, Splits, load
from mentor.errors import MentorError

Target = Literal["classes", "ink"]
TARGETS: tuple[str, ...] = ("classes", "ink")
INK_THRESHOLD = 0.5
"""Intensity above which a pixel counts as inked (half of the [0, 1] range)."""


@dataclass(frozen=True)
class Task:
    """One task of a multi-task run.

    Attributes:
        name: the task's name (its head's, its rows' in the table).
        dataset: the dataset its teacher learns from and is tested on (``mnist``, ``fashion-mnist``, ``digits``).
        target: ``classes`` or ``ink`` (regression, module docstring).
        weight: w_t of its loss in the student's total ``Σ_t w_t L_t``.
    """

    name: str
    dataset: str
    target: Target = "classes"
    weight: float = 1.0

    @property
    def regression(self) -> bool:
        return self.target != "classes"


@dataclass
class TaskData:
    """One seed's data: the labelled splits of every task (by name) and the shared unlabelled pool."""

    tasks: dict[str, Splits]
    pool: ArrayDataset


def ink(inputs: torch.Tensor) -> torch.Tensor:
    """``(N, 1)`` float: the percentage of each image's values above :data:`INK_THRESHOLD` (inputs in [0, 1])."""
    return 100.0 * (inputs > INK_THRESHOLD).flatten(1).float().mean(dim=1, keepdim=True)


def pool_cut(size: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(the indices a teacher may learn from, the pool's indices): a seeded draw of ``fraction`` of ``size``."""
    order = torch.randperm(size, generator=torch.Generator().manual_seed(seed))
    pooled = round(fraction * size)
    if pooled < 1 or pooled >= size:
        raise MentorError(f"The 'pool_fraction' parameter of multitask ({fraction:g}) leaves {pooled} of {size} "
                          "training images for the pool; keep both the pool and the teachers' part non-empty")
    return order[pooled:].sort().values, order[:pooled].sort().values


def with_target(data: ArrayDataset, target: Target) -> ArrayDataset:
    """``data`` with its class labels (``classes``) or its ink values ``(N, 1)``."""
    return data if target == "classes" else ArrayDataset(data.inputs, ink(data.inputs))


def task_data(tasks: list[Task], seed: int, validation: float, limit: int | None, pool_fraction: float,
              loader: Callable[..., Splits] = load) -> TaskData:
    """Load each dataset once, cut its training split into the teacher's part and the pool's (module docstring)."""
    loaded = {name: loader(name, validation=validation, seed=seed, limit=limit, normalize=False)
              for name in dict.fromkeys(task.dataset for task in tasks)}
    kept, pooled = {}, []
    for name, splits in loaded.items():
        kept[name], to_pool = pool_cut(len(splits.train), pool_fraction, seed)
        pooled.append(splits.train.inputs[to_pool])
    pool_shape = tuple(pooled[0].shape[1:])
    for task in tasks:
        shape = tuple(loaded[task.dataset].input_shape)
        if shape != pool_shape:
            raise MentorError(f"the shared pool holds images of shape {pool_shape} (from {tasks[0].dataset}) but the "
                              f"teacher of task {task.name!r} takes {task.dataset} inputs of shape {shape}; give "
                              "tasks whose datasets have one image shape")
    pool = torch.cat(pooled)
    by_task = {}
    for task in tasks:
        splits = loaded[task.dataset]
        train = splits.train.subset(kept[task.dataset])
        validation_part = with_target(splits.validation, task.target) if splits.validation is not None else None
        by_task[task.name] = Splits(
            name=task.dataset if task.target == "classes" else f"{task.dataset} {task.target}",
            train=with_target(train, task.target), validation=validation_part,
            test=with_target(splits.test, task.target), num_classes=splits.num_classes if not task.regression else 1,
            input_shape=splits.input_shape)
    return TaskData(by_task, ArrayDataset(pool, torch.zeros(len(pool), dtype=torch.long)))


@dataclass(frozen=True)
class Layout:
    """Where each task's targets sit in one packed ``(N, Σ_t (D_t + 2))`` float tensor: per task its D_t values
    (class probabilities or regression values), a mask column (1: the sample has a label of this task) and an
    event column (the task's binary label y_t of the ranking loss)."""

    widths: dict[str, int]

    def start(self, task: str) -> int:
        names = list(self.widths)
        return sum(self.widths[name] + 2 for name in names[:names.index(task)])

    @property
    def columns(self) -> int:
        return sum(width + 2 for width in self.widths.values())

    def pack(self, rows: int, values: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """``values[task] = (targets (N, D_t), mask (N,), event (N,))``; a task absent has mask 0."""
        packed = torch.zeros(rows, self.columns)
        for task, (targets, mask, event) in values.items():
            start, width = self.start(task), self.widths[task]
            packed[:, start:start + width] = targets.float()
            packed[:, start + width] = mask.float()
            packed[:, start + width + 1] = event.float()
        return packed

    def unpack(self, packed: torch.Tensor, task: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(targets ``(B, D_t)``, mask ``(B,)`` bool, event ``(B,)``) of one task."""
        start, width = self.start(task), self.widths[task]
        return packed[:, start:start + width], packed[:, start + width] > 0.5, packed[:, start + width + 1]
