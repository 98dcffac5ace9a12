"""Evaluation of a classifier (or a regression model) on an in-memory dataset or a torch Dataset."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from mentor.batch import Inputs, call, device_of, model_device, move
from mentor.data import ArrayDataset, BatchIterator
from mentor.data.streamed import DatasetBatches, TorchData, is_streamed
from mentor.outputs import pick


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode for the block; each of its modules gets its own mode back after."""
    modes = [module.training for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, mode in zip(model.modules(), modes, strict=True):
            module.training = mode


def predict(model: nn.Module, dataset: ArrayDataset, batch_size: int = 512) -> torch.Tensor:
    """Logits ``(N, K)`` of ``model`` on the whole dataset, in eval mode (the modes are restored after), on the
    dataset's device (the batches go through the model on its own)."""
    device = model_device(model)
    with evaluating(model), torch.inference_mode():
        logits = [pick(call(model, move(inputs, device))) for inputs, _ in BatchIterator(dataset, batch_size)]
    return torch.cat(logits).to(device_of(dataset.inputs))


def evaluate(model: nn.Module, dataset: ArrayDataset | TorchData, batch_size: int = 512) -> dict[str, float]:
    """Accuracy and mean cross-entropy of ``model`` on ``dataset``; for floating-point (regression) targets
    ``(N, D)``, the mean squared error ``mse`` (also as ``loss``) and mean absolute error ``mae`` over N·D values.

    Sums are accumulated batch by batch (in float64 scalars), so no more than one batch of outputs is held;
    ``dataset`` may be any torch Dataset or DataLoader (:mod:`mentor.data.streamed`)."""
    device = model_device(model)
    if is_streamed(dataset):
        batches: Iterable[tuple[Inputs, torch.Tensor]] = DatasetBatches(dataset, batch_size, device=device)
    else:
        batches = ((move(inputs, device), targets.to(device))
                   for inputs, targets in BatchIterator(dataset, batch_size))  # type: ignore[arg-type]
    sums = {"count": 0.0, "values": 0.0, "correct": 0.0, "loss": 0.0, "squared": 0.0, "absolute": 0.0}
    regression = False
    with evaluating(model), torch.inference_mode():
        for inputs, targets in batches:
            logits = pick(call(model, inputs))
            sums["count"] += len(targets)
            if targets.is_floating_point():
                regression = True
                errors = logits.reshape(targets.shape).float() - targets.float()
                sums["values"] += errors.numel()
                sums["squared"] += float(errors.pow(2).sum())
                sums["absolute"] += float(errors.abs().sum())
            else:
                sums["correct"] += float((logits.argmax(dim=1) == targets).sum())
                sums["loss"] += float(F.cross_entropy(logits.float(), targets, reduction="sum"))
    if regression:
        mse = sums["squared"] / max(sums["values"], 1.0)
        return {"mse": mse, "mae": sums["absolute"] / max(sums["values"], 1.0), "loss": mse}
    count = max(sums["count"], 1.0)
    return {"accuracy": sums["correct"] / count, "loss": sums["loss"] / count}


def selection_score(metrics: dict[str, float]) -> float:
    """What selecting weights on validation maximizes: the accuracy, or −MSE for regression metrics."""
    return metrics["accuracy"] if "accuracy" in metrics else -metrics["mse"]


def latency(model: nn.Module, inputs: Inputs, repeats: int = 20, warmup: int = 3) -> float:
    """Median wall time in milliseconds of one eval-mode forward pass on the batch ``inputs``, on the model's
    device (for CUDA, until the GPU has finished)."""
    device = model_device(model)
    inputs = move(inputs, device)
    finish = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    times = []
    with evaluating(model), torch.inference_mode():
        for index in range(warmup + repeats):
            finish()
            start = time.perf_counter()
            call(model, inputs)
            finish()
            if index >= warmup:
                times.append(time.perf_counter() - start)
    times.sort()
    return 1000.0 * times[len(times) // 2]
