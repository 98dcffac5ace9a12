"""Student-friendly teacher networks (SFTN): the teacher is trained together with branches of the student.

Park, Cha, Jeong, Kim & Han (2021), "Learning Student-Friendly Teacher Networks for Knowledge
Distillation", NeurIPS (arXiv:2102.07650).

The teacher is cut into blocks B^T_1..B^T_n and the student into B^S_1..B^S_n at module paths
(:mod:`mentor.teachers.blocks`). Teacher block i outputs F^T_i. For i = 1..n−1, a teacher-to-student
transform T_i (1×1 conv, BatchNorm, ReLU; for vector features a linear layer, BatchNorm, ReLU) maps F^T_i
``(B, C^T_i, H^T_i, W^T_i)`` to the shape of the student's block-i output ``(B, C^S_i, H^S_i, W^S_i)``
(average-pooled to H^S_i × W^S_i when the sizes differ), and the remaining student blocks give the
branch logits z^R_i = B^S_n ∘ … ∘ B^S_{i+1} ∘ T_i(F^T_i), ``(B, K)``. With z^T the teacher's logits and
q^τ(z) = softmax(z / τ), the teacher is trained on

    L = λ_T · CE(z^T, y) + Σ_{i<n} [ λ_R^CE · CE(z^R_i, y) + λ_R^KL · τ² · KL(q^τ(z^T) ‖ q^τ(z^R_i)) ]

Nothing is detached: the KL term pulls the teacher toward what the student blocks can follow, which is the
point of the method. The student blocks are one copy of the student, shared by the branches (branch i uses
B^S_{i+1..n}), trained with the teacher and then discarded: the student is distilled from scratch from
the trained teacher with any method (KD by default), as in the paper.

Defaults: λ_T = 1, λ_R^CE = 1, λ_R^KL = 3 and τ = 1, as we read the paper's CIFAR-100 settings (not checked
against released code, which we could not consult; set them per run where it matters): the soft terms weigh
more than the hard ones, and the branches are compared with the teacher's plain softmax (at
τ = 1 the τ² factor is 1; it keeps the soft term's gradient scale when τ is changed).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pydantic
import torch
import torch.nn.functional as F
from torch import nn

from mentor.batch import Batch
from mentor.engine import FitResult, FitSettings, MetricsLog, evaluating, fit
from mentor.errors import MentorError, clip
from mentor.losses.functional import kl_with_temperature
from mentor.losses.objective import LossOutput
from mentor.schemes.base import Scheme
from mentor.teachers.blocks import split

if TYPE_CHECKING:
    from mentor.data import Splits
    from mentor.pipelines.result import Result


def student_friendly_parts(teacher_logits: torch.Tensor, branch_logits: list[torch.Tensor], targets: torch.Tensor,
                           teacher_weight: float, branch_ce_weight: float, branch_kl_weight: float,
                           temperature: float) -> dict[str, torch.Tensor]:
    """The weighted terms of L (module docstring) by name: ``ce`` (the teacher's), ``ce/branchI``, ``kl/branchI``.

    Args:
        teacher_logits: ``(B, K)`` z^T.
        branch_logits: n−1 tensors ``(B, K)``, z^R_1 first.
        targets: ``(B,)`` class indices.
    """
    parts = {"ce": teacher_weight * F.cross_entropy(teacher_logits, targets)}
    for index, logits in enumerate(branch_logits, start=1):
        parts[f"ce/branch{index}"] = branch_ce_weight * F.cross_entropy(logits, targets)
        parts[f"kl/branch{index}"] = branch_kl_weight * kl_with_temperature(logits, teacher_logits, temperature)
    return parts


class Transform(nn.Module):
    """T_i: a teacher feature ``(C^T, H^T, W^T)`` or ``(D^T,)`` -> the student's ``(C^S, H^S, W^S)`` or ``(D^S,)``."""

    def __init__(self, teacher_shape: torch.Size, student_shape: torch.Size) -> None:
        super().__init__()
        if len(teacher_shape) == 3:
            self.layers = nn.Sequential(nn.Conv2d(teacher_shape[0], student_shape[0], 1, bias=False),
                                        nn.BatchNorm2d(student_shape[0]), nn.ReLU())
        else:
            self.layers = nn.Sequential(nn.Linear(teacher_shape[0], student_shape[0], bias=False),
                                        nn.BatchNorm1d(student_shape[0]), nn.ReLU())
        self.size = tuple(student_shape[1:]) if tuple(teacher_shape[1:]) != tuple(student_shape[1:]) else None

    def forward(self, feature: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        mapped = self.layers(feature)
        return F.adaptive_avg_pool2d(mapped, self.size) if self.size is not None else mapped


class Branches(nn.Module):
    """The transforms T_1..T_{n−1} and one copy of the student blocks B^S_2..B^S_n they feed."""

    def __init__(self, transforms: list[Transform], student_blocks: list[nn.Sequential]) -> None:
        super().__init__()
        self.transforms = nn.ModuleList(transforms)
        self.student_blocks = nn.ModuleList(student_blocks)

    def branch(self, index: int, feature: torch.Tensor) -> torch.Tensor:
        """z^R_{index+1} ``(B, K)`` from F^T_{index+1} (``index`` counts from 0)."""
        out = self.transforms[index](feature)
        for block in self.student_blocks[index:]:
            out = block(out)
        return out


class BranchPredictor(nn.Module):
    """Branch i as a classifier of inputs: teacher blocks 1..i, T_i, student blocks i+1..n (for validation)."""

    def __init__(self, teacher_blocks: list[nn.Sequential], branches: Branches, index: int) -> None:
        super().__init__()
        self.teacher_blocks = nn.ModuleList(teacher_blocks[: index + 1])
        self.branches, self.index = branches, index

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out = inputs
        for block in self.teacher_blocks:
            out = block(out)
        return self.branches.branch(self.index, out)


def setting(where: str, name: str) -> str:
    """How a setting is named in errors: ``recipe key 'teacher.student_friendly.NAME'`` or ``the 'NAME' parameter``."""
    return f"recipe key '{where}{name}'" if where else f"the {name!r} parameter"


def _feature_shape(value: torch.Tensor, key: str, what: str) -> torch.Size:
    if value.ndim not in (2, 4):
        raise MentorError(f"{key}: the {what} has shape {tuple(value.shape[1:])}; a cut must give a feature map "
                          "(C, H, W) or a vector (D,)")
    return value.shape[1:]


class StudentFriendlyTraining(Scheme):
    """Train ``teacher`` with student branches (module docstring); the student blocks come from a copy of ``student``.

    Args:
        teacher: the model trained (in place); a plain ``nn.Sequential`` down to each cut.
        student: the student architecture; a copy of it is cut into the branch blocks.
        teacher_blocks, student_blocks: the module paths after which each model is cut, as many for both.
        teacher_weight, branch_ce_weight, branch_kl_weight, temperature: λ_T, λ_R^CE, λ_R^KL and τ.
        where: the recipe section named in errors (``"teacher.student_friendly."``; empty: parameters).

    Predictors: ``teacher`` (selected on validation) and ``branch1``.. (each branch as a classifier).
    Trained modules (checkpoint keys): ``teacher`` and ``branches``.
    """

    def __init__(self, teacher: nn.Module, student: nn.Module, teacher_blocks: list[str], student_blocks: list[str],
                 teacher_weight: float = 1.0, branch_ce_weight: float = 1.0, branch_kl_weight: float = 3.0,
                 temperature: float = 1.0, where: str = "") -> None:
        super().__init__()
        if len(teacher_blocks) != len(student_blocks):
            raise MentorError(f"{setting(where, 'student_blocks')}: cut the student at as many paths as the teacher "
                              f"(teacher_blocks), so that both have as many blocks; got {len(student_blocks)} and "
                              f"{len(teacher_blocks)} paths")
        self.teacher = teacher
        self.blocks = split(teacher, teacher_blocks, setting(where, "teacher_blocks"), "teacher")  # not registered
        self.student_copy = split(copy.deepcopy(student), student_blocks, setting(where, "student_blocks"), "student")
        self.where = where
        self.weights = (teacher_weight, branch_ce_weight, branch_kl_weight, temperature)
        self.branches: Branches | None = None

    def setup(self, batch: Batch) -> None:
        if self.branches is not None:
            return
        teacher_out, student_out = [batch.inputs], [batch.inputs]
        with evaluating(self.teacher), evaluating(nn.ModuleList(self.student_copy)), torch.no_grad():
            for teacher_block, student_block in zip(self.blocks, self.student_copy, strict=True):
                teacher_out.append(teacher_block(teacher_out[-1]))
                student_out.append(student_block(student_out[-1]))
        transforms = []
        for index, (feature, target) in enumerate(zip(teacher_out[1:-1], student_out[1:-1], strict=True), start=1):
            teacher_shape = _feature_shape(feature, setting(self.where, "teacher_blocks"),
                                           f"teacher's block {index} output")
            student_shape = _feature_shape(target, setting(self.where, "student_blocks"),
                                           f"student's block {index} output")
            if len(teacher_shape) != len(student_shape):
                raise MentorError(f"{setting(self.where, 'teacher_blocks')}: teacher block {index} outputs "
                                  f"{tuple(teacher_shape)} but student block {index} outputs {tuple(student_shape)}; "
                                  "cut both at maps or both at vectors")
            transforms.append(Transform(teacher_shape, student_shape).to(feature.device))
        self.branches = Branches(transforms, self.student_copy[1:]).to(batch.device)

    def trained(self) -> dict[str, nn.Module]:
        return {"teacher": self.teacher, "branches": self._branches()}

    def predictors(self) -> dict[str, nn.Module]:
        branches = self._branches()
        return {"teacher": self.teacher, **{f"branch{index + 1}": BranchPredictor(self.blocks, branches, index)
                                            for index in range(len(branches.transforms))}}

    def _branches(self) -> Branches:
        if self.branches is None:
            raise MentorError("the student-friendly teacher's branches are built by setup(batch) on a sample batch "
                              "before training")
        return self.branches

    def loss(self, batch: Batch, epoch: float, epochs: int) -> LossOutput:
        branches = self._branches()
        features, out = [], batch.inputs
        for block in self.blocks:
            out = block(out)
            features.append(out)
        teacher_logits = features.pop()
        branch_logits = [branches.branch(index, feature) for index, feature in enumerate(features)]
        parts = student_friendly_parts(teacher_logits, branch_logits, batch.targets, *self.weights)
        return LossOutput.of(parts, reference=F.cross_entropy(teacher_logits, batch.targets))


@dataclass
class StudentFriendlyTeacher:
    """How a run trains its teacher the SFTN way: the student architecture and the method's settings.

    ``student`` builds a fresh student (its blocks form the branches); ``options`` are the keyword
    arguments of :class:`StudentFriendlyTraining`; ``where`` is the recipe section named in errors
    (``"teacher.student_friendly."``; empty for the Python API).
    """

    student: Callable[[], nn.Module]
    options: dict[str, Any]
    where: str = ""

    def scheme(self, teacher: nn.Module) -> StudentFriendlyTraining:
        return StudentFriendlyTraining(teacher, self.student(), **self.options, where=self.where)

    def check(self, teacher: nn.Module, sample: Batch) -> None:
        """Cut both models and compute one loss on ``sample``: a mistake fails now, in one line, naming the key."""
        scheme = self.scheme(teacher)
        try:
            scheme.setup(sample)
            with evaluating(scheme.teacher), evaluating(scheme._branches()), torch.no_grad():
                scheme.loss(sample, 0.0, 1)
        except MentorError:
            raise
        except Exception as error:  # noqa: BLE001 - reported in one line, before anything is written
            raise MentorError(f"{setting(self.where, 'student_blocks')}: the student's blocks cannot run on the "
                              f"teacher's transformed features: {type(error).__name__}: {clip(str(error))}; cut the "
                              "student where its blocks take feature maps (e.g. after each stage)") from None

    def fit(self, teacher: nn.Module, data: Splits, settings: FitSettings, *, log: MetricsLog | None = None,
            checkpoints: Path | None = None) -> list[FitResult]:
        """Train ``teacher`` in place with its student branches (the same loop as every model of a run)."""
        return [fit(self.scheme(teacher), data.train, data.validation, settings, log=log, checkpoints=checkpoints)]


def train_student_friendly(teacher: nn.Module, student: nn.Module, data: Splits, *, teacher_blocks: list[str],
                           student_blocks: list[str], teacher_weight: float = 1.0, branch_ce_weight: float = 1.0,
                           branch_kl_weight: float = 3.0, temperature: float = 1.0, latency_batch: int = 256,
                           settings: FitSettings | None = None, **options: Any) -> Result:
    """Train ``teacher`` in place as a student-friendly teacher of ``student``'s architecture, and measure it.

    ``student`` is only read (its blocks are copied into the branches); distill the trained teacher into a
    fresh student afterwards, e.g. ``mentor.distill(teacher, student, data, mentor.knowledge.create("kd"))``.

    Args:
        teacher, student: plain ``nn.Sequential`` models (the zoo's CNNs and MLPs) mapping inputs to logits.
        data: train/validation/test splits (:func:`mentor.data.load`).
        teacher_blocks, student_blocks: module paths after which each model is cut, as many for both.
        teacher_weight, branch_ce_weight, branch_kl_weight, temperature: λ_T, λ_R^CE, λ_R^KL and τ.
        latency_batch: batch size of the latency measurement.
        settings: ready :class:`~mentor.engine.FitSettings`, instead of keywords.
        **options: any key of a recipe's ``train`` section (:func:`mentor.pipelines.options.settings`).

    Returns:
        a :class:`~mentor.pipelines.Result` with the ``teacher`` row; ``history("teacher")`` holds each
        epoch's ``train/ce``, ``train/ce/branchI``, ``train/kl/branchI`` and the branches' validation accuracy.
    """
    from mentor.pipelines.distill import check_device, check_outputs, sample_batch
    from mentor.pipelines.options import settings as keyword_settings
    from mentor.pipelines.result import Result, measure
    from mentor.recipes.schema import StudentFriendly

    caller = "mentor.teachers.train_student_friendly"
    method = {"teacher_blocks": teacher_blocks, "student_blocks": student_blocks, "teacher_weight": teacher_weight,
              "branch_ce_weight": branch_ce_weight, "branch_kl_weight": branch_kl_weight, "temperature": temperature}
    try:
        validated = StudentFriendly.model_validate(method)
    except pydantic.ValidationError as error:
        first = error.errors()[0]
        raise MentorError(f"The {str(first['loc'][0])!r} parameter of {caller} is invalid: {first['msg']}. Got "
                          f"{first.get('input')!r} instead.") from None
    fit_settings = keyword_settings(settings, caller=caller, **options)
    check_device(fit_settings)
    sample = sample_batch(data.train, fit_settings.batch_size)
    for name, model in (("teacher", teacher), ("student", student)):
        check_outputs(name, model, data, sample)
    method = StudentFriendlyTeacher(lambda: student, validated.model_dump(), where="")
    method.check(teacher, sample)
    log = MetricsLog()
    fits = method.fit(teacher, data, fit_settings, log=log.bind(run="teacher", seed=fit_settings.seed))
    result = Result(records=log.records)
    result.add(measure("teacher", fit_settings.seed, teacher, data, latency_batch, fits[-1].best_epoch), teacher)
    return result
