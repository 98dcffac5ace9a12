"""The one training loop: epochs, optimizers, LR schedules, clipping, evaluation, checkpoints, metrics.

It drives any :class:`~mentor.schemes.Scheme` and contains no loss math: the scheme returns the loss
of a batch, the loop back-propagates it and steps one optimizer per parameter group. It also owns the
mechanics every scheme shares: device placement, bf16 autocast, data-parallel gradient averaging
under torchrun, a divergence guard, and resumable checkpoints (every trained module, optimizer and
scheduler, the RNG states and the best-so-far), so an interrupted run continues bit for bit.
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from mentor.batch import Batch, device_of
from mentor.data import ArrayDataset, BatchIterator
from mentor.data.streamed import DatasetBatches, TorchData, is_streamed, sized
from mentor.engine import checkpoint
from mentor.engine.distributed import average_gradients, average_scalars, barrier, broadcast_parameters, world
from mentor.engine.evaluate import evaluate, selection_score
from mentor.engine.metrics import MetricsLog
from mentor.engine.optim import build_optimizer, build_scheduler
from mentor.engine.scales import Probe
from mentor.engine.scales import parameters as probed_parameters
from mentor.engine.seed import seed_everything
from mentor.engine.settings import FitResult, FitSettings, resolve_device
from mentor.errors import MentorError, warn
from mentor.schemes.base import Scheme
from mentor.taps import compiled
from mentor.teachers.frozen import FrozenTeacher, teachers_in


def _autocast(settings: FitSettings, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    if settings.precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _check_finite(total: torch.Tensor, parts: dict[str, torch.Tensor], where: str) -> None:
    if torch.isfinite(total):
        return
    bad = [name for name, value in parts.items() if not torch.isfinite(value)] or ["total"]
    raise MentorError(
        f"loss diverged ({', '.join(bad)} is not finite) in {where}; lower the learning rate or that term's weight"
        " (the last good checkpoint is kept)"
    )


def _snapshot(scheme: Scheme) -> dict[str, Any]:
    return {name: copy.deepcopy(module.state_dict()) for name, module in scheme.trained().items()}


def _rng_state() -> dict[str, Any]:
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_trained(scheme: Scheme, models: dict[str, Any]) -> None:
    """Load the weights of every module ``scheme`` trains from a checkpoint's ``models``."""
    for name, module in scheme.trained().items():
        if name not in models:
            raise MentorError(f"checkpoint has no weights for {name!r} (it holds {sorted(models)})")
        try:
            module.load_state_dict(models[name])
        except RuntimeError as error:
            first = str(error).strip().splitlines()[1:2] or [str(error)]
            raise MentorError(f"checkpoint weights do not fit {name!r}: {first[0].strip()}") from None


class _Run:
    """The state of one fit: what is trained, what is kept, and where."""

    def __init__(self, scheme: Scheme, settings: FitSettings, checkpoints: Path | None) -> None:
        self.scheme, self.settings, self.checkpoints = scheme, settings, checkpoints
        self.world = world()
        self.optimizers = {n: build_optimizer(p, settings.optimizer) for n, p in scheme.optimized().items() if p}
        self.schedulers = {n: build_scheduler(o, settings.scheduler, settings.epochs)
                           for n, o in self.optimizers.items()}
        self.parameters = [p for o in self.optimizers.values() for g in o.param_groups for p in g["params"]]
        self.start_epoch, self.best_accuracy, self.best_epoch = 0, -math.inf, 0
        self.best_state: dict[str, Any] | None = None
        self.best_metrics: dict[str, float] = {}
        self.history: list[dict[str, Any]] = []
        self.probe = Probe(0 if settings.compile else settings.scale_probe)
        learning_teachers = not any(isinstance(module, FrozenTeacher) for module in scheme.modules())
        self.probe_epoch = 1 if learning_teachers and settings.epochs > 1 else 0

    def train_epoch(self, batches: BatchIterator | DatasetBatches, size: int | None, epoch: int, device: torch.device,
                    label: str) -> dict[str, float]:
        """One pass over ``batches``: a loss, backward and optimizer step per batch; the epoch's mean losses."""
        scheme, settings = self.scheme, self.settings
        scheme.train()
        sums: dict[str, torch.Tensor] = {}
        steps = _length(batches)  # None: an iterable without a length, counted as it goes
        probing = epoch == self.probe_epoch and self.probe.active
        probed = probed_parameters(scheme.predictors().values()) if probing else []
        shown = settings.progress if settings.progress is not None else sys.stderr.isatty()
        bar = tqdm(total=steps, desc=f"{label} {epoch + 1}/{settings.epochs}", leave=False, file=sys.stderr,
                   disable=not shown or not self.world.is_main, dynamic_ncols=True)
        step = -1
        for step, (inputs, targets, indices) in enumerate(batches.indexed()):
            with _autocast(settings, device):
                output = scheme.loss(Batch(inputs, targets, indices, size), epoch + step / (steps or math.inf),
                                     settings.epochs)
            _check_finite(output.total, output.parts, f"{label} epoch {epoch + 1}")
            if probed and self.probe.active:
                self.probe.take(output, probed)
            for optimizer in self.optimizers.values():
                optimizer.zero_grad(set_to_none=True)
            output.total.backward()
            average_gradients(self.parameters, self.world)
            if settings.clip_grad_norm:
                torch.nn.utils.clip_grad_norm_(self.parameters, settings.clip_grad_norm)
            for optimizer in self.optimizers.values():
                optimizer.step()
            scheme.after_step()
            for name, value in {"loss": output.total.detach(), **output.parts}.items():
                sums[name] = sums.get(name, 0.0) + value.float()
            del output  # nothing of this step (its reference loss's logits) lives on into the next forward
            bar.update()
        bar.close()
        sums = average_scalars(sums, self.world)  # under torchrun: the whole batch's losses, not rank 0's shard
        return {name: float(value) / max(step + 1, 1) for name, value in sums.items()}

    def validate(self, record: dict[str, Any], validation: ArrayDataset | TorchData) -> None:
        """Add the predictors' validation metrics to ``record``; keep (and save) the weights when they are best."""
        scores = {}
        for name, model in self.scheme.predictors().items():
            metrics = evaluate(model, validation, self.settings.eval_batch_size)
            scores[name] = selection_score(metrics)
            for metric, value in metrics.items():
                record[f"val/{name}/{metric}"] = value
        first = next(iter(self.scheme.predictors()))
        accuracy = scores[first]  # accuracy, or −MSE for regression
        finite = all(math.isfinite(value) for key, value in record.items() if key.startswith(f"val/{first}/"))
        if finite and accuracy > self.best_accuracy:  # a non-finite validation loss is never the best
            self.best_accuracy, self.best_epoch, self.best_state = accuracy, record["epoch"], _snapshot(self.scheme)
            self.best_metrics = {k: v for k, v in record.items() if k.startswith("val/")}
            if self.checkpoints is not None and self.world.is_main:
                checkpoint.save({"models": self.best_state, "epoch": record["epoch"]}, self.checkpoints / "best.pt")

    def save(self, epoch: int) -> None:
        if self.checkpoints is None or not self.world.is_main:
            return
        checkpoint.save({
            "models": {n: m.state_dict() for n, m in self.scheme.trained().items()},
            "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()},
            "schedulers": {n: s.state_dict() for n, s in self.schedulers.items()},
            "rng": _rng_state(), "epoch": epoch, "epochs": self.settings.epochs, "history": self.history,
            "best": {"accuracy": self.best_accuracy, "epoch": self.best_epoch, "metrics": self.best_metrics},
            # the best weights too, unless they are this epoch's: a damaged best.pt is rebuilt from here
            "best_models": self.best_state if self.best_epoch != epoch else None,
        }, self.checkpoints / "last.pt", rotate=True)

    def restore(self) -> bool:
        """Continue from ``last.pt`` (or its previous version); ``False`` when there is none."""
        if self.checkpoints is None or not checkpoint.exists(self.checkpoints / "last.pt"):
            return False
        state, _ = checkpoint.load_latest(self.checkpoints / "last.pt")
        if state["epoch"] > self.settings.epochs:
            raise MentorError(f"the checkpoint in {self.checkpoints} has trained {state['epoch']} epochs, more than "
                              f"the {self.settings.epochs} asked for now; resume with the epochs the run started with")
        load_trained(self.scheme, state["models"])
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        for name, scheduler in self.schedulers.items():
            scheduler.load_state_dict(state["schedulers"][name])
        _restore_rng(state["rng"])
        self.start_epoch, self.history = state["epoch"], list(state["history"])
        best = state["best"]
        self.best_accuracy, self.best_epoch, self.best_metrics = best["accuracy"], best["epoch"], best["metrics"]
        if self.best_epoch:
            self.best_state = self._restore_best(state)
        return True

    def _restore_best(self, state: dict[str, Any]) -> dict[str, Any]:
        """The best weights the checkpoint records; ``best.pt`` is rewritten from them when it is damaged or out of
        step (a kill between writing it and writing ``last.pt``)."""
        path = self.checkpoints / "best.pt"  # type: ignore[operator]
        if "best_models" not in state:  # written before last.pt kept the best weights: best.pt is the only copy
            return checkpoint.load(path)["models"]
        best = state["models"] if state["best_models"] is None else state["best_models"]
        try:
            saved_epoch = checkpoint.load(path).get("epoch")
        except MentorError as error:
            warn(f"{error}; rebuilt it from last.pt")
            saved_epoch = None
        if saved_epoch != self.best_epoch and self.world.is_main:
            checkpoint.save({"models": best, "epoch": self.best_epoch}, path)
        return best

    def batches(self, train: ArrayDataset | TorchData,
                device: torch.device) -> Iterator[tuple[int, BatchIterator | DatasetBatches]]:
        # a last batch of a few samples would make batch statistics (BatchNorm, relational methods) degenerate
        drop_last = (sized(train) or 0) // self.world.size >= self.settings.batch_size
        iterator = (streamed_batches(train, self.settings, device, shuffle=True, drop_last=drop_last)
                    if is_streamed(train) else
                    BatchIterator(train, self.settings.batch_size, shuffle=True, seed=self.settings.seed,  # type: ignore[arg-type]
                                  drop_last=drop_last, transform=self.settings.augment, rank=self.world.rank,
                                  world=self.world.size))
        for epoch in range(self.start_epoch, self.settings.epochs):
            iterator.set_epoch(epoch)
            yield epoch, iterator


def streamed_batches(data: TorchData, settings: FitSettings, device: torch.device, *, shuffle: bool = False,
                     drop_last: bool = False) -> DatasetBatches:
    """Batches of a torch Dataset/DataLoader for ``settings``, this process's share under torchrun."""
    if settings.augment is not None:
        raise MentorError("train.augment/jitter works on in-memory tensors only; with a torch Dataset, augment in "
                          "its __getitem__ (or its DataLoader's collate_fn) and leave augment unset")
    current = world()
    return DatasetBatches(data, settings.batch_size, shuffle=shuffle, seed=settings.seed, drop_last=drop_last,
                          rank=current.rank, world=current.size, num_workers=settings.num_workers,
                          pin_memory=settings.pin_memory, device=device)


def _length(batches: BatchIterator | DatasetBatches) -> int | None:
    try:
        return len(batches)
    except TypeError:
        return None


def _cache_teachers(scheme: Scheme, train: ArrayDataset | TorchData, current: Any) -> None:
    """Build the teacher-output cache once: rank 0 first under torchrun, the others open it after a barrier.

    Data without sample indices (an IterableDataset) has nothing to key a cache by: the live teacher serves."""
    if is_streamed(train) and sized(train) is None:
        return
    if current.size > 1 and not current.is_main:
        barrier(current)
    scheme.cache_teachers(train)  # type: ignore[arg-type]
    if current.size > 1 and current.is_main:
        barrier(current)


def _networks(scheme: Scheme) -> list[nn.Module]:
    """The scheme's predicting models and frozen teachers (what ``compile`` compiles)."""
    return [*scheme.predictors().values(), *(m.model for m in scheme.modules() if isinstance(m, FrozenTeacher))]


def _place(scheme: Scheme, device: torch.device, channels_last: bool) -> None:
    scheme.to(device)
    if channels_last:
        scheme.to(memory_format=torch.channels_last)


def _prepare(dataset: ArrayDataset | TorchData | None, device: torch.device,
             channels_last: bool) -> ArrayDataset | TorchData | None:
    if dataset is None or is_streamed(dataset):  # a torch Dataset is moved batch by batch
        return dataset
    moved = dataset.to(device) if device_of(dataset.inputs) != device else dataset
    if channels_last and isinstance(moved.inputs, torch.Tensor) and moved.inputs.ndim == 4:
        moved = ArrayDataset(moved.inputs.contiguous(memory_format=torch.channels_last), moved.targets)
    return moved


def fit(
    scheme: Scheme,
    train: ArrayDataset | TorchData,
    validation: ArrayDataset | TorchData | None,
    settings: FitSettings,
    *,
    log: MetricsLog | None = None,
    checkpoints: Path | None = None,
    stage: str = "train",
) -> FitResult:
    """Train ``scheme`` for ``settings.epochs`` epochs and keep the weights that did best on validation.

    ``train`` and ``validation`` are in-memory :class:`~mentor.data.ArrayDataset` (the fast path) or any torch
    Dataset, IterableDataset or DataLoader (read batch by batch, :mod:`mentor.data.streamed`).
    Without a validation set the last weights are kept. When ``checkpoints`` is a directory, ``last.pt``
    (resumable state) is written after every epoch and ``best.pt`` whenever validation improves. The
    scheme's frozen teachers are held while it trains and given back as they were handed in when it
    ends, also on an error (:meth:`mentor.teachers.FrozenTeacher.release`).
    """
    for teacher in teachers_in(scheme):
        teacher.hold()
    try:
        return _fit(scheme, train, validation, settings, log, checkpoints, stage)
    finally:
        for teacher in teachers_in(scheme):  # setup may have frozen more
            teacher.release()


def _fit(scheme: Scheme, train: ArrayDataset | TorchData, validation: ArrayDataset | TorchData | None,
         settings: FitSettings, log: MetricsLog | None, checkpoints: Path | None, stage: str) -> FitResult:
    if sized(train) == 0:
        raise MentorError("the training set is empty; check the dataset and its 'limit'")
    if not is_streamed(train):
        train = scheme.training_set(train)  # type: ignore[arg-type]
    elif type(scheme).training_set is not Scheme.training_set:
        raise MentorError(f"the {type(scheme).__name__} scheme makes its own training set from the training split "
                          "(it hides labels or repeats samples), which needs the split in memory; load the data "
                          "with mentor.data.load (tensors), not as a torch Dataset")
    log = log if log is not None else MetricsLog()
    device = resolve_device(settings.device)
    _place(scheme, device, settings.channels_last)
    train = _prepare(train, device, settings.channels_last)  # type: ignore[assignment]
    validation = _prepare(validation, device, settings.channels_last)
    seed_everything(settings.seed)
    first = (streamed_batches(train, settings, device) if is_streamed(train)  # type: ignore[arg-type]
             else BatchIterator(train, settings.batch_size))  # type: ignore[arg-type]
    first_inputs, first_targets, first_indices = next(first.indexed())
    scheme.setup(Batch(first_inputs, first_targets, first_indices, sized(train)))
    _place(scheme, device, settings.channels_last)  # again: the adapters setup built are on the CPU
    for teacher in teachers_in(scheme):  # the ones setup froze too
        teacher.precision = settings.teacher_precision
    run = _Run(scheme, settings, checkpoints)
    if settings.teacher_cache and settings.augment is None:
        _cache_teachers(scheme, train, run.world)
    if settings.resume and run.restore() and run.world.is_main:
        log.drop_after(stage, 0)  # the checkpoint's history is the truth: rewrite this stage's records from it
        for record in run.history:
            log.write(**record)
    broadcast_parameters(scheme.trained().values(), run.world)

    with compiled(_networks(scheme)) if settings.compile else contextlib.nullcontext():
        for epoch, batches in run.batches(train, device):
            started = time.perf_counter()
            label = str(log.fields.get("run", "model")) + ("" if stage == "train" else f" {stage}")
            losses = run.train_epoch(batches, sized(train), epoch, device, label)
            lr = next(iter(run.optimizers.values())).param_groups[0]["lr"] if run.optimizers else 0.0
            for scheduler in run.schedulers.values():
                scheduler.step()
            record: dict[str, Any] = {"stage": stage, "epoch": epoch + 1, "lr": lr,
                                      "seconds": round(time.perf_counter() - started, 4)}
            record.update({f"train/{name}": value for name, value in losses.items()})
            if epoch == run.probe_epoch and run.probe.taken:
                ratios = run.probe.report(f"{log.fields.get('run', 'model')} {stage}") if run.world.is_main else {}
                record.update({f"scale/{name}": round(ratio, 6) for name, ratio in ratios.items()})
            if validation is not None and sized(validation) != 0:
                run.validate(record, validation)
            run.history.append(record)
            run.save(epoch + 1)  # the checkpoint first: a record in metrics.jsonl always has its checkpoint
            if run.world.is_main:
                log.write(**record)
    if run.best_state is not None:
        load_trained(scheme, run.best_state)
    else:
        run.best_epoch = settings.epochs
    return FitResult(run.history, run.best_epoch, run.best_metrics)
