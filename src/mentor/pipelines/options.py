"""Training settings: a recipe's ``train`` section and the Python API's keywords, checked by one schema.

``mentor.distill(..., epochs=20, lr=0.05, optimizer="sgd", momentum=0.9, clip_grad_norm=5.0)`` takes every
key of a recipe's ``train`` section as a keyword (the optimizer's and scheduler's keys flat, or
``optimizer={...}`` / ``scheduler={...}`` as in a recipe), validated by the same schema, so a bad value
is the same one-line error a recipe gives. A ready :class:`~mentor.engine.FitSettings` can be passed
instead (``settings=``).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pydantic

from mentor.data import Jitter
from mentor.engine import FitSettings, OptimizerSettings, SchedulerSettings
from mentor.errors import MentorError, nearest
from mentor.recipes import schema

OPTIMIZER_KEYS = tuple(name for name in schema.Optimizer.model_fields if name != "name")
SCHEDULER_KEYS = tuple(name for name in schema.Scheduler.model_fields if name != "name")
PYTHON_KEYS = ("seed", "progress", "augment")
"""Keywords beyond the recipe's ``train`` keys: the seed, progress bars, and any augmentation callable."""


def fit_settings(train: schema.Train, progress: bool | None = None, seed: int = 0, augment: Any = None) -> FitSettings:
    """The loop's settings from a (validated) ``train`` section."""
    return FitSettings(
        epochs=train.epochs,
        batch_size=train.batch_size,
        optimizer=OptimizerSettings(**train.optimizer.model_dump()),
        scheduler=SchedulerSettings(**train.scheduler.model_dump()),
        clip_grad_norm=train.clip_grad_norm,
        seed=seed,
        progress=progress,
        augment=augment if augment is not None else Jitter(train.jitter) if train.jitter else None,
        device=train.device,
        precision=train.precision,
        teacher_precision=train.teacher_precision,
        channels_last=train.channels_last,
        compile=train.compile,
        teacher_cache=train.teacher_cache,
        num_workers=train.num_workers,
        pin_memory=train.pin_memory,
    )


def valid_keywords() -> list[str]:
    """Every training keyword of the Python API."""
    return sorted({*schema.Train.model_fields, *OPTIMIZER_KEYS, *SCHEDULER_KEYS, *PYTHON_KEYS})


def _section(options: dict[str, Any], name: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """``optimizer="sgd", lr=0.1`` or ``optimizer={"name": "sgd", "lr": 0.1}`` as one section mapping."""
    given = options.pop(name, None)
    section = dict(given) if isinstance(given, dict) else ({} if given is None else {"name": given})
    section.update({key: options.pop(key) for key in keys if key in options})
    return section


def _explain(error: pydantic.ValidationError, caller: str) -> MentorError:
    first = error.errors()[0]
    location = [str(part) for part in first["loc"]]
    key = location[-1] if location[-1] != "name" or len(location) == 1 else location[0]
    return MentorError(f"The {key!r} setting of {caller} is invalid: {first['msg']}. Got {first.get('input')!r} "
                       "instead.")


def settings(settings: FitSettings | None = None, *, caller: str = "mentor.train", **options: Any) -> FitSettings:
    """:class:`FitSettings` from a recipe's ``train`` keys given as keywords, or ``settings`` as they are.

    Args:
        settings: ready settings (then no other keyword may be given).
        caller: the function named in error messages.
        **options: ``epochs``, ``batch_size``, ``optimizer`` (a name or a mapping), ``lr``, ``momentum``,
            ``weight_decay``, ``nesterov``, ``scheduler`` (a name or a mapping), ``step_size``,
            ``milestones``, ``gamma``, ``clip_grad_norm``, ``jitter``, ``device``, ``precision``, ``teacher_precision``,
            ``channels_last``, ``compile``, ``teacher_cache`` (as in a recipe), and ``seed``,
            ``progress`` (``None``: bars when standard error is a terminal) and ``augment`` (a callable
            ``(inputs, generator) -> inputs`` applied to training batches).

    Raises:
        MentorError: for an unknown keyword (with the nearest valid ones), a value the recipe schema
            refuses, or ``settings`` given together with keywords.
    """
    if settings is not None:
        if options:
            raise MentorError(f"{caller} takes either settings=FitSettings(...) or training keywords, not both; "
                              f"got settings and {', '.join(sorted(options))}")
        if not isinstance(settings, FitSettings):
            raise MentorError(f"The 'settings' parameter of {caller} must be a mentor.engine.FitSettings. Got "
                              f"{type(settings).__name__} instead.")
        return settings
    options = dict(options)
    valid = valid_keywords()
    for key in options:
        if key not in valid:
            close = nearest(key, valid)
            hint = f"; nearest: {', '.join(close)}" if close else ""
            raise MentorError(f"unknown training keyword {key!r} of {caller}{hint} (valid: {', '.join(valid)})")
    seed, progress, augment = options.pop("seed", 0), options.pop("progress", None), options.pop("augment", None)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise MentorError(f"The 'seed' setting of {caller} must be an integer. Got {seed!r} instead.")
    if augment is not None and not callable(augment):
        raise MentorError(f"The 'augment' setting of {caller} must be a callable (inputs, generator) -> inputs. "
                          f"Got {type(augment).__name__} instead.")
    options["optimizer"] = _section(options, "optimizer", OPTIMIZER_KEYS)
    options["scheduler"] = _section(options, "scheduler", SCHEDULER_KEYS)
    try:
        train = schema.Train.model_validate(options)
    except pydantic.ValidationError as error:
        raise _explain(error, caller) from None
    return fit_settings(train, progress, seed, augment)


def train_section(fit: FitSettings) -> dict[str, Any] | None:
    """``fit`` as a recipe's ``train`` mapping; ``None`` when its augmentation is not a recipe's ``jitter``."""
    if fit.augment is not None and not isinstance(fit.augment, Jitter):
        return None
    return {"epochs": fit.epochs, "batch_size": fit.batch_size, "optimizer": asdict(fit.optimizer),
            "scheduler": asdict(fit.scheduler), "clip_grad_norm": fit.clip_grad_norm,
            "jitter": fit.augment.pixels if isinstance(fit.augment, Jitter) else 0, "device": fit.device,
            "precision": fit.precision, "teacher_precision": fit.teacher_precision,
            "channels_last": fit.channels_last, "compile": fit.compile,
            "teacher_cache": fit.teacher_cache, "num_workers": fit.num_workers, "pin_memory": fit.pin_memory}
