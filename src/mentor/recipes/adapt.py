"""Building an adaptation run from a recipe's ``adapt`` section (with its ``data``, ``teacher``, ``student``,
``train``): ``data`` is the source domain, ``adapt.target`` the target."""

from __future__ import annotations

from mentor import data as datasets
from mentor.pipelines.adapt import AdaptJob
from mentor.pipelines.adapt_data import align
from mentor.pipelines.options import fit_settings
from mentor.recipes import schema
from mentor.recipes.build import _data_and_models, pipeline_parts


def build_adapt_job(recipe: schema.Recipe, progress: bool = True, trust_code: bool = False) -> AdaptJob:
    """An :class:`AdaptJob`: the teachers train with ``teacher.train`` (default ``train``), the students and the
    oracle with ``train``."""
    load_source, model = _data_and_models(recipe, trust_code)
    teacher, student, spec = pipeline_parts(recipe, "adapt", "an adapt run trains its teacher on the source with "
                                                             "cross-entropy")
    target = spec.target

    def load_domains(seed: int) -> tuple[datasets.Splits, datasets.Splits]:
        source = load_source(seed)
        loaded = datasets.load(target.name, validation=target.validation, seed=seed, root=target.root,
                               limit=target.limit, normalize=recipe.data.normalize)
        return source, align(source, loaded, spec.normalize)

    return AdaptJob(
        name=recipe.name,
        seeds=list(recipe.seeds),
        load_domains=load_domains,
        teacher=lambda: model(teacher),
        student=lambda: model(student),
        teacher_settings=fit_settings(teacher.train or recipe.train, progress),
        settings=fit_settings(recipe.train, progress),
        spec=spec,
        latency_batch=recipe.latency_batch,
    )
