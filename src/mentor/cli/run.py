"""`mentor run RECIPE` and `mentor resume RUN_DIR`: run a recipe into a run directory, print the table."""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from mentor.engine import MetricsLog, rundir
from mentor.engine.distributed import World, barrier, broadcast_object, world
from mentor.engine.metrics import Sink
from mentor.errors import MentorError, describe_os_error, writing
from mentor.pipelines.output import write_summary
from mentor.pipelines.result import Result
from mentor.recipes import Recipe, load_recipe, read_run_recipe
from mentor.recipes.load import RUN_RECIPE
from mentor.recipes.schema import PIPELINES


def add_parser(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="run a recipe (a built-in name or a YAML file)")
    run.add_argument("recipe", help="built-in recipe name (see `mentor recipes`) or path to a YAML recipe")
    run.add_argument("--out", help="run directory (default: runs/NAME-TIMESTAMP)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a recipe key, e.g. train.epochs=5")
    run.add_argument("--force", action="store_true", help="replace an existing run directory (only one Mentor made)")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    add_trust_code(run)
    run.set_defaults(handler=command_run)
    resume = commands.add_parser("resume", help="continue an interrupted run from its last checkpoints")
    resume.add_argument("run_dir", help="the run directory of the interrupted run")
    resume.add_argument("--quiet", action="store_true", help="no progress bars")
    add_trust_code(resume)
    resume.set_defaults(handler=command_resume)


def add_trust_code(command: argparse.ArgumentParser) -> None:
    """The ``--trust-code`` consent flag (see :mod:`mentor.models.trust`)."""
    command.add_argument("--trust-code", action="store_true",
                         help="allow models named package.module:callable that no installed package declares "
                              "(this imports and runs that code: only for recipes you trust)")


def _default_out(name: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path("runs") / f"{name}-{stamp}"
    index = 1
    while out.exists():
        index += 1
        out = Path("runs") / f"{name}-{stamp}-{index}"
    return out


def _planned(recipe: Recipe, progress: bool, trust_code: bool) -> Callable[..., Result]:
    """Build and check every piece of the run (nothing is written yet); the function that runs it."""
    from mentor.pipelines.collaborate import check_peers, run_peers
    from mentor.pipelines.distill import check, run
    from mentor.recipes.build import build_job, build_peers_job

    for section in PIPELINES:  # mentor.recipes.<section>.build_<section>_job, mentor.pipelines.<section>.run
        if getattr(recipe, section) is not None:
            build = getattr(importlib.import_module(f"mentor.recipes.{section}"), f"build_{section}_job")
            pipeline = importlib.import_module(f"mentor.pipelines.{section}")
            pipeline_job = build(recipe, progress, trust_code)
            pipeline.check_job(pipeline_job)
            return functools.partial(pipeline.run, pipeline_job)
    if recipe.scheme is not None:
        peers_job = build_peers_job(recipe, progress, trust_code)
        check_peers(peers_job)
        return functools.partial(run_peers, peers_job)
    job = build_job(recipe, progress, trust_code)
    check(job)
    return functools.partial(run, job)


def _sinks(recipe: Recipe, out: Path) -> list[Sink]:
    """Where rank 0 sends metrics besides metrics.jsonl (built before anything is written: a missing package
    fails here)."""
    if not recipe.log.tensorboard:
        return []
    from mentor.engine.tensorboard import TensorBoardSink

    return [TensorBoardSink(out / "tensorboard")]


def _execute(recipe: Recipe, execute: Callable[..., Result], out: Path, resume: bool, current: World,
             sinks: list[Sink]) -> int:
    started = time.perf_counter()
    echo = (lambda line: print(f"  {line}", flush=True)) if current.is_main else (lambda line: None)
    log = MetricsLog(out / "metrics.jsonl", sinks=sinks)
    try:
        result = execute(out, log, echo=echo, resume=resume)
    finally:
        log.close()
    elapsed = time.perf_counter() - started
    if not current.is_main:  # under torchrun rank 0 alone writes the summary and prints the table
        return 0
    write_summary(out, recipe.name, elapsed, result.summary())
    print()
    print(result.table())
    print(f"\n{elapsed:.1f} s; run directory: {out}")
    return 0


def _on_rank0(current: World, prepare: Callable[[], None]) -> None:
    """Run ``prepare`` on rank 0 only (under torchrun the others wait); its one-line error stops every rank."""
    problem = None
    if current.is_main:
        try:
            prepare()
        except MentorError as error:
            problem = str(error)
        except OSError as error:
            problem = describe_os_error(error)
    problem = broadcast_object(problem, current)
    if problem is not None:
        raise MentorError(problem)


def command_run(args: argparse.Namespace) -> int:
    recipe = load_recipe(args.recipe, args.set)
    execute = _planned(recipe, progress=not args.quiet and sys.stderr.isatty(), trust_code=args.trust_code)
    current = world()  # under torchrun: rank 0 names and prepares the run directory, the others wait for it
    out = Path(broadcast_object(args.out or str(_default_out(recipe.name)), current))
    resolved = recipe.model_dump(mode="json")
    sinks: list[Sink] = []
    with contextlib.ExitStack() as held:  # rank 0 holds the run directory's lock until the run ends
        def prepare() -> None:
            sinks.extend(_sinks(recipe, out))
            held.enter_context(rundir.prepared(out, args.force, resolved))
            with writing(out / RUN_RECIPE):
                (out / RUN_RECIPE).write_text(yaml.safe_dump(resolved, sort_keys=False), encoding="utf-8")

        _on_rank0(current, prepare)
        if current.is_main:
            print(f"mentor: running {recipe.name!r} ({len(recipe.seeds)} seed(s)) -> {out}", flush=True)
        return _execute(recipe, execute, out, resume=False, current=current, sinks=sinks)


def command_resume(args: argparse.Namespace) -> int:
    out = Path(args.run_dir)
    if not (out / rundir.MARKER).is_file() and not (out / RUN_RECIPE).is_file():
        raise MentorError(f"{str(out)!r} is not a run directory (no {RUN_RECIPE}); give the --out of a `mentor run`")
    current = world()
    with contextlib.ExitStack() as held:  # rank 0 holds the run directory's lock until the run ends
        def prepare() -> None:
            held.enter_context(rundir.locked(out))
            rundir.check_recipe(out)  # an edited recipe.yaml is refused, a damaged one restored

        _on_rank0(current, prepare)
        recipe = read_run_recipe(out)
        execute = _planned(recipe, progress=not args.quiet and sys.stderr.isatty(), trust_code=args.trust_code)
        sinks = _sinks(recipe, out) if current.is_main else []
        if current.is_main:
            print(f"mentor: resuming {recipe.name!r} in {out}", flush=True)
            # every record comes from a stage's checkpoint history: the stages write the file again as they resume
            (out / "metrics.jsonl").unlink(missing_ok=True)
        barrier(current)
        return _execute(recipe, execute, out, resume=True, current=current, sinks=sinks)
