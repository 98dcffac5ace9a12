"""`mentor run RECIPE` and `mentor resume RUN_DIR`: run a recipe into a run directory, print the table."""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from mentor.engine import MetricsLog
from mentor.engine.distributed import World, barrier, broadcast_object, world
from mentor.engine.metrics import Sink
from mentor.errors import MentorError
from mentor.pipelines.distill import Result
from mentor.recipes import Recipe, load_recipe, validate
from mentor.recipes.load import read_yaml


def add_parser(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="run a recipe (a built-in name or a YAML file)")
    run.add_argument("recipe", help="built-in recipe name (see `mentor recipes`) or path to a YAML recipe")
    run.add_argument("--out", help="run directory (default: runs/NAME-TIMESTAMP)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a recipe key, e.g. train.epochs=5")
    run.add_argument("--force", action="store_true", help="replace an existing run directory")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.set_defaults(handler=command_run)
    resume = commands.add_parser("resume", help="continue an interrupted run from its last checkpoints")
    resume.add_argument("run_dir", help="the run directory of the interrupted run")
    resume.add_argument("--quiet", action="store_true", help="no progress bars")
    resume.set_defaults(handler=command_resume)


def _prepare_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise MentorError(f"--out {str(out)!r} is a file, not a directory; choose another --out")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise MentorError(f"run directory {str(out)!r} already exists; "
                              "choose another --out or pass --force to replace it")
        shutil.rmtree(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise MentorError(f"cannot create the run directory {str(out)!r} ({error.strerror}); "
                          "choose another --out") from None


def _default_out(name: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path("runs") / f"{name}-{stamp}"
    index = 1
    while out.exists():
        index += 1
        out = Path("runs") / f"{name}-{stamp}-{index}"
    return out


def _planned(recipe: Recipe, progress: bool) -> Callable[..., Result]:
    """Build and check every piece of the run (nothing is written yet); the function that runs it."""
    from mentor.pipelines.collaborate import check_peers, run_peers
    from mentor.pipelines.distill import check, run
    from mentor.recipes.build import build_job, build_peers_job

    if recipe.scheme is not None:
        peers_job = build_peers_job(recipe, progress)
        check_peers(peers_job)
        return functools.partial(run_peers, peers_job)
    job = build_job(recipe, progress)
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
    summary = {"recipe": recipe.name, "seconds": round(elapsed, 2), "models": result.summary()}
    (out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print()
    print(result.table())
    print(f"\n{elapsed:.1f} s; run directory: {out}")
    return 0


def command_run(args: argparse.Namespace) -> int:
    recipe = load_recipe(args.recipe, args.set)
    execute = _planned(recipe, progress=not args.quiet and sys.stderr.isatty())
    current = world()  # under torchrun: rank 0 names and prepares the run directory, the others wait for it
    out = Path(args.out) if args.out else _default_out(recipe.name)
    problem, sinks = None, []
    if current.is_main:
        try:
            sinks = _sinks(recipe, out)
            _prepare_out(out, args.force)
            (out / "recipe.yaml").write_text(yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False),
                                             encoding="utf-8")
        except MentorError as error:
            problem = str(error)
    out, problem = broadcast_object((str(out), problem), current)
    if problem is not None:
        raise MentorError(problem)
    out = Path(out)
    if current.is_main:
        print(f"mentor: running {recipe.name!r} ({len(recipe.seeds)} seed(s)) -> {out}", flush=True)
    return _execute(recipe, execute, out, resume=False, current=current, sinks=sinks)


def command_resume(args: argparse.Namespace) -> int:
    out = Path(args.run_dir)
    if not (out / "recipe.yaml").is_file():
        raise MentorError(f"{str(out)!r} is not a run directory (no recipe.yaml); give the --out of a `mentor run`")
    recipe = validate(read_yaml(out / "recipe.yaml"))
    execute = _planned(recipe, progress=not args.quiet and sys.stderr.isatty())
    current = world()
    problem, sinks = None, []
    if current.is_main:
        try:
            sinks = _sinks(recipe, out)
        except MentorError as error:
            problem = str(error)
    problem = broadcast_object(problem, current)
    if problem is not None:
        raise MentorError(problem)
    if current.is_main:
        print(f"mentor: resuming {recipe.name!r} in {out}", flush=True)
    barrier(current)
    return _execute(recipe, execute, out, resume=True, current=current, sinks=sinks)
