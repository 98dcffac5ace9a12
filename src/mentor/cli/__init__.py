"""The ``mentor`` command. One file per command in this package, each with an ``add_parser``
(found automatically: adding a command is adding one file).

Every user mistake prints one line ``mentor: error: ...`` and exits with status 2, and so does a file that cannot be
read or written (full disk, read-only folder: the line names the path and the fix) or an input too large or too
deep to handle. A warning about the run (a loss term out of scale) or about something Mentor repaired on its own (a
damaged cache entry rebuilt) is one line ``mentor: warning: ...``.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from mentor.engine.distributed import abandon, shutdown
from mentor.engine.scales import ScaleWarning
from mentor.errors import MentorError, MentorWarning, clip, describe_os_error

EXIT_USAGE = 2
COMMANDS = [importlib.import_module(f"{__name__}.{info.name}") for info in pkgutil.iter_modules(__path__)]
ONE_LINE = (ScaleWarning, MentorWarning)


def parser() -> argparse.ArgumentParser:
    from mentor import __version__

    main = argparse.ArgumentParser(prog="mentor", description="Teacher-student knowledge learning.")
    main.add_argument("--version", action="version", version=f"mentor {__version__}")
    commands = main.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(commands)
    return main


_show_warning = warnings.showwarning


def _one_line(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    """Mentor's own warnings as one line; any other as Python shows it."""
    if issubclass(category, ONE_LINE):
        print(f"mentor: warning: {message}", file=sys.stderr, flush=True)
    else:
        _show_warning(message, category, *args, **kwargs)


def _fail(message: str) -> int:
    abandon()
    print(f"mentor: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        with warnings.catch_warnings():
            for category in ONE_LINE:
                warnings.simplefilter("always", category)
            warnings.showwarning = _one_line
            code = handler(args)
        shutdown()
        return code
    except MentorError as error:
        return _fail(str(error))
    except OSError as error:
        return _fail(describe_os_error(error))
    except RecursionError:
        return _fail("the input nests too deeply to handle; flatten it")
    except MemoryError as error:
        return _fail(f"out of memory{': ' + clip(str(error)) if str(error) else ''}; lower the sizes in the recipe "
                     "(batch_size, model widths, data.limit)")
    except KeyboardInterrupt:
        abandon()
        print("mentor: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
