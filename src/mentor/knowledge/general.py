"""The survey's generalized distillation objective, declared as data.

Hu, Li, Liu, Chen, Wang & Liu, "Teacher-Student Architecture for Knowledge Learning: A Survey",
§3.2, eq. (1)-(2):

    L = w_CE · L_CE(y, P_S) + w_KL · τ² · KL(P_T^τ || P_S^τ)
        + Σ_i w_i · ‖d_l,i − d_r,i‖_{N_i}^{P_i} + Σ_j w_j · (1 − cos(d_l,j, d_r,j))

``d_l`` is a student tensor (logits ``(B, K)`` or a tapped feature ``(B, ...)``) passed through an
optional trainable adapter onto the shape of ``d_r``, the matching teacher tensor. The objective is
built only from the library's :class:`~mentor.losses.CE`, :class:`~mentor.losses.KL`,
:class:`~mentor.losses.Distance` and :class:`~mentor.losses.Cosine` terms.

Known methods are instances of it:

- ``kd`` (Hinton et al. 2015) with τ, α::

      general(ce=1 - α, kl={"temperature": τ, "weight": α})

- logit matching by mean squared error (Ba & Caruana 2014)::

      general(ce=0, distances=[{"student": None, "teacher": None, "norm": 2, "power": 2,
                                "reduction": "mean", "weight": 1}])

- FitNets' hint loss β · mean (u_h − r(v_g))² (Romero et al. 2015, stage 1 of ``fitnet``, β = 100;
  ``"weight": 0.5, "reduction": "batchmean"`` is the paper's ½‖u_h − r(v_g)‖²)::

      general(ce=0, distances=[{"student": "stage2", "teacher": "stage2", "norm": 2, "power": 2,
                                "adapter": "conv1x1", "weight": 100, "reduction": "mean",
                                "name": "hint"}])
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from mentor.errors import MentorError
from mentor.knowledge.base import register
from mentor.losses import CE, KL, Cosine, Distance, Objective, Term

Weight = Annotated[float, Field(ge=0)]
AdapterChoice = Literal["identity", "linear", "conv1x1", "conv3x3"] | None


SpecT = TypeVar("SpecT", bound=BaseModel)


class KLSpec(BaseModel):
    """The soft-target term τ² · KL(P_T^τ || P_S^τ) on logits."""

    model_config = ConfigDict(extra="forbid")
    temperature: Annotated[float, Field(gt=0)] = 4.0
    weight: Weight = 1.0


class CosineSpec(BaseModel):
    """A cosine-distance term 1 − cos(adapter(d_l), d_r); ``None`` paths mean the logits."""

    model_config = ConfigDict(extra="forbid")
    student: str | None = None
    teacher: str | None = None
    adapter: AdapterChoice = None
    weight: Weight = 1.0
    name: str | None = None


class DistanceSpec(CosineSpec):
    """A distance term ‖adapter(d_l) − d_r‖_N^P (survey eq. 2) with N >= 1, P > 0."""

    norm: Annotated[float, Field(ge=1)] = 2.0
    power: Annotated[float, Field(gt=0)] = 2.0
    reduction: Literal["batchmean", "mean", "sum"] = "mean"


def _spec(model: type[SpecT], value: SpecT | dict[str, Any], where: str) -> SpecT:
    """Accept a spec or a plain dict (direct calls without :func:`mentor.knowledge.create`)."""
    if isinstance(value, model):
        return value
    try:
        return model.model_validate(value)
    except pydantic.ValidationError as error:
        first = error.errors()[0]
        key = ".".join([where, *(str(part) for part in first["loc"])])
        raise MentorError(
            f"The {key!r} parameter of general is invalid: {first['msg']}. Got {first.get('input')!r} instead."
        ) from None


def _distance(spec: DistanceSpec, index: int) -> Distance:
    return Distance(spec.student, spec.teacher, spec.norm, spec.power, spec.adapter, weight=spec.weight,
                    reduction=spec.reduction, name=spec.name or f"distance{index}")


def _cosine(spec: CosineSpec, index: int) -> Cosine:
    return Cosine(spec.student, spec.teacher, spec.adapter, weight=spec.weight, name=spec.name or f"cosine{index}")


@register("general", "The survey's generalized objective (§3.2, eq. 1-2): CE + KL(τ) + Σ distance/cosine terms")
def general(
    ce: Weight = 1.0,
    kl: KLSpec | None = None,
    distances: list[DistanceSpec] | None = None,
    cosines: list[CosineSpec] | None = None,
) -> Objective:
    """Build eq. (1)-(2) term by term from a declaration.

    Args:
        ce: weight of the hard-label cross-entropy (0 keeps the term with weight 0).
        kl: ``{temperature, weight}`` of the soft-target term, or ``None`` for no KL term.
        distances: entries ``{student, teacher, norm, power, adapter, weight, reduction, name}``;
            unnamed entries are called ``distance1``, ``distance2``, ...
        cosines: entries ``{student, teacher, adapter, weight, name}`` (``cosine1``, ...).
    """
    terms: list[Term] = [CE(weight=ce)]
    if kl is not None:
        soft = _spec(KLSpec, kl, "kl")
        terms.append(KL(temperature=soft.temperature, weight=soft.weight))
    for index, entry in enumerate(distances or [], start=1):
        terms.append(_distance(_spec(DistanceSpec, entry, f"distances.{index - 1}"), index))
    for index, entry in enumerate(cosines or [], start=1):
        terms.append(_cosine(_spec(CosineSpec, entry, f"cosines.{index - 1}"), index))
    return Objective(*terms)
