"""Building a distillation from several teachers out of a recipe's ``teachers:`` and ``weighting:`` sections.

Each item of ``teachers:`` is a teacher section (``model``, ``options``, ``checkpoint`` or ``train``) with an
optional ``subset`` of the training split. Every knowledge method that takes the number of teachers
(``multi-teacher``, ``relative-similarity``) receives it, and the ``weighting`` section goes to the methods that
take a weighting; a single-teacher method (``kd``, ...) learns from the ensemble's averaged prediction.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch import nn

from mentor import data as datasets
from mentor import knowledge
from mentor.errors import MentorError
from mentor.knowledge import Plan
from mentor.pipelines import multi
from mentor.pipelines.distill import Job
from mentor.pipelines.options import fit_settings
from mentor.recipes import schema


def build_members(recipe: schema.Recipe, model: Callable[[schema.Model], nn.Module],
                  progress: bool) -> list[multi.Member]:
    """The recipe's teachers, each with its checkpoint or training settings and subset."""
    members = []
    for item in recipe.teachers or []:
        subset = None
        if item.subset is not None:
            classes = tuple(item.subset.classes) if item.subset.classes is not None else None
            subset = multi.Subset(item.subset.start, item.subset.stop, classes)
        members.append(multi.Member(model=lambda item=item: model(item),
                                    checkpoint=Path(item.checkpoint) if item.checkpoint else None,
                                    settings=fit_settings(item.train or recipe.train, progress), subset=subset))
    return members


def _with_teachers(item: schema.Knowledge, teachers: int, weighting: schema.Weighting | None) -> schema.Knowledge:
    """``item`` with the number of teachers and the weighting added where its method takes them."""
    accepted = knowledge.parameters(item.method)
    params = dict(item.params)
    if "teachers" in accepted:
        given = params.setdefault("teachers", teachers)
        if given != teachers:
            raise MentorError(f"recipe key 'knowledge.params.teachers' is {given!r} but teachers: lists {teachers}; "
                              "remove it (it is set from teachers:)")
    if weighting is not None and "weighting" in accepted:
        if "weighting" in params or "weighting_params" in params:
            raise MentorError("recipe key 'knowledge.params.weighting': give the weighting in the recipe's "
                              "weighting: section only")
        params.update(weighting=weighting.name, weighting_params=dict(weighting.params))
    return item.model_copy(update={"params": params})


def multi_plan(recipe: schema.Recipe) -> Plan:
    """The recipe's knowledge, each method given the number of teachers and the weighting it takes."""
    from mentor.recipes.build import build_plan

    teachers, items = len(recipe.teachers or []), list(recipe.knowledge or [])
    if recipe.weighting is not None and not any("weighting" in knowledge.parameters(i.method) for i in items):
        raise MentorError(f"recipe key 'weighting' ({recipe.weighting.name}) needs a knowledge method that weighs "
                          "teachers; use method: multi-teacher")
    return build_plan([_with_teachers(item, teachers, recipe.weighting) for item in items])


def build_multi_job(recipe: schema.Recipe, load_data: Callable[[int], datasets.Splits],
                    model: Callable[[schema.Model], nn.Module], progress: bool) -> Job:
    """A distillation :class:`Job` whose teacher is the ensemble of the recipe's ``teachers``."""
    if recipe.student is None or recipe.knowledge is None:
        raise MentorError("a distillation recipe needs teachers, student and knowledge")
    members, student = build_members(recipe, model, progress), recipe.student
    multi_plan(recipe)  # an unknown weighting or bad weighting params fail now
    return Job(name=recipe.name, seeds=list(recipe.seeds), load_data=load_data,
               teacher=lambda: multi.ensemble(members), teacher_checkpoint=None, teacher_settings=None,
               student=lambda: model(student), plan=lambda: multi_plan(recipe),
               settings=fit_settings(recipe.train, progress), student_alone=recipe.compare.student_alone,
               latency_batch=recipe.latency_batch, members=members)
