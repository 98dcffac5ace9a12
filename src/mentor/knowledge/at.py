"""Attention transfer (AT), activation-based and gradient-based.

Zagoruyko & Komodakis (2017), "Paying More Attention to Attention: Improving the Performance of
Convolutional Neural Networks via Attention Transfer", ICLR, arXiv:1612.03928. The distance is the one
of the authors' released code (szagoruyko/attention-transfer, ``at``/``at_loss`` in ``cifar.py``), for
which β = 1000 was tuned.

Activation-based (``mode: activation``): a layer's activations A ``(B, C, H, W)`` give the spatial map
Q = vec(Σ_c |A_c|^p) ``(B, H·W)``, normalized per sample, Q̂ = Q/‖Q‖₂; over pairs j of student/teacher
layers,

    L = CE(y, z_S) + β/2 Σ_j 1/(B·H_j·W_j) Σ_b Σ_i |Q̂_S,bi^j − Q̂_T,bi^j|^q

with p = q = 2: the mean over the batch and the map's positions of the squared difference of the
normalized maps, exactly the released code's ``(at(x) - at(y)).pow(2).mean()`` (it averages over
channels where Σ_c is written here, which the normalization cancels). The paper's text writes the
unsquared norm ‖Q̂_S − Q̂_T‖₂ of each sample; at the same β its gradient would be H·W/(2‖Q̂_S − Q̂_T‖₂)
times the code's, which is the form β = 1000 was chosen for. β/2 is the paper's factor;
RepDistiller's re-implementation takes the same mean with β = 1000 and no ½. Maps of different
sizes are adaptive-average-pooled to the smaller one. With ``alpha`` set, CE is replaced by KD:
(1 − α)·CE + α·τ²·KL.

Gradient-based (``mode: gradient``): the attention is the gradient of each network's cross-entropy
with respect to its input, J = ∂L/∂x ``(B, *input)``, compared as the activation maps are (the authors
released no code for this mode; the paper writes β/2 ‖J_S − J_T‖₂):

    L = CE(y, z_S) + β/2 · 1/(B·D) Σ_b Σ_i |Ĵ_S,bi − Ĵ_T,bi|^q           Ĵ = vec(J)/‖vec(J)‖₂, D = elements of x

Minimizing it needs double back-propagation: J_S is built with ``create_graph=True`` from an extra
student pass (in train mode, so BatchNorm statistics see the batch twice). The teacher's J_T needs
gradients on its input only; its weights never require grad and it stays in eval mode.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from mentor.batch import Outputs
from mentor.errors import MentorError
from mentor.knowledge.base import register
from mentor.losses import CE, KL, Context, Objective, Term
from mentor.losses.functional import lp_distance


def attention_map(features: torch.Tensor, power: float = 2.0) -> torch.Tensor:
    """Σ_c |A_c|^p: ``(B, C, H, W)`` -> ``(B, H, W)``."""
    return features.abs().pow(power).sum(dim=1)


def normalized_distance(student: torch.Tensor, teacher: torch.Tensor, power: float = 2.0) -> torch.Tensor:
    """mean over batch and elements of |s/‖s‖₂ − t/‖t‖₂|^power, each sample flattened: ``(B, ...)`` -> scalar."""
    student = F.normalize(student.flatten(1), dim=1, eps=1e-12)
    teacher = F.normalize(teacher.flatten(1), dim=1, eps=1e-12)
    return lp_distance(student, teacher, norm=power, power=power, reduction="mean")


class ActivationAttention(Term):
    """Σ_j mean_{b,i} |Q̂_S^j − Q̂_T^j|^q over pairs of student/teacher layer paths."""

    def __init__(self, student: list[str], teacher: list[str], power: float, norm: float, weight: float) -> None:
        super().__init__("at", weight)
        self.student_paths, self.teacher_paths = list(student), list(teacher)
        self.student_taps, self.teacher_taps = tuple(dict.fromkeys(student)), tuple(dict.fromkeys(teacher))
        self.power, self.norm = power, norm

    def bind(self, student: Outputs, teacher: Outputs | None) -> None:
        if teacher is None:
            raise MentorError("loss term 'at' needs a teacher, but this scheme has none")
        sides = (("student", student, self.student_paths), ("teacher", teacher, self.teacher_paths))
        for role, outputs, paths in sides:
            for path in paths:
                if outputs.get(path).ndim != 4:
                    raise MentorError(
                        f"at: {role} layer {path!r} gives shape {tuple(outputs.get(path).shape)}; attention maps "
                        "need feature maps (B, C, H, W): tap convolutional layers"
                    )

    def loss(self, context: Context) -> torch.Tensor:
        teacher = context.require_teacher(self.name)
        total = context.student.logits.new_zeros(())
        for student_path, teacher_path in zip(self.student_paths, self.teacher_paths, strict=True):
            student_map = attention_map(context.student.get(student_path), self.power)
            teacher_map = attention_map(teacher.get(teacher_path), self.power)
            size = tuple(min(a, b) for a, b in zip(student_map.shape[1:], teacher_map.shape[1:], strict=True))
            if tuple(student_map.shape[1:]) != size:
                student_map = F.adaptive_avg_pool2d(student_map.unsqueeze(1), size).squeeze(1)
            if tuple(teacher_map.shape[1:]) != size:
                teacher_map = F.adaptive_avg_pool2d(teacher_map.unsqueeze(1), size).squeeze(1)
            total = total + normalized_distance(student_map, teacher_map, self.norm)
        return total


def input_gradient(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor, graph: bool) -> torch.Tensor:
    """J = ∂CE(model(x), y)/∂x ``(B, *input)``; ``graph`` keeps it differentiable (double backprop)."""
    with torch.enable_grad():
        inputs = inputs.detach().clone().requires_grad_(True)
        loss = F.cross_entropy(model(inputs), targets)
        (gradient,) = torch.autograd.grad(loss, inputs, create_graph=graph)
    return gradient


class GradientAttention(Term):
    """mean_{b,i} |Ĵ_S − Ĵ_T|^q, with J the input gradient of each network's CE."""

    def __init__(self, norm: float, weight: float) -> None:
        super().__init__("at", weight)
        self.norm = norm

    def loss(self, context: Context) -> torch.Tensor:
        if context.student_model is None or context.teacher_model is None:
            raise MentorError(
                "at with mode: gradient needs the student and teacher models in its context; use a scheme that "
                "passes them (offline)"
            )
        teacher = getattr(context.teacher_model, "model", context.teacher_model)  # the raw module of a FrozenTeacher
        inputs, targets = context.batch.inputs, context.batch.targets
        student_gradient = input_gradient(context.student_model, inputs, targets, graph=True)
        teacher_gradient = input_gradient(teacher, inputs, targets, graph=False)
        return normalized_distance(student_gradient, teacher_gradient, self.norm)


@register("at", "Zagoruyko & Komodakis 2017, Paying More Attention to Attention (ICLR)")
def at(
    student: list[str] | None = None,
    teacher: list[str] | None = None,
    mode: Literal["activation", "gradient"] = "activation",
    beta: Annotated[float, Field(ge=0)] = 1000.0,
    power: Annotated[float, Field(gt=0)] = 2.0,
    norm: Annotated[float, Field(ge=1)] = 2.0,
    alpha: Annotated[float, Field(ge=0, le=1)] | None = None,
    temperature: Annotated[float, Field(gt=0)] = 4.0,
) -> Objective:
    """Cross-entropy (or KD when ``alpha`` is set) plus β/2 times the attention-transfer distance.

    Args:
        student / teacher: paths of the layers whose attention maps are matched, pair by pair
            (activation mode only).
        mode: ``activation`` (maps Σ_c |A_c|^p of tapped layers) or ``gradient`` (input gradients).
        beta: β. power: p of the activation map. norm: q, the exponent of the element-wise distance between
            normalized maps (2 in the paper and code).
        alpha / temperature: when ``alpha`` is given, (1 − α)·CE + α·KD(τ) replaces CE.
    """
    if mode == "activation":
        if not student or not teacher or len(student) != len(teacher):
            raise MentorError(
                "The 'student' and 'teacher' parameters of at must list the same number (>= 1) of layer paths to "
                f"match in activation mode. Got {student!r} and {teacher!r} instead."
            )
        transfer: Term = ActivationAttention(student, teacher, power, norm, weight=beta / 2)
    else:
        if student or teacher:
            raise MentorError(
                "The 'student' and 'teacher' parameters of at are not used in gradient mode (attention is the input "
                f"gradient). Got {student!r} and {teacher!r} instead; remove them."
            )
        transfer = GradientAttention(norm, weight=beta / 2)
    if alpha is None:
        return Objective(CE(), transfer)
    return Objective(CE(weight=1.0 - alpha), KL(temperature=temperature, weight=alpha), transfer)
