"""What a training run is told and what it gives back: :class:`FitSettings`, :class:`FitResult`, the device."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from mentor.engine.optim import OptimizerSettings, SchedulerSettings
from mentor.errors import MentorError

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass
class FitSettings:
    """How to train: the ``train`` section of a recipe.

    ``progress``: progress bars on standard error (``None``: only when it is a terminal).
    ``device``: ``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when available). ``precision``: ``"fp32"`` or
    ``"bf16"`` (autocast on CPU and CUDA). ``channels_last``: NHWC memory format for 4-D inputs and models.
    ``resume``: continue from ``last.pt`` in the checkpoint folder when there is one.
    ``teacher_cache``: let offline schemes read a frozen teacher's outputs from a per-dataset cache when
    the inputs are deterministic (``augment`` is ``None``). ``compile``: run the scheme's predicting
    models and frozen teachers through ``torch.compile`` where nothing is tapped from them (see
    :func:`mentor.taps.compiled`); module paths and checkpoint keys stay as they are, and the first steps
    pay the compilation. ``scale_probe``: steps in which every loss term's gradient is measured against the
    cross-entropy's (:mod:`mentor.engine.scales`), at the start of the stage when a frozen teacher gives the
    targets, at the start of its second epoch when the teachers learn alongside (peers, a network's own
    deepest classifier: their first targets carry no knowledge yet); 0 turns it off, and
    so does ``compile`` (a compiled backward runs once per graph, the probe needs it once per term).
    ``teacher_precision``: ``"bf16"`` runs the frozen teachers' forward passes (the teacher-output cache's build
    included) under bfloat16 autocast and hands their outputs on as float32, the student staying in
    ``precision``; the cache keeps bf16 and fp32 outputs apart.
    ``num_workers`` and ``pin_memory``: loader processes and page-locked batches when the training data is a torch
    Dataset (:mod:`mentor.data.streamed`; ``None``: a DataLoader's own settings, else 0 and off).
    """

    epochs: int = 10
    batch_size: int = 64
    optimizer: OptimizerSettings = field(default_factory=OptimizerSettings)
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)
    clip_grad_norm: float | None = None
    seed: int = 0
    progress: bool | None = None
    eval_batch_size: int = 1024
    augment: Transform | None = None
    device: str = "cpu"
    precision: Literal["fp32", "bf16"] = "fp32"
    teacher_precision: Literal["fp32", "bf16"] = "fp32"
    channels_last: bool = False
    resume: bool = False
    teacher_cache: bool = True
    compile: bool = False
    scale_probe: int = 3
    num_workers: int | None = None
    pin_memory: bool | None = None


@dataclass
class FitResult:
    """Per-epoch records, and the epoch and validation metrics of the selected (best) weights."""

    history: list[dict[str, Any]]
    best_epoch: int
    best: dict[str, float]


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available; a clear error when CUDA is asked for and absent.

    Under torchrun, plain ``cuda`` is this process's own GPU, ``cuda:LOCAL_RANK`` (wrapping round when the
    machine has fewer GPUs than processes), made the current device so that NCCL and new tensors use it."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise MentorError(f"train.device is {name!r} but no CUDA device is available; use device: cpu or auto")
    device = torch.device(name)
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]) % torch.cuda.device_count())
        torch.cuda.set_device(device)
    return device
