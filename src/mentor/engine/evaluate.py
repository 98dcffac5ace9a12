"""Evaluation of a classifier (or a regression model) on an in-memory dataset."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from mentor.batch import Inputs, call
from mentor.data import ArrayDataset, BatchIterator
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
    """Logits ``(N, K)`` of ``model`` on the whole dataset, in eval mode (the modes are restored after)."""
    with evaluating(model), torch.inference_mode():
        return torch.cat([pick(call(model, inputs)) for inputs, _ in BatchIterator(dataset, batch_size)])


def evaluate(model: nn.Module, dataset: ArrayDataset, batch_size: int = 512) -> dict[str, float]:
    """Accuracy and mean cross-entropy of ``model`` on ``dataset``; for floating-point (regression) targets
    ``(N, D)``, the mean squared error ``mse`` (also as ``loss``) and mean absolute error ``mae`` over N·D values."""
    logits = predict(model, dataset, batch_size)
    targets = dataset.targets
    if targets.is_floating_point():
        errors = logits.reshape(targets.shape).float() - targets.float()
        mse = float(errors.pow(2).mean())
        return {"mse": mse, "mae": float(errors.abs().mean()), "loss": mse}
    return {
        "accuracy": float((logits.argmax(dim=1) == targets).float().mean()),
        "loss": float(F.cross_entropy(logits, targets)),
    }


def selection_score(metrics: dict[str, float]) -> float:
    """What selecting weights on validation maximizes: the accuracy, or −MSE for regression metrics."""
    return metrics["accuracy"] if "accuracy" in metrics else -metrics["mse"]


def latency(model: nn.Module, inputs: Inputs, repeats: int = 20, warmup: int = 3) -> float:
    """Median wall time in milliseconds of one eval-mode forward pass on the batch ``inputs``."""
    times = []
    with evaluating(model), torch.inference_mode():
        for index in range(warmup + repeats):
            start = time.perf_counter()
            call(model, inputs)
            if index >= warmup:
                times.append(time.perf_counter() - start)
    times.sort()
    return 1000.0 * times[len(times) // 2]
