"""`mentor docs [--out DIR]`: write the reference pages generated from the registries, schema and parser."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_OUT = Path("docs") / "reference"


def add_parser(commands: argparse._SubParsersAction) -> None:
    docs = commands.add_parser("docs", help="write the generated reference pages (Markdown) of the documentation")
    docs.add_argument("--out", default=str(DEFAULT_OUT), metavar="DIR",
                      help="folder for the pages (default: docs/reference; `mkdocs build` generates them itself)")
    docs.set_defaults(handler=command_docs)


def command_docs(args: argparse.Namespace) -> int:
    from mentor.docs import write
    from mentor.errors import MentorError

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise MentorError(f"--out {str(out)!r} is a file; give a folder for the pages")
    written = write(out)
    print(f"mentor: wrote {len(written)} pages to {out}")
    return 0
