"""`mentor bench NAME [ARGS...]`: run a benchmark script from the checkout's ``benchmarks/`` folder."""

from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path

from mentor.errors import unknown


def add_parser(commands: argparse._SubParsersAction) -> None:
    bench = commands.add_parser("bench", help="run a benchmark of benchmarks/ (results go to BENCHMARKS.md)")
    names = ", ".join(sorted(scripts())) or "none found"
    bench.add_argument("name", help=f"benchmark name, a file benchmarks/NAME.py: {names}")
    bench.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the benchmark (see its --help)")
    bench.set_defaults(handler=command_bench)


def folder() -> Path:
    """``benchmarks/`` of the current directory, else of the source checkout Mentor is installed from."""
    here = Path.cwd() / "benchmarks"
    return here if here.is_dir() else Path(__file__).resolve().parents[3] / "benchmarks"


def scripts() -> dict[str, Path]:
    """The benchmarks by name."""
    return {path.stem: path for path in folder().glob("*.py") if not path.stem.startswith("_")}


def command_bench(args: argparse.Namespace) -> int:
    found = scripts()
    if args.name not in found:
        raise unknown("benchmark", args.name, found, where=str(folder()))
    sys.argv = [str(found[args.name]), *args.args]
    runpy.run_path(str(found[args.name]), run_name="__main__")
    return 0
