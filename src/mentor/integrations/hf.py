"""Distillation inside a Hugging Face ``transformers.Trainer``: :class:`DistillationTrainer`.

It is the ``Trainer`` one already uses, with a teacher and a Mentor method (by name with its params, or an
:class:`~mentor.losses.Objective`)::

    trainer = DistillationTrainer(model=student, teacher=teacher, method="kd", params={"temperature": 4.0},
                                  args=TrainingArguments(...), train_dataset=..., data_collator=...)
    trainer.train()

What it changes in ``Trainer``:

- ``compute_loss``: the batch's ``labels`` are taken out, the student runs on the rest (its taps recorded),
  the teacher on the same arguments, and the loss is the objective's total (``labels`` are the CE targets).
  Logits are read from a ``ModelOutput``'s ``logits`` or from a plain module's tensor (or tuple) result.
- the teacher: frozen (eval mode, no gradients, ``inference_mode``), moved to the batch's device at its
  first use, never handed to the optimizer nor saved with the student.
- ``create_optimizer``: the objective is bound on the first training batch (so adapters exist), and its
  parameters join the optimizer as one more group at ``args.weight_decay``, before the scheduler is made.
- the loss is a per-batch mean, so the Trainer divides it over gradient-accumulation steps itself.
- checkpoints: every Trainer checkpoint folder also holds the objective's state (adapters, learned weightings)
  as :data:`OBJECTIVE_FILE`, written atomically with a checksum (:mod:`mentor.engine.checkpoint`), and
  ``train(resume_from_checkpoint=...)`` loads it after binding, so a resumed run continues with the adapters it
  had rather than fresh ones.

Teacher cache: the Trainer cannot know whether a sample's inputs are the same at every epoch (a collator
may mask tokens at random), so caching is the user's statement: ``cache_teacher=True`` and an ``index``
column (each sample's position in the training set, e.g. ``dataset.map(lambda _, i: {"index": i},
with_indices=True)``). The column is kept through ``remove_unused_columns`` and never reaches the model.
Cached rows are stacked per batch, so inputs padded to each batch's longest sample need a fixed length.
Evaluation always runs the teacher live.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mentor.batch import Outputs
from mentor.engine import checkpoint
from mentor.errors import MentorError
from mentor.integrations.core import Method, build_objective, needs_bind, tapped
from mentor.integrations.loop import BoundObjective
from mentor.outputs import pick

try:
    import transformers
except ImportError:
    raise MentorError("mentor.integrations.hf needs the Hugging Face extra: pip install 'mentor[hf]'") from None

OBJECTIVE_FILE = "mentor_objective.pt"
"""The objective's state in a Trainer checkpoint folder."""


class DistillationTrainer(transformers.Trainer):
    """A ``transformers.Trainer`` whose loss is a Mentor objective between ``model`` and a frozen ``teacher``.

    Args:
        teacher: the trained teacher (any ``nn.Module`` taking the student's inputs).
        method: a registered method's name (``"kd"``) or an :class:`~mentor.losses.Objective`.
        params: the method's parameters (only with a name).
        cache_teacher: keep the teacher's training outputs by the ``index_column`` (see the module docs).
        index_column: the batch key holding each sample's position in the training set.
        *args, **kwargs: everything ``transformers.Trainer`` takes (``model``, ``args``, datasets, ...).
    """

    def __init__(self, *args: Any, teacher: nn.Module, method: Method = "kd", params: Mapping[str, Any] | None = None,
                 cache_teacher: bool = False, index_column: str = "index", **kwargs: Any) -> None:
        objective = build_objective(method, params, "DistillationTrainer")
        super().__init__(*args, **kwargs)
        self.distillation = BoundObjective(objective, self.model, teacher, cache_teacher)
        self.distillation.adopt = lambda parameters: self._add_objective_parameters(self.optimizer)
        self.index_column = index_column
        if not self.label_names:  # a plain module's forward names no labels; this Trainer always reads 'labels'
            self.label_names = ["labels"]
        self.loss_is_scaled_for_ga = False  # a per-batch mean: the Trainer divides it over accumulation steps
        self.model_accepts_loss_kwargs = False

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        if self.index_column not in self._signature_columns:
            self._signature_columns.append(self.index_column)

    def create_optimizer(self, model: nn.Module | None = None) -> torch.optim.Optimizer:
        """The Trainer's optimizer, plus one group with the objective's parameters (bound first)."""
        if needs_bind(self.distillation.objective) and self.train_dataset is not None:
            inputs = self._prepare_inputs(next(iter(self.get_train_dataloader())))
            self.distillation.bind_on(self._split(inputs)[0])
        self.distillation.objective.to(next(self.model.parameters()).device)
        optimizer = super().create_optimizer(model) if model is not None else super().create_optimizer()
        self._add_objective_parameters(optimizer)
        return optimizer

    def _add_objective_parameters(self, optimizer: torch.optim.Optimizer) -> None:
        known = {id(parameter) for group in optimizer.param_groups for parameter in group["params"]}
        new = [p for p in self.distillation.objective.parameters() if p.requires_grad and id(p) not in known]
        if new:
            optimizer.add_param_group({"params": new, "weight_decay": self.args.weight_decay})

    def _save_optimizer_and_scheduler(self, output_dir: str) -> None:
        super()._save_optimizer_and_scheduler(output_dir)
        if self.args.should_save:
            checkpoint.save({"objective": self.distillation.objective.state_dict()}, Path(output_dir) / OBJECTIVE_FILE)

    def _load_optimizer_and_scheduler(self, resume_from_checkpoint: str | None) -> None:
        super()._load_optimizer_and_scheduler(resume_from_checkpoint)
        if resume_from_checkpoint is None or not (Path(resume_from_checkpoint) / OBJECTIVE_FILE).is_file():
            return
        state = checkpoint.load(Path(resume_from_checkpoint) / OBJECTIVE_FILE)["objective"]
        try:
            self.distillation.objective.load_state_dict(state)
        except RuntimeError as error:
            raise MentorError(f"{resume_from_checkpoint}/{OBJECTIVE_FILE} does not fit this trainer's objective "
                              f"({str(error).splitlines()[0][:160]}); resume with the method and params it was "
                              "saved with") from None

    def _split(self, inputs: Mapping[str, Any]) -> tuple[dict[str, Any], torch.Tensor | None, torch.Tensor | None]:
        """The model's inputs, the labels and the sample indices of one prepared batch."""
        model_inputs = dict(inputs)
        labels = model_inputs.pop("labels", None)
        indices = model_inputs.pop(self.index_column, None)
        return model_inputs, labels, indices

    def compute_loss(self, model: nn.Module, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: torch.Tensor | int | None = None) -> Any:
        model_inputs, labels, indices = self._split(inputs)
        if labels is None:
            raise MentorError("DistillationTrainer needs a 'labels' column in each batch (the targets of the "
                              f"objective's cross-entropy). Got the keys {sorted(inputs)}; add the labels column.")
        if self.distillation.cache is not None and indices is None and model.training:
            raise MentorError(f"cache_teacher=True needs the {self.index_column!r} column (each sample's position "
                              f"in the training set). Got the keys {sorted(inputs)}; add it with dataset.map(lambda "
                              f"_, i: {{{self.index_column!r}: i}}, with_indices=True) or set cache_teacher=False.")
        with tapped(self.accelerator.unwrap_model(model), self.distillation.objective.student_taps,
                    "student") as features:
            result = model(**model_inputs)
        student = Outputs(pick(result, None, "student"), features)
        if student.logits.ndim != 2:
            raise MentorError(f"DistillationTrainer distills one row of logits per sample, (batch, classes), as a "
                              f"sequence classifier gives. Got logits of shape {tuple(student.logits.shape)}; "
                              "a token-level model needs its logits reshaped in a Trainer of your own.")
        teacher = self.distillation.teacher_outputs((), model_inputs, indices if model.training else None)
        epoch = float(self.state.epoch or 0.0)
        epochs = max(1, int(self.args.num_train_epochs))
        loss = self.distillation.loss(student, teacher, labels, epoch, epochs, indices).total
        if not return_outputs:
            return loss
        return loss, result if isinstance(result, Mapping) else {"logits": student.logits}  # read by prediction_step
