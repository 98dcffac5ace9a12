"""The one training loop: epochs, optimizers, LR schedules, clipping, evaluation, checkpoints, metrics.

It drives any :class:`~mentor.schemes.Scheme` and contains no loss math: the scheme returns the loss
of a batch, the loop back-propagates it and steps one optimizer per parameter group.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from mentor.batch import Batch
from mentor.data import ArrayDataset, BatchIterator
from mentor.engine import checkpoint
from mentor.engine.evaluate import evaluate
from mentor.engine.metrics import MetricsLog
from mentor.engine.optim import OptimizerSettings, SchedulerSettings, build_optimizer, build_scheduler
from mentor.engine.seed import seed_everything
from mentor.errors import MentorError
from mentor.schemes.base import Scheme

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass
class FitSettings:
    """How to train: the ``train`` section of a recipe."""

    epochs: int = 10
    batch_size: int = 64
    optimizer: OptimizerSettings = field(default_factory=OptimizerSettings)
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)
    clip_grad_norm: float | None = None
    seed: int = 0
    progress: bool = True
    eval_batch_size: int = 1024
    augment: Transform | None = None


@dataclass
class FitResult:
    """Per-epoch records, and the epoch and validation metrics of the selected (best) weights."""

    history: list[dict[str, Any]]
    best_epoch: int
    best: dict[str, float]


def _check_finite(total: torch.Tensor, parts: dict[str, torch.Tensor], where: str) -> None:
    if torch.isfinite(total):
        return
    bad = [name for name, value in parts.items() if not torch.isfinite(value)] or ["total"]
    raise MentorError(
        f"loss diverged ({', '.join(bad)} is not finite) in {where}; lower the learning rate or that term's weight"
        " (the last good checkpoint is kept)"
    )


def _state(scheme: Scheme) -> dict[str, Any]:
    return {name: copy.deepcopy(module.state_dict()) for name, module in scheme.trained().items()}


def fit(
    scheme: Scheme,
    train: ArrayDataset,
    validation: ArrayDataset | None,
    settings: FitSettings,
    *,
    log: MetricsLog | None = None,
    checkpoints: Path | None = None,
    stage: str = "train",
) -> FitResult:
    """Train ``scheme`` for ``settings.epochs`` epochs and keep the weights that did best on validation.

    Without a validation set the last weights are kept. When ``checkpoints`` is a directory, ``last.pt``
    is written after every epoch and ``best.pt`` whenever validation improves (both atomically).
    """
    if len(train) == 0:
        raise MentorError("the training set is empty; check the dataset and its 'limit'")
    log = log if log is not None else MetricsLog()
    seed_everything(settings.seed)
    batches = BatchIterator(train, settings.batch_size, shuffle=True, seed=settings.seed, drop_last=False,
                            transform=settings.augment)
    first_inputs, first_targets, first_indices = next(BatchIterator(train, settings.batch_size).indexed())
    scheme.setup(Batch(first_inputs, first_targets, first_indices, len(train)))
    optimizers = {name: build_optimizer(params, settings.optimizer) for name, params in scheme.optimized().items() if params}
    schedulers = {name: build_scheduler(opt, settings.scheduler, settings.epochs) for name, opt in optimizers.items()}
    parameters = [p for group in optimizers.values() for g in group.param_groups for p in g["params"]]
    main = next(iter(scheme.predictors()))
    best_accuracy, best_epoch, best_state, best_metrics = -math.inf, 0, None, {}
    history: list[dict[str, Any]] = []

    for epoch in range(settings.epochs):
        batches.set_epoch(epoch)
        scheme.train()
        started = time.perf_counter()
        sums: dict[str, torch.Tensor] = {}
        steps = len(batches)
        bar = tqdm(total=steps, desc=f"{log.fields.get('run', 'model')} {stage} {epoch + 1}/{settings.epochs}",
                   leave=False, disable=not settings.progress, file=sys.stderr, dynamic_ncols=True)
        for step, (inputs, targets, indices) in enumerate(batches.indexed()):
            output = scheme.loss(Batch(inputs, targets, indices, len(train)), epoch + step / steps, settings.epochs)
            _check_finite(output.total, output.parts, f"{stage} epoch {epoch + 1}")
            for optimizer in optimizers.values():
                optimizer.zero_grad(set_to_none=True)
            output.total.backward()
            if settings.clip_grad_norm:
                torch.nn.utils.clip_grad_norm_(parameters, settings.clip_grad_norm)
            for optimizer in optimizers.values():
                optimizer.step()
            scheme.after_step()
            for name, value in {"loss": output.total.detach(), **output.parts}.items():
                sums[name] = sums.get(name, 0.0) + value
            bar.update()
        bar.close()
        lr = next(iter(optimizers.values())).param_groups[0]["lr"] if optimizers else 0.0
        for scheduler in schedulers.values():
            scheduler.step()
        record: dict[str, Any] = {"stage": stage, "epoch": epoch + 1, "lr": lr,
                                  "seconds": round(time.perf_counter() - started, 4)}
        record.update({f"train/{name}": float(value) / steps for name, value in sums.items()})
        if validation is not None and len(validation) > 0:
            for name, model in scheme.predictors().items():
                for metric, value in evaluate(model, validation, settings.eval_batch_size).items():
                    record[f"val/{name}/{metric}"] = value
            accuracy = record[f"val/{main}/accuracy"]
            if accuracy > best_accuracy:
                best_accuracy, best_epoch, best_state = accuracy, epoch + 1, _state(scheme)
                best_metrics = {k: v for k, v in record.items() if k.startswith("val/")}
                if checkpoints is not None:
                    checkpoint.save({"models": best_state, "epoch": epoch + 1, "stage": stage}, checkpoints / "best.pt")
        history.append(log.write(**record))
        if checkpoints is not None:
            checkpoint.save(
                {"models": {n: m.state_dict() for n, m in scheme.trained().items()},
                 "optimizers": {n: o.state_dict() for n, o in optimizers.items()},
                 "schedulers": {n: s.state_dict() for n, s in schedulers.items()},
                 "epoch": epoch + 1, "stage": stage},
                checkpoints / "last.pt",
            )
    if best_state is not None:
        for name, module in scheme.trained().items():
            module.load_state_dict(best_state[name])
    else:
        best_epoch = settings.epochs
    return FitResult(history, best_epoch, best_metrics)
