"""Knowledge distillation from several teachers (survey §4.2), with any weighting of the teachers.

The teachers are the members of a :class:`mentor.teachers.Ensemble` (the run's teacher); the weighting
(:mod:`mentor.teachers.weighting`) gives each teacher ``m`` a weight w_{b,m} per sample ``b``. Two ways to
combine them:

``average`` (Hinton et al. 2015's ensemble target; You et al. 2017; Liu et al. 2020): one target distribution,

    L = (1 − α) · CE(y, p_S) + α · τ² · (1/B) Σ_b KL( Σ_m w_{b,m} p_{b,m}^τ || p_{b,S}^τ )

``vote`` (Fukuda et al. 2017, "Efficient Knowledge Distillation from an Ensemble of Teachers", Interspeech:
the student learns from each teacher in turn, here all at once), the weighted sum of per-teacher losses,

    L = (1 − α) · CE(y, p_S) + α · τ² · (1/B) Σ_b Σ_m w_{b,m} KL( p_{b,m}^τ || p_{b,S}^τ )

with p^τ = softmax(z / τ). A weighting that learns its weights by this loss (AMTML-KD's) learns them through its
cross-entropy part −Σ_k target_k log p_{S,k}: the targets' own entropy, which does not depend on the student, is
held constant for the weights (its value still counts), so the weights cannot lower the loss by moving onto the
least certain teacher (a teacher's flat output on classes it never saw has the highest entropy). The student's
gradient is that of the KL above. Shapes: student logits ``(B, K)``, teacher logits ``(B, M, K)``, weights ``(B, M)``.
The τ² factor keeps the soft gradients on the scale of the hard ones. Defaults τ = 4 and α = 0.9 are those of
:mod:`mentor.knowledge.kd` (RepDistiller's and mdistiller's KD), so one teacher with uniform weights is KD.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from mentor.batch import Outputs
from mentor.errors import MentorError
from mentor.knowledge.base import register
from mentor.losses import CE, Objective
from mentor.losses.terms import Context, Term, check_temperature
from mentor.teachers.weighting import Weighting, create, member_logits, member_path
from mentor.teachers.weighting.base import check_teachers


def averaged_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, weights: torch.Tensor,
                temperature: float) -> torch.Tensor:
    """τ² · mean_b KL(Σ_m w_{b,m} softmax(z_{b,m}/τ) || softmax(z_{b,S}/τ)).

    Args:
        student_logits: ``(B, K)``. teacher_logits: ``(B, M, K)``. weights: ``(B, M)``. temperature: τ > 0.
    """
    teachers = torch.softmax(teacher_logits / temperature, dim=2)
    target = (weights.unsqueeze(2) * teachers).sum(dim=1)
    held = (weights.detach().unsqueeze(2) * teachers).sum(dim=1)  # the entropy part, constant for the weights
    log_student = F.log_softmax(student_logits / temperature, dim=1)
    per_sample = (torch.special.xlogy(held, held) - target * log_student).sum(dim=1)
    return per_sample.mean() * temperature**2


def voted_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, weights: torch.Tensor,
             temperature: float) -> torch.Tensor:
    """τ² · mean_b Σ_m w_{b,m} KL(softmax(z_{b,m}/τ) || softmax(z_{b,S}/τ)) (shapes as :func:`averaged_kl`)."""
    log_teachers = F.log_softmax(teacher_logits / temperature, dim=2)
    log_student = F.log_softmax(student_logits / temperature, dim=1).unsqueeze(1)
    negative_entropy = (log_teachers.exp() * log_teachers).sum(dim=2)
    cross_entropy = -(log_teachers.exp() * log_student).sum(dim=2)
    per_sample = (weights.detach() * negative_entropy + weights * cross_entropy).sum(dim=1)
    return per_sample.mean() * temperature**2


Combine = Literal["average", "vote"]


class MultiTeacherKL(Term):
    """The soft-target term against several teachers, weighted by a :class:`Weighting`."""

    def __init__(self, weighting: Weighting, temperature: float, combine: Combine, weight: float) -> None:
        super().__init__("kl", weight)
        self.weighting, self.combine, self.teachers = weighting, combine, weighting.teachers
        self.temperature = check_temperature(temperature, "multi-teacher")
        self.student_taps = weighting.student_taps
        self.teacher_taps = tuple(member_path(m) for m in range(self.teachers)) + weighting.teacher_taps

    def bind(self, student: Outputs, teacher: Outputs | None) -> None:
        if teacher is None:
            raise MentorError("loss term 'kl' of multi-teacher needs the teachers, but this scheme has none")
        member_logits(teacher, self.teachers, student.logits.shape[1])  # one-line error on a class mismatch
        self.weighting.bind(student, teacher)

    def loss(self, context: Context) -> torch.Tensor:
        student = context.student.logits
        teachers = member_logits(context.require_teacher(self.name), self.teachers, student.shape[1])
        weights = self.weighting(context, teachers, self.temperature)
        kl = averaged_kl if self.combine == "average" else voted_kl
        return kl(student, teachers, weights, self.temperature)


def objective(weighting: Weighting, temperature: float, alpha: float, combine: Combine) -> Objective:
    """CE + the multi-teacher KL term + the weighting's own terms (hints, policy)."""
    return Objective(CE(weight=1.0 - alpha), MultiTeacherKL(weighting, temperature, combine, alpha),
                     *weighting.terms())


def resolve(weighting: str | Weighting, teachers: int, params: dict[str, Any] | None) -> Weighting:
    """A weighting given by name (with ``params``) or built already (then it must be for ``teachers``)."""
    if isinstance(weighting, Weighting):
        if params:
            raise MentorError("The 'weighting_params' parameter of multi-teacher applies to a weighting given "
                              "by name; got a built Weighting too: pass its parameters when building it")
        if weighting.teachers != teachers:
            raise MentorError(f"The 'weighting' parameter of multi-teacher is for {weighting.teachers} teachers "
                              f"but 'teachers' is {teachers}; build it for {teachers}")
        return weighting
    return create(weighting, teachers, **(params or {}))


@register("multi-teacher", "several teachers combined by a weighting (survey §4.2): averaged target or vote")
def multi_teacher(
    teachers: int,
    weighting: str | Weighting = "uniform",
    weighting_params: dict[str, Any] | None = None,
    temperature: Annotated[float, Field(gt=0)] = 4.0,
    alpha: Annotated[float, Field(ge=0, le=1)] = 0.9,
    combine: Combine = "average",
) -> Objective:
    """``teachers``: members of the Ensemble teacher; ``weighting``: a name (``mentor list weightings``) or one
    built with :func:`mentor.teachers.weighting.create`; ``combine``: ``average`` or ``vote``."""
    count = check_teachers(teachers, "multi-teacher")
    return objective(resolve(weighting, count, weighting_params), temperature, alpha, combine)
