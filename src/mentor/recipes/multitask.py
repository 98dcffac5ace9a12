"""Building a multi-task run from a recipe's ``multitask`` section (with its ``teacher``, ``student``, ``train``;
``data.validation``, ``data.limit``, ``data.offset`` and ``data.root`` apply to every task's dataset)."""

from __future__ import annotations

import functools

from mentor.data import load
from mentor.models import create
from mentor.pipelines.multitask import MultiTaskJob
from mentor.pipelines.multitask_data import Task, TaskData, task_data
from mentor.pipelines.multitask_steps import CrossTask
from mentor.pipelines.options import fit_settings
from mentor.recipes import schema
from mentor.recipes.build import check_consent_to_models, pipeline_parts


def build_multitask_job(recipe: schema.Recipe, progress: bool = True, trust_code: bool = False) -> MultiTaskJob:
    """A :class:`MultiTaskJob`: ``teacher`` is every specialist's model (``teacher.train``: how they train, default
    the recipe's ``train``), ``student`` the multi-head student (its heads are made from the tasks)."""
    teacher, student, spec = pipeline_parts(recipe, "multitask", "a multitask run trains one specialist teacher per "
                                                                 "task on its own dataset")
    check_consent_to_models(recipe, trust_code)
    tasks = [Task(item.name, item.dataset, item.target, item.weight) for item in spec.tasks]
    data = recipe.data

    @functools.lru_cache(maxsize=1)
    def load_data(seed: int) -> TaskData:
        return task_data(tasks, seed, data.validation, data.limit, spec.pool_fraction,
                         loader=functools.partial(load, root=data.root, offset=data.offset))

    cross = spec.cross_task
    return MultiTaskJob(
        name=recipe.name,
        seeds=list(recipe.seeds),
        tasks=tasks,
        load_data=load_data,
        teacher=lambda outputs, shape: create(teacher.model, **{"num_classes": outputs, "input_shape": shape,
                                              **teacher.options}, trust_code=trust_code, output=teacher.output),
        student=lambda heads, shape: create(student.model, **{"num_classes": 1, "input_shape": shape, "heads": heads,
                                            **student.options}, trust_code=trust_code, output=student.output),
        teacher_settings=fit_settings(teacher.train or recipe.train, progress),
        settings=fit_settings(recipe.train, progress),
        cross_task=CrossTask(cross.ranking_weight, cross.calibrate, cross.confidence) if cross is not None else None,
        ground_truth=spec.ground_truth,
        latency_batch=recipe.latency_batch,
    )
