"""Online and self-learning runs (survey §5): peers trained together by a scheme, compared with the
same models trained independently (each alone, and their plain ensemble).

The scheme is trained by the one loop; a phased scheme (born-again generations, self-training
rounds) is trained phase by phase, each phase one call of the loop. The comparison is fair: a peer
trained alone sees the loop's augmentation and, on top of it, the one the scheme applies to its
peers' inputs (:meth:`~mentor.schemes.Scheme.augmentation`), as the scheme's peers do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mentor.batch import Batch
from mentor.data import Splits
from mentor.data.batches import Transform
from mentor.engine import FitSettings, MetricsLog, fit, seed_everything
from mentor.errors import MentorError
from mentor.pipelines.distill import Result, fit_plan, measure, settings
from mentor.schemes import SCHEMES, Phased, Scheme
from mentor.teachers import Ensemble


@dataclass
class PeersJob:
    """Everything a scheme run needs, built and checked before anything is written."""

    name: str
    scheme: str
    seeds: list[int]
    load_data: Callable[[int], Splits]
    peers: list[Callable[[], nn.Module]]
    build: Callable[[list[nn.Module]], Scheme | Phased]
    settings: FitSettings
    independent: bool = True
    latency_batch: int = 256


def train_scheme(built: Scheme | Phased, data: Splits, settings: FitSettings, log: MetricsLog,
                 checkpoints: Path | None) -> dict[str, nn.Module]:
    """Train a scheme (or each phase of a phased one) with the loop; its predictors, trained."""
    if isinstance(built, Scheme):
        fit(built, data.train, data.validation, settings, log=log, checkpoints=checkpoints)
        return built.predictors()
    for phase in built.phases():
        epochs = phase.epochs if phase.epochs is not None else settings.epochs
        folder = checkpoints / phase.name if checkpoints is not None else None
        fit(phase.scheme, data.train, data.validation, replace(settings, epochs=epochs), log=log,
            checkpoints=folder, stage=phase.name)
    return built.predictors()


@dataclass(frozen=True)
class Chained:
    """Two batch augmentations applied one after the other, from the same generator."""

    first: Transform
    second: Transform

    def __call__(self, inputs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.second(self.first(inputs, generator), generator)


def alone_settings(built: Scheme | Phased, settings: FitSettings) -> FitSettings:
    """The settings that train a peer alone with the augmentation the scheme's peers see."""
    extra = built.augmentation() if isinstance(built, Scheme) else None
    if extra is None:
        return settings
    return replace(settings, augment=extra if settings.augment is None else Chained(settings.augment, extra))


def collaborate(
    scheme: str | Scheme | Phased,
    models: list[nn.Module],
    data: Splits,
    params: dict[str, Any] | None = None,
    **options: Any,
) -> dict[str, nn.Module]:
    """Train ``models`` together with an online or self-learning scheme; its trained predictors by name.

    Args:
        scheme: a registered name (``mentor list schemes``) or a scheme object.
        models: the peers, in the order the scheme expects.
        data: train/validation/test splits (:func:`mentor.data.load`).
        params: the scheme's parameters (validated like a recipe's ``scheme.params``).
        **options: epochs, batch_size, optimizer, lr, weight_decay, scheduler, seed, progress.
    """
    built = SCHEMES.create(scheme, models, **(params or {})) if isinstance(scheme, str) else scheme
    return train_scheme(built, data, settings(**options), MetricsLog(), None)


def run_peers(job: PeersJob, out: Path | None, log: MetricsLog | None = None,
              echo: Callable[[str], None] = print, resume: bool = False) -> Result:
    """For each seed: the scheme's predictors, then (optionally) every peer trained alone and their ensemble."""
    log = log or MetricsLog()
    result = Result()
    for seed in job.seeds:
        data = job.load_data(seed)
        def folder(run: str, seed: int = seed) -> Path | None:
            return out / "checkpoints" / f"seed{seed}" / run if out else None

        settings = replace(job.settings, seed=seed, resume=resume)
        seed_everything(seed)
        built = job.build([factory() for factory in job.peers])
        predictors = train_scheme(built, data, settings, log.bind(run=job.scheme, seed=seed), folder(job.scheme))
        for name, model in predictors.items():
            result.rows.append(measure(f"{job.scheme}: {name}", seed, model, data, job.latency_batch))
            echo(f"seed {seed}: {job.scheme} {name} {result.rows[-1].accuracy:.2%}")
        if not job.independent:
            continue
        alone, fair = [], alone_settings(built, settings)
        seed_everything(seed)
        fresh = [factory() for factory in job.peers]  # the scheme's initial weights: distinct peers stay distinct
        for index, model in enumerate(fresh):
            fit_plan(model, data, fair, log=log.bind(run=f"peer{index}-alone", seed=seed),
                     checkpoints=folder(f"peer{index}-alone"))
            alone.append(model)
            result.rows.append(measure(f"independent: peer{index}", seed, model, data, job.latency_batch))
            echo(f"seed {seed}: peer{index} alone {result.rows[-1].accuracy:.2%}")
        if len(alone) > 1:
            result.rows.append(measure("independent: ensemble", seed, Ensemble(alone), data, job.latency_batch))
    return result


def check_peers(job: PeersJob) -> None:
    """Build the scheme once and set it up on a sample batch, so mistakes surface before anything is written."""
    data = job.load_data(job.seeds[0])
    size = min(job.settings.batch_size, len(data.train))
    sample = Batch(data.train.inputs[:size], data.train.targets[:size], torch.arange(size), len(data.train))
    peers = [factory() for factory in job.peers]
    built = job.build(peers)
    first = built if isinstance(built, Scheme) else next(iter(built.phases())).scheme
    first.setup(sample)
    try:  # one loss on the sample: peers whose outputs do not fit the data or each other fail here
        first.loss(sample, 0.0, job.settings.epochs)
    except MentorError:
        raise
    except Exception as error:  # noqa: BLE001 - reported in one line, before anything is written
        with torch.no_grad():
            shapes = [tuple(peer.eval()(sample.inputs).shape[1:]) for peer in peers]
        raise MentorError(f"the {job.scheme} scheme cannot train these peers on {data.name} ({data.num_classes} "
                          f"classes; the peers output shapes {shapes}): {type(error).__name__}: "
                          f"{str(error).splitlines()[0]}") from None
