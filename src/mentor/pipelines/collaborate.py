"""Online and self-learning runs (survey §5): peers trained together by a scheme, compared with the
same models trained independently (each alone, and their plain ensemble).

The scheme is trained by the one loop; a phased scheme (born-again generations, self-training
rounds) is trained phase by phase, each phase one call of the loop. The comparison is fair: a peer
trained alone sees the loop's augmentation and, on top of it, the one the scheme applies to its
peers' inputs (:meth:`~mentor.schemes.Scheme.augmentation`), as the scheme's peers do.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mentor.data import Splits
from mentor.data.batches import Transform
from mentor.engine import FitSettings, MetricsLog, checkpoint, fit, seed_everything
from mentor.engine.loop import load_trained
from mentor.errors import MentorError, clip
from mentor.pipelines import output
from mentor.pipelines.distill import check_device, check_outputs, fit_plan, sample_batch
from mentor.pipelines.options import settings as keyword_settings
from mentor.pipelines.options import train_section
from mentor.pipelines.result import Result, measure
from mentor.schemes import SCHEMES, Phased, Scheme
from mentor.teachers import Ensemble

ALONE = " alone"
"""A peer trained alone is named after it: ``peer0 alone``, and their plain ensemble ``ensemble alone``."""


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
    alone: list[Callable[[], nn.Module]] | None = None
    """Builds the peers trained alone (default: ``peers``, which give them the scheme's initial weights)."""


def _steps(built: Scheme | Phased, checkpoints: Path | None) -> Iterator[tuple[Scheme, Path | None, str, int | None]]:
    """Each loop call of a scheme: (scheme, its checkpoint folder, stage name, epochs or ``None``)."""
    if isinstance(built, Scheme):
        yield built, checkpoints, "train", None
        return
    for phase in built.phases():
        yield phase.scheme, checkpoints / phase.name if checkpoints is not None else None, phase.name, phase.epochs


def _models(built: Scheme | Phased, phases: dict[str, Scheme]) -> dict[str, nn.Module]:
    """Every model a trained scheme gives: its predictors, then, for a phased scheme, the model of each phase
    that they leave out (born-again's earlier generations, a self-training round), named after the phase."""
    models = built.predictors()
    exposed = [{id(p) for p in model.parameters()} for model in models.values()]
    for name, scheme in phases.items():
        model = next(iter(scheme.predictors().values()))
        if name not in models and {id(p) for p in model.parameters()} not in exposed:
            models[name] = model
    return models


def train_scheme(built: Scheme | Phased, data: Splits, settings: FitSettings, log: MetricsLog,
                 checkpoints: Path | None) -> tuple[dict[str, nn.Module], int]:
    """Train a scheme (or each phase of a phased one) with the loop; its models, trained (:func:`_models`),
    and the best epoch of the last loop call."""
    best, phases = 0, {}
    for scheme, folder, stage, epochs in _steps(built, checkpoints):
        fitted = replace(settings, epochs=epochs if epochs is not None else settings.epochs)
        best = fit(scheme, data.train, data.validation, fitted, log=log, checkpoints=folder, stage=stage).best_epoch
        phases[stage] = scheme
    return _models(built, phases if isinstance(built, Phased) else {}), best


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


def alone_data(built: Scheme | Phased, data: Splits) -> Splits:
    """The splits a peer alone trains on: the scheme's :meth:`~mentor.schemes.Scheme.alone_training_set` of
    the training split (a semi-supervised scheme's labelled samples only), the same validation and test."""
    return replace(data, train=built.alone_training_set(data.train)) if isinstance(built, Scheme) else data


def restore_scheme(built: Scheme | Phased, data: Splits, settings: FitSettings,
                   checkpoints: Path) -> dict[str, nn.Module]:
    """The models of a scheme that :func:`train_scheme` trained into ``checkpoints``, rebuilt without
    training: each loop call's scheme is set up on the batch the loop set it up on, then given the
    weights the loop kept (``best.pt``, else ``last.pt``); a phased scheme's later phases are built on
    the restored earlier ones."""
    phases = {}
    for scheme, folder, stage, _ in _steps(built, checkpoints):
        seed_everything(settings.seed)
        scheme.setup(sample_batch(data.train, settings.batch_size))
        load_trained(scheme, checkpoint.load_kept(folder)["models"])  # type: ignore[arg-type]
        phases[stage] = scheme
    return _models(built, phases if isinstance(built, Phased) else {})


def run_peers(job: PeersJob, out: Path | None, log: MetricsLog | None = None,
              echo: Callable[[str], None] = print, resume: bool = False) -> Result:
    """For each seed: the scheme's predictors, then (optionally) every peer trained alone and their ensemble.

    The models are named as the scheme names them (``peer0``, ``ensemble``, ``exit1``...); the peers
    trained alone as ``peer0 alone``... and their plain ensemble as ``ensemble alone``.
    """
    log = log or MetricsLog()
    result = Result(records=log.records)
    for seed in job.seeds:
        data = job.load_data(seed)
        def folder(run: str, seed: int = seed) -> Path | None:
            return out / "checkpoints" / f"seed{seed}" / run if out else None

        settings = replace(job.settings, seed=seed, resume=resume)
        seed_everything(seed)
        built = job.build([factory() for factory in job.peers])
        predictors, best = train_scheme(built, data, settings, log.bind(run=job.scheme, seed=seed),
                                        folder(job.scheme))
        for name, model in predictors.items():
            measured = result.add(measure(name, seed, model, data, job.latency_batch, best), model)
            echo(f"seed {seed}: {job.scheme} {name} {measured.headline}")
        if not job.independent:
            continue
        alone, fair, alone_splits = [], alone_settings(built, settings), alone_data(built, data)
        seed_everything(seed)
        fresh = [factory() for factory in job.alone or job.peers]  # the scheme's initial weights
        for index, model in enumerate(fresh):
            name = f"peer{index}{ALONE}"
            fits = fit_plan(model, alone_splits, fair, log=log.bind(run=name.replace(" ", "-"), seed=seed),
                            checkpoints=folder(name.replace(" ", "-")))
            alone.append(model)
            measured = result.add(measure(name, seed, model, data, job.latency_batch, fits[-1].best_epoch), model)
            echo(f"seed {seed}: {name} {measured.headline}")
        if len(alone) > 1:
            ensemble = Ensemble(alone)
            result.add(measure(f"ensemble{ALONE}", seed, ensemble, data, job.latency_batch), ensemble)
    return result


def collaborate(
    scheme: str | Scheme | Phased,
    models: list[nn.Module],
    data: Splits,
    params: dict[str, Any] | None = None,
    *,
    baseline: bool = False,
    latency_batch: int = 256,
    out: str | Path | None = None,
    resume: bool = False,
    name: str | None = None,
    settings: FitSettings | None = None,
    **options: Any,
) -> Result:
    """Train ``models`` together (in place) with an online or self-learning scheme, and measure every
    model it gives.

    Everything is checked on a sample batch before anything trains: parameters, module paths, shapes.

    Args:
        scheme: a registered name (``mentor list schemes``) or a scheme object built on ``models``.
        models: the peers, in the order the scheme expects.
        data: train/validation/test splits (:func:`mentor.data.load`).
        params: the scheme's parameters (validated like a recipe's ``scheme.params``).
        baseline: also train each peer alone from the same initial weights, and their plain ensemble.
        latency_batch: batch size of the latency measurement.
        out: a run directory to write, as :func:`mentor.distill` does.
        resume: continue the run in ``out`` from its checkpoints.
        name: the run's name (default: the scheme's).
        settings: ready :class:`~mentor.engine.FitSettings`, instead of keywords.
        **options: any key of a recipe's ``train`` section, and ``seed``, ``progress``, ``augment``.

    Returns:
        a :class:`Result`: ``models`` (``result.models["ensemble"](inputs)``), ``accuracies()``,
        ``table()``, ``history(scheme)`` (each epoch's loss terms).
    """
    fit_settings = keyword_settings(settings, caller="mentor.collaborate", **options)
    scheme_name = scheme if isinstance(scheme, str) else type(scheme).__name__
    if not isinstance(scheme, str) and baseline:
        raise MentorError("baseline=True needs the scheme by name (mentor.collaborate('dml', models, ...)), "
                          "so the peers alone can start from the same initial weights")
    initial = [copy.deepcopy(model) for model in models]
    build = (lambda peers: SCHEMES.create(scheme, peers, **(params or {}))) if isinstance(scheme, str) \
        else (lambda peers: scheme)
    job = PeersJob(name=name or scheme_name, scheme=scheme_name, seeds=[fit_settings.seed],
                   load_data=lambda seed: data, peers=[(lambda m=m: m) for m in models], build=build,
                   settings=fit_settings, independent=baseline, latency_batch=latency_batch,
                   alone=[(lambda m=m: copy.deepcopy(m)) for m in initial])
    if isinstance(scheme, str):
        check_peers(replace(job, peers=job.alone))  # on copies: the check's loss would move BatchNorm statistics
    folder = Path(out) if out is not None else None
    if folder is None:
        return run_peers(job, None, echo=lambda line: None)
    output.prepare(folder, resume, "mentor.collaborate")
    sections = {"scheme": output.scheme_section(scheme, params), "peers": [output.model_section(m) for m in models],
                "train": train_section(fit_settings)}
    rest = {"name": job.name, "compare": {"independent": baseline}, "latency_batch": latency_batch}
    output.write_recipe(folder, output.describe("mentor.collaborate", data, fit_settings.seed, sections, rest))
    started = time.perf_counter()
    result = run_peers(job, folder, MetricsLog(folder / "metrics.jsonl"), echo=lambda line: None, resume=resume)
    output.write_summary(folder, job.name, time.perf_counter() - started, result.summary())
    return result


def check_peers(job: PeersJob) -> None:
    """Build the scheme once and set it up on a sample batch, so mistakes surface before anything is written."""
    check_device(job.settings)
    data = job.load_data(job.seeds[0])
    sample = sample_batch(data.train, job.settings.batch_size)
    peers = [factory() for factory in job.peers]
    shapes = [tuple(check_outputs(f"peer {index}", peer, data, sample, classes=False).shape[1:])
              for index, peer in enumerate(peers)]
    built = job.build(peers)
    first = built if isinstance(built, Scheme) else next(iter(built.phases())).scheme
    first.training_set(data.train)  # labels hidden by a semi-supervised scheme: a bad count fails here
    first.setup(sample)
    try:  # one loss on the sample: peers whose outputs do not fit the data or each other fail here
        first.loss(sample, 0.0, job.settings.epochs)
    except MentorError:
        raise
    except Exception as error:  # noqa: BLE001 - reported in one line, before anything is written
        raise MentorError(f"the {job.scheme} scheme cannot train these peers on {data.name} ({data.num_classes} "
                          f"classes; the peers output shapes {shapes}): {type(error).__name__}: "
                          f"{clip(str(error))}") from None
