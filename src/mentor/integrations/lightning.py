"""Distillation in PyTorch Lightning: :class:`DistillationCallback` adds a Mentor objective to a module's loss.

The user's ``LightningModule`` stays as it is (its hooks, logging, checkpoints, optimizers)::

    callback = DistillationCallback(teacher, mentor.Objective(mentor.terms.KL(temperature=4.0)), student="net")
    pl.Trainer(callbacks=[callback], ...).fit(module, data)

Why a callback rather than a ``LightningModule`` wrapper: a wrapper must forward every hook, ``self.log`` and
checkpoint of the inner module, and changes the class the user trains and saves; the callback touches one thing.
During ``fit`` the module's ``training_step`` runs inside the callback's step, which

1. hooks the student network (``student``: a module path inside the LightningModule; ``""`` is the module
   itself) to record the arguments and result of its call in the step (the last, if it is called several
   times), and the objective's taps;
2. runs the frozen teacher (eval mode, no gradients, moved to the module's device and dtype) on the same
   arguments, so any batch layout works;
3. returns the step's loss plus the objective's total (``replace_loss=True``: the objective's total alone, e.g.
   ``kd``'s own mix of cross-entropy and soft targets), and logs each weighted part under ``mentor/<term>``.

The objective's parameters (adapters) join the first optimizer as one more group at its defaults: bound at
``setup`` from ``sample`` (a batch of student inputs; needed to resume a run with adapters), else at the first
step. They are saved in the checkpoint with the callback's state. The end of ``fit`` (an error too) restores
``training_step`` and gives the teacher back (its modes and ``requires_grad``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from mentor.batch import Inputs, Outputs
from mentor.errors import MentorError
from mentor.integrations.core import Method, build_objective, needs_bind, tapped
from mentor.integrations.loop import BoundObjective
from mentor.outputs import pick
from mentor.taps import resolve

try:
    import pytorch_lightning as pl
except ImportError:
    raise MentorError("mentor.integrations.lightning needs the Lightning extra: "
                      "pip install 'mentor[lightning]'") from None

TARGET_KEYS = ("labels", "label", "targets", "target", "y")


def batch_targets(batch: Any) -> torch.Tensor | None:
    """The labels of a Lightning batch: a pair's second item, or a mapping's ``labels``/``label``/``targets``/``y``."""
    if isinstance(batch, Mapping):
        return next((batch[key] for key in TARGET_KEYS if isinstance(batch.get(key), torch.Tensor)), None)
    if isinstance(batch, (tuple, list)) and len(batch) >= 2 and isinstance(batch[1], torch.Tensor):
        return batch[1]
    return None


class DistillationCallback(pl.Callback):
    """Add a Mentor objective between a LightningModule's student network and a frozen teacher to its loss.

    Args:
        teacher: the trained teacher, called with the student network's arguments.
        method: a registered method's name or an :class:`~mentor.losses.Objective`.
        params: the method's parameters (only with a name).
        student: module path of the student network in the LightningModule (``""``: the module itself).
        targets: ``batch -> labels``; the default reads ``(inputs, labels)`` pairs and ``labels``-like keys.
        replace_loss: use the objective's total as the loss instead of adding it to the step's.
        sample: a batch of the student's inputs, to build the objective's adapters at ``setup``.
    """

    def __init__(self, teacher: nn.Module, method: Method = "kd", params: Mapping[str, Any] | None = None, *,
                 student: str = "", targets: Callable[[Any], torch.Tensor] | None = None,
                 replace_loss: bool = False, sample: Inputs | None = None) -> None:
        super().__init__()
        self.objective = build_objective(method, params, "DistillationCallback")
        self.teacher, self.student_path, self.replace_loss, self.sample = teacher, student, replace_loss, sample
        self.targets = targets or batch_targets
        self.bound: BoundObjective | None = None
        self.pending_state: dict[str, torch.Tensor] | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        network = resolve(pl_module, self.student_path, "the LightningModule") if self.student_path else pl_module
        self.bound = BoundObjective(self.objective, network, self.teacher)
        self.bound.adopt = functools.partial(_add_to_first_optimizer, trainer)
        if self.sample is not None:
            self.bound.bind_on(self.sample)
        self._load_pending()
        original = pl_module.training_step

        @functools.wraps(original)
        def training_step(*args: Any, **kwargs: Any) -> Any:
            return self._step(trainer, pl_module, original, args, kwargs)

        pl_module.training_step = training_step  # an instance attribute: removed again at teardown

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.bound is None:
            return
        if self.bound.teacher is not None:
            self.bound.teacher.to(device=pl_module.device)
            if pl_module.dtype.is_floating_point:
                self.bound.teacher.to(dtype=pl_module.dtype)
        self.bound.objective.to(device=pl_module.device)
        if trainer.optimizers and self.bound.objective.bound:
            _add_to_first_optimizer(trainer, [p for p in self.bound.objective.parameters() if p.requires_grad])

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            self._give_back(pl_module)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._give_back(pl_module)

    def _give_back(self, pl_module: pl.LightningModule) -> None:
        """The module's own ``training_step`` back, the teacher released (its modes and ``requires_grad``)."""
        pl_module.__dict__.pop("training_step", None)
        if self.bound is not None:
            self.bound.release()

    def state_dict(self) -> dict[str, Any]:
        return {"objective": self.objective.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.pending_state = state_dict.get("objective")
        if self.bound is not None:
            self._load_pending()

    def _load_pending(self) -> None:
        """Restore the objective's saved state; its adapters must exist already, built at ``setup`` from ``sample``."""
        if self.pending_state is None:
            return
        if self.pending_state and needs_bind(self.objective):
            raise MentorError("The 'sample' parameter of DistillationCallback is required to resume a run whose "
                              "objective has adapters (they are built from it before the checkpoint is loaded). "
                              "Got None; pass sample=<a batch of the student's inputs>.")
        self.objective.load_state_dict(self.pending_state)
        self.pending_state = None

    def _step(self, trainer: pl.Trainer, pl_module: pl.LightningModule, original: Callable[..., Any],
              args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        bound = self.bound
        if bound is None:
            raise MentorError("DistillationCallback ran a training step before its setup; add the callback to the "
                              "Trainer's callbacks (pl.Trainer(callbacks=[...])) instead of calling it directly")
        network, calls = bound.student, []

        def record(module: nn.Module, call_args: tuple[Any, ...], call_kwargs: dict[str, Any], result: Any) -> None:
            calls.append((call_args, call_kwargs, result))

        handle = network.register_forward_hook(record, with_kwargs=True)
        try:
            with tapped(network, self.objective.student_taps, "student") as features:
                output = original(*args, **kwargs)
        finally:
            handle.remove()
        if output is None:
            return None  # the module skipped this batch
        if not calls:
            where = repr(self.student_path) if self.student_path else "'' (the LightningModule's own forward)"
            raise MentorError(f"The 'student' parameter of DistillationCallback names the network whose logits are "
                              f"distilled, but {where} was not called in training_step; pass the path of the "
                              "module training_step calls (e.g. student='model').")
        call_args, call_kwargs, result = calls[-1]
        student = Outputs(pick(result, None, "student"), features)
        batch = args[0] if args else kwargs.get("batch")
        tensor = call_args[0] if len(call_args) == 1 and isinstance(call_args[0], torch.Tensor) else None
        loss = bound.loss(student, bound.teacher_outputs(call_args, call_kwargs), self._targets(batch, student),
                          *_progress(trainer, args, kwargs), inputs=tensor)
        size = student.logits.shape[0]
        pl_module.log_dict({f"mentor/{name}": value for name, value in loss.parts.items()}, batch_size=size)
        user_loss = output["loss"] if isinstance(output, Mapping) else output
        total = loss.total if self.replace_loss else user_loss + loss.total
        return {**output, "loss": total} if isinstance(output, Mapping) else total

    def _targets(self, batch: Any, student: Outputs) -> torch.Tensor:
        targets = self.targets(batch)
        if targets is not None:
            return targets
        if any(term.name == "ce" and term.weight > 0 for term in self.objective):
            raise MentorError("The 'targets' parameter of DistillationCallback must find the labels for the "
                              "objective's 'ce' term; the batch is neither an (inputs, labels) pair nor a mapping "
                              f"with one of {list(TARGET_KEYS)}. Pass targets=lambda batch: <its labels>.")
        return torch.empty(0, dtype=torch.long, device=student.logits.device)  # no term reads labels


def _progress(trainer: pl.Trainer, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[float, int]:
    """Training progress in epochs (fractional inside an epoch) and the run's epochs, for scheduled weights."""
    batches, step = trainer.num_training_batches, args[1] if len(args) > 1 else kwargs.get("batch_idx", 0)
    fraction = step / batches if isinstance(batches, int) and batches > 0 else 0.0
    epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else 1
    return trainer.current_epoch + fraction, epochs


def _add_to_first_optimizer(trainer: pl.Trainer, parameters: list[nn.Parameter]) -> None:
    """``parameters`` join the trainer's first optimizer as one more group at its defaults (once each)."""
    if not trainer.optimizers:
        raise MentorError("DistillationCallback needs an optimizer to train the objective's adapters; return one "
                          "from configure_optimizers")
    optimizer = trainer.optimizers[0]
    known = {id(parameter) for group in optimizer.param_groups for parameter in group["params"]}
    new = [parameter for parameter in parameters if id(parameter) not in known]
    if not new:
        return
    optimizer.add_param_group({"params": new})
    group = optimizer.param_groups[-1]
    group.setdefault("initial_lr", group["lr"])  # what schedulers built before this group read
    for config in trainer.lr_scheduler_configs:
        base = getattr(config.scheduler, "base_lrs", None)
        short = isinstance(base, list) and len(base) < len(optimizer.param_groups)
        if config.scheduler.optimizer is optimizer and short:
            base.append(group["initial_lr"])
