"""Building objects from a recipe: data, models, knowledge and training settings -> a checked Job."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from mentor import data as datasets
from mentor import knowledge
from mentor.errors import MentorError
from mentor.knowledge import Plan
from mentor.losses import Schedule
from mentor.models import create
from mentor.models.trust import check_consent
from mentor.pipelines.collaborate import PeersJob
from mentor.pipelines.distill import Job
from mentor.pipelines.options import fit_settings
from mentor.recipes import schema
from mentor.schemes import SCHEMES
from mentor.teachers.assistant import Assistant
from mentor.teachers.student_friendly import StudentFriendlyTeacher


def weighted(item: schema.Knowledge) -> Plan:
    """The method of ``item`` with its distillation terms (all but the hard-label CE) scaled and scheduled."""
    plan = knowledge.create(item.method, **item.params)
    schedule = Schedule(**item.schedule.model_dump()) if item.schedule else None
    for stage in knowledge.as_stages(plan):
        for term in stage.objective:
            if term.name != "ce":
                term.weight *= item.weight
                term.schedule = schedule or term.schedule
    return plan


def build_plan(items: list[schema.Knowledge]) -> Plan:
    """One method, or several single-stage methods combined into one objective (e.g. kd + at)."""
    return knowledge.combine([weighted(item) for item in items])


DataLoader = Callable[[int], datasets.Splits]
ModelBuilder = Callable[[schema.Model], nn.Module]


def check_consent_to_models(recipe: schema.Recipe, trust_code: bool) -> None:
    """Refuse, naming the recipe key, a model that would import code without the user's consent
    (:mod:`mentor.models.trust`); checked before anything is loaded."""
    sections = [(role, section) for role, section in (("teacher", recipe.teacher), ("student", recipe.student))
                if section is not None]
    sections += [(f"peers.{index}", peer) for index, peer in enumerate(recipe.peers or [])]
    sections += [(f"teachers.{index}", teacher) for index, teacher in enumerate(recipe.teachers or [])]
    sections += [(f"assistants.{index}", assistant) for index, assistant in enumerate(recipe.assistants or [])]
    for key, section in sections:
        check_consent(section.model, trust_code, f"recipe key '{key}.model': model")


def _data_and_models(recipe: schema.Recipe, trust_code: bool) -> tuple[DataLoader, ModelBuilder]:
    """A per-seed data loader (the first seed's splits loaded now, so a missing dataset fails early) and a
    model builder for the dataset's classes and input shape (``trust_code``: see :func:`mentor.models.create`)."""
    check_consent_to_models(recipe, trust_code)
    first = _load(recipe, recipe.seeds[0])
    num_classes, input_shape = first.num_classes, first.input_shape
    _check_jitter(recipe, input_shape)

    def load_data(seed: int) -> datasets.Splits:
        if seed == recipe.seeds[0]:
            return first
        return _load(recipe, seed)

    def model(section: schema.Model) -> nn.Module:
        return create(section.model, **{"num_classes": num_classes, "input_shape": input_shape, **section.options},
                      trust_code=trust_code, output=section.output)

    return load_data, model


def pipeline_parts(recipe: schema.Recipe, section: str, trains: str) -> tuple[schema.Teacher, schema.Model, Any]:
    """The ``teacher``, ``student`` and ``section`` of a pipeline recipe (``pate``, ``adapt``, ...); a teacher given
    trained or student-friendly is refused, since the pipeline trains its own teachers (``trains`` says how)."""
    teacher, student, spec = recipe.teacher, recipe.student, getattr(recipe, section)
    if teacher is None or student is None or spec is None:
        raise MentorError(f"a {section} recipe needs {section}, teacher and student")
    given = [f"teacher.{key}" for key in ("checkpoint", "student_friendly") if getattr(teacher, key) is not None]
    if given:
        raise MentorError(f"recipe key '{given[0]}': {trains}; remove {' and '.join(given)}")
    return teacher, student, spec


def _load(recipe: schema.Recipe, seed: int) -> datasets.Splits:
    """The splits of the recipe's data section for ``seed`` (texts are tokenized: :mod:`mentor.data.text`)."""
    spec = recipe.data
    if spec.table is not None:
        if spec.offset:
            raise MentorError(f"recipe key 'data.offset' is not available for a data.table; got {spec.offset}; "
                              "remove it, or save the rows to keep as their own table")
        return _load_table(recipe, seed)
    if spec.text is not None:
        from mentor.data.text import load_text  # the tokenizer needs transformers: imported only for texts

        tokenizer = spec.text.tokenizer
        teacher = recipe.teacher.model if recipe.teacher is not None else ""
        if tokenizer is None and not teacher.startswith("hf:"):
            raise MentorError("recipe key 'data.text.tokenizer' is needed when the teacher is not hf:<folder>; "
                              f"got teacher {teacher or 'none'}; give the folder of a Hugging Face tokenizer")
        return load_text(spec.root if spec.root is not None or spec.name == "bbc-news" else spec.name,
                         tokenizer or teacher.removeprefix("hf:"), max_length=spec.text.max_length,
                         validation=spec.validation, seed=seed, limit=spec.limit, offset=spec.offset)
    return datasets.load(spec.name, validation=spec.validation, seed=seed, root=spec.root, limit=spec.limit,
                         normalize=spec.normalize, offset=spec.offset)


def _load_table(recipe: schema.Recipe, seed: int) -> datasets.Splits:
    """The splits of a Hugging Face table at ``data.root`` (``datasets`` is imported only for tables)."""
    from mentor.data.tables import load_table

    spec, table = recipe.data, recipe.data.table
    if spec.root is None or table is None:
        raise MentorError("recipe key 'data.root' must name the table (a save_to_disk folder or a data file) when "
                          "data.table is given")
    return load_table(spec.root, inputs=table.inputs, label=table.label,
                      tokenizer=spec.text.tokenizer if spec.text is not None else None,
                      max_length=spec.text.max_length if spec.text is not None else 128, validation=spec.validation,
                      seed=seed, limit=spec.limit, normalize=spec.normalize, stream=table.stream)


def _check_jitter(recipe: schema.Recipe, input_shape: tuple[int, ...]) -> None:
    """Jitter shifts images by fewer pixels than their side: checked now, not after the teacher has trained."""
    trains = [("train", recipe.train), ("teacher.train", recipe.teacher and recipe.teacher.train)]
    trains += [(f"teachers.{index}.train", item.train) for index, item in enumerate(recipe.teachers or [])]
    trains += [(f"assistants.{index}.train", assistant.train)
               for index, assistant in enumerate(recipe.assistants or [])]
    for key, train in trains:
        if train is None or not train.jitter:
            continue
        if len(input_shape) != 3:
            raise MentorError(f"recipe key '{key}.jitter': jitter shifts images, but {recipe.data.name} has inputs "
                              f"of shape {tuple(input_shape)}; set {key}.jitter: 0")
        if train.jitter >= min(input_shape[1:]):
            raise MentorError(f"recipe key '{key}.jitter': {train.jitter} pixels is not below the image side "
                              f"({min(input_shape[1:])}); choose a shift of a few pixels")


def build_job(recipe: schema.Recipe, progress: bool = True, trust_code: bool = False) -> Job:
    """A distillation :class:`Job` whose factories build fresh models and data for each seed."""
    load_data, model = _data_and_models(recipe, trust_code)
    teacher, student, items = recipe.teacher, recipe.student, recipe.knowledge
    if recipe.teachers is not None and student is not None and items is not None:
        from mentor.recipes.teachers import build_multi_job

        return build_multi_job(recipe, load_data, model, progress)
    if teacher is None or student is None or items is None:
        raise MentorError("a distillation recipe needs teacher, student and knowledge")
    return Job(
        name=recipe.name,
        seeds=list(recipe.seeds),
        load_data=load_data,
        teacher=lambda: model(teacher),
        teacher_checkpoint=Path(teacher.checkpoint) if teacher.checkpoint else None,
        teacher_settings=fit_settings(teacher.train or recipe.train, progress),
        student=lambda: model(student),
        plan=lambda: build_plan(items),
        settings=fit_settings(recipe.train, progress),
        student_alone=recipe.compare.student_alone,
        latency_batch=recipe.latency_batch,
        student_friendly=StudentFriendlyTeacher(lambda: model(student), teacher.student_friendly.model_dump(),
                                                "teacher.student_friendly.") if teacher.student_friendly else None,
        assistants=[Assistant(lambda section=section: model(section),
                              fit_settings(section.train, progress) if section.train else None)
                    for section in recipe.assistants or []],
    )


def build_peers_job(recipe: schema.Recipe, progress: bool = True, trust_code: bool = False) -> PeersJob:
    """A scheme :class:`PeersJob`: the recipe's peers trained together by its scheme."""
    load_data, model = _data_and_models(recipe, trust_code)
    spec, peers = recipe.scheme, recipe.peers
    if spec is None or peers is None:
        raise MentorError("a scheme recipe needs scheme and peers")
    SCHEMES.get(spec.name)  # unknown names fail now
    return PeersJob(
        name=recipe.name,
        scheme=spec.name,
        seeds=list(recipe.seeds),
        load_data=load_data,
        peers=[(lambda section=section: model(section)) for section in peers],
        build=lambda models: SCHEMES.create(spec.name, models, **spec.params),
        settings=fit_settings(recipe.train, progress),
        independent=recipe.compare.independent,
        latency_batch=recipe.latency_batch,
    )
