"""`mentor compare RUN_DIR ...`: one table of the test results of several runs."""

from __future__ import annotations

import argparse


def add_parser(commands: argparse._SubParsersAction) -> None:
    compare = commands.add_parser("compare", help="compare the test results of runs in one table")
    compare.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories written by `mentor run`")
    compare.set_defaults(handler=command_compare)


def command_compare(args: argparse.Namespace) -> int:
    from mentor.errors import MentorError
    from mentor.report.runs import SUMMARY_HEADER, Run, summary_rows
    from mentor.report.table import render

    runs = [Run.open(path) for path in args.runs]
    missing = [str(run.path) for run in runs if not run.models_summary()]
    if missing:
        raise MentorError(f"no summary.json with results in {', '.join(missing)}; the run did not finish "
                          "(run `mentor eval` on its checkpoints instead)")
    print(render(SUMMARY_HEADER, summary_rows(runs)))
    return 0
