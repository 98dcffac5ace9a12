"""Building a PATE run from a recipe's ``pate`` section (with its ``teacher``, ``student`` and ``train``)."""

from __future__ import annotations

from mentor.pipelines.options import fit_settings
from mentor.pipelines.pate import PateJob
from mentor.recipes import schema
from mentor.recipes.build import _data_and_models, pipeline_parts
from mentor.teachers.pate import Aggregator, ConfidentGNMax, GNMax, LNMax


def aggregator_of(spec: schema.Pate) -> Aggregator:
    """The aggregator a ``pate`` section names, with its noise."""
    if spec.aggregator == "lnmax":
        return LNMax(gamma=spec.gamma)
    if spec.aggregator == "gnmax":
        return GNMax(sigma=spec.sigma)
    return ConfidentGNMax(threshold=spec.threshold, sigma1=spec.sigma1, sigma2=spec.sigma)


def build_pate_job(recipe: schema.Recipe, progress: bool = True, trust_code: bool = False) -> PateJob:
    """A :class:`PateJob`: ``teacher`` is each teacher's model (``teacher.train``: how they train, default the
    recipe's ``train``), ``student`` learns the answers with ``train``."""
    load_data, model = _data_and_models(recipe, trust_code)
    teacher, student, spec = pipeline_parts(recipe, "pate", "PATE trains its teachers on the private partitions")
    return PateJob(
        name=recipe.name,
        seeds=list(recipe.seeds),
        load_data=load_data,
        teacher=lambda: model(teacher),
        student=lambda: model(student),
        teachers=spec.teachers,
        aggregator=aggregator_of(spec),
        queries=spec.queries,
        delta=spec.delta,
        teacher_settings=fit_settings(teacher.train or recipe.train, progress),
        settings=fit_settings(recipe.train, progress),
        epsilon_budget=spec.epsilon_budget,
        budget_analysis=spec.budget_analysis,
        public_fraction=spec.public_fraction,
        self_training=spec.self_training,
        latency_batch=recipe.latency_batch,
        mean_teacher=spec.mean_teacher,
    )
