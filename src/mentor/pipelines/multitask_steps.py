"""The steps of a multi-task run (:mod:`mentor.pipelines.multitask`): pseudo labels of the pool, the training sets
of the students, and the scheme that trains a multi-head student on all tasks at once."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mentor.batch import Batch
from mentor.data import ArrayDataset, Splits
from mentor.engine import predict
from mentor.losses.multitask import (
    fit_affine,
    fit_temperature,
    masked_soft_cross_entropy,
    masked_squared_error,
    quadruplet_ranking,
)
from mentor.losses.objective import LossOutput
from mentor.models.multi_head import MultiHead, TaskHead
from mentor.pipelines.multitask_data import Layout, Task
from mentor.schemes.base import Scheme


@dataclass(frozen=True)
class CrossTask:
    """Cross-task KD settings (Yang et al. 2022; :mod:`mentor.losses.multitask`).

    Attributes:
        ranking_weight: λ of every auxiliary ranking loss (one per ordered pair of tasks) in the total. Default 1:
            the paper adds its auxiliary losses to the task losses and tunes the weights per dataset; 1 puts a
            ranking loss (log 2 ≈ 0.69 at the start) on the scale of a task's cross-entropy, untuned.
        calibrate: calibrate each teacher on its task's validation split before its pseudo labels are used
            (default on: the paper's calibration step).
        confidence: a classification task's binary label y_t is 1 where the (calibrated) teacher's top class
            probability reaches this value; a regression task's is 1 above the median of its pseudo labels.
            Default ½: a calibrated probability above ½ means the teacher is more often right than wrong there.
    """

    ranking_weight: float = 1.0
    calibrate: bool = True
    confidence: float = 0.5


@dataclass
class PseudoLabels:
    """A teacher's labels of the pool: ``targets`` ``(N, D_t)`` (probabilities or values), binary ``events``
    ``(N,)`` and the calibration applied (``temperature`` or ``affine``)."""

    targets: torch.Tensor
    events: torch.Tensor
    calibration: str = "none"


def calibrate(teacher: nn.Module, task: Task, splits: Splits) -> tuple[float, float, float]:
    """(temperature, a, b) fitted on the task's validation split (identity where the task has none to fit)."""
    held = splits.validation
    if held is None or len(held) == 0:
        return 1.0, 1.0, 0.0
    outputs = predict(teacher, held)
    if task.regression:
        a, b = fit_affine(outputs, held.targets)
        return 1.0, a, b
    return fit_temperature(outputs, held.targets), 1.0, 0.0


def pseudo_labels(teacher: nn.Module, task: Task, pool: ArrayDataset, calibration: tuple[float, float, float],
                  confidence: float) -> PseudoLabels:
    """Soft class probabilities ``softmax(z / T)`` (MuST's classification pseudo labels) or the teacher's value
    ``a·r + b`` (its regression label) on every pool image, and the binary labels of the ranking loss."""
    temperature, a, b = calibration
    outputs = predict(teacher, pool).float()
    if task.regression:
        values = a * outputs + b
        return PseudoLabels(values, (values[:, 0] >= values[:, 0].median()).float(), f"affine a={a:.3g} b={b:.3g}")
    probs = torch.softmax(outputs / temperature, dim=1)
    return PseudoLabels(probs, (probs.max(dim=1).values >= confidence).float(), f"temperature {temperature:.3g}")


def related(events: dict[str, torch.Tensor]) -> dict[tuple[str, str], bool]:
    """For every ordered pair of tasks, whether their binary labels correlate non-negatively on the pool."""
    pairs = {}
    for first, a in events.items():
        for second, b in events.items():
            if first != second:
                centred = (a - a.mean()) * (b - b.mean())
                pairs[(first, second)] = bool(centred.mean() >= 0)
    return pairs


def pool_set(pool: ArrayDataset, layout: Layout, labels: dict[str, PseudoLabels]) -> ArrayDataset:
    """The pool with every task's pseudo labels packed (every sample labelled for every task)."""
    rows = len(pool)
    ones = torch.ones(rows)
    return ArrayDataset(pool.inputs, layout.pack(rows, {name: (label.targets, ones, label.events)
                                                       for name, label in labels.items()}))


def ground_truth_set(tasks: list[Task], data: dict[str, Splits], layout: Layout) -> ArrayDataset:
    """Every task's labelled training part, one after the other, each row labelled for its own task only (one-hot
    classes or the true value): what the same student learns without teachers."""
    inputs, packed = [], []
    for task in tasks:
        train = data[task.name].train
        rows = len(train)
        targets = train.targets.float() if task.regression else \
            nn.functional.one_hot(train.targets, layout.widths[task.name]).float()
        inputs.append(train.inputs)
        packed.append(layout.pack(rows, {task.name: (targets, torch.ones(rows), torch.zeros(rows))}))
    return ArrayDataset(torch.cat(inputs), torch.cat(packed))


def ranking_head(task: str) -> str:
    """The name of task ``task``'s auxiliary ranking head (one score per sample) in a cross-task student."""
    return f"{task}-rank"


class MultiTaskTraining(Scheme):
    """A :class:`MultiHead` student on packed targets: ``Σ_t w_t L_t / v_t`` (+ ``λ Σ_{A≠B} L_rank(A|B)``).

    ``scales`` v_t divide each regression loss by the variance of its targets (1 for classification), so that a
    weight of 1 puts a squared error on the scale of a cross-entropy. With ``cross_task`` the student has one more
    head per task, :func:`ranking_head`, whose score ``(B,)`` the ranking losses order: as the paper's auxiliary
    tasks, they share the body with the task heads without pulling on the task heads' outputs.
    """

    def __init__(self, student: MultiHead, tasks: list[Task], layout: Layout, scales: dict[str, float],
                 cross_task: CrossTask | None = None, related: dict[tuple[str, str], bool] | None = None) -> None:
        super().__init__()
        self.student, self.tasks, self.layout, self.scales = student, tasks, layout, scales
        self.cross_task, self.related = cross_task, related or {}

    def trained(self) -> dict[str, nn.Module]:
        return {"student": self.student}

    def predictors(self) -> dict[str, nn.Module]:
        return {"student": TaskHead(self.student, self.tasks[0].name)}

    def loss(self, batch: Batch, epoch: float, epochs: int) -> LossOutput:
        outputs = self.student(batch.inputs)
        parts: dict[str, torch.Tensor] = {}
        scores, events = {}, {}
        total = torch.zeros((), device=batch.targets.device)
        for task in self.tasks:
            targets, mask, events[task.name] = self.layout.unpack(batch.targets, task.name)
            output = outputs[task.name]
            if task.regression:
                loss = masked_squared_error(output.float(), targets, mask) / self.scales[task.name]
            else:
                loss = masked_soft_cross_entropy(output.float(), targets, mask)
            if self.cross_task is not None:
                scores[task.name] = outputs[ranking_head(task.name)][:, 0].float()
            parts[task.name] = loss.detach()
            total = total + task.weight * loss
        if self.cross_task is not None and self.cross_task.ranking_weight > 0:
            for (first, second), together in self.related.items():
                ranking = quadruplet_ranking(scores[first], events[first], events[second], together)
                parts[f"rank {first}|{second}"] = ranking.detach()
                total = total + self.cross_task.ranking_weight * ranking
        return LossOutput(total, parts)
