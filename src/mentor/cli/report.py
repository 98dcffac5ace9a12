"""`mentor report RUN_DIR [RUN_DIR ...]`: one self-contained HTML report of finished runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from mentor.cli.run import add_trust_code


def add_parser(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser("report", help="write an HTML report (curves, agreement, calibration) of runs")
    report.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories written by `mentor run`")
    report.add_argument("--out", metavar="FILE", help="HTML file (default: RUN_DIR/report.html for one run, "
                                                     "else mentor-report.html)")
    add_trust_code(report)
    report.set_defaults(handler=command_report)


def command_report(args: argparse.Namespace) -> int:
    from mentor.report.html import write_report

    default = Path(args.runs[0]) / "report.html" if len(args.runs) == 1 else Path("mentor-report.html")
    out = write_report(args.runs, Path(args.out) if args.out else default, args.trust_code)
    print(f"mentor: report written to {out}")
    return 0
