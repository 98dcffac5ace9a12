"""The ``mentor`` command. One file per command in this package, each with an ``add_parser``
(found automatically: adding a command is adding one file).

Every user mistake prints one line ``mentor: error: ...`` and exits with status 2; a warning about the
run (a loss term out of scale) is one line ``mentor: warning: ...``.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from mentor.engine.distributed import shutdown
from mentor.engine.scales import ScaleWarning
from mentor.errors import MentorError

EXIT_USAGE = 2
COMMANDS = [importlib.import_module(f"{__name__}.{info.name}") for info in pkgutil.iter_modules(__path__)]


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="mentor", description="Teacher-student knowledge learning.")
    commands = main.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(commands)
    return main


_show_warning = warnings.showwarning


def _one_line(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    """Mentor's own warnings as one line; any other as Python shows it."""
    if issubclass(category, ScaleWarning):
        print(f"mentor: warning: {message}", file=sys.stderr, flush=True)
    else:
        _show_warning(message, category, *args, **kwargs)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", ScaleWarning)
            warnings.showwarning = _one_line
            code = handler(args)
        shutdown()
        return code
    except MentorError as error:
        print(f"mentor: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("mentor: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
