"""Which model factories may run without the user's consent, and importing the others when it is given.

A model named ``package.module:callable`` imports that module and calls the callable with the recipe's options:
running code the recipe chose (``os:system`` with ``options: {command: ...}`` runs a shell command). Like
``trust_remote_code`` in transformers, Mentor builds without asking only

- models registered in :data:`mentor.models.MODELS` (Mentor's own, or registered by the user's own code before it
  runs a recipe), and
- models that installed packages declare in the ``mentor.models`` entry point group, by the entry point's name or by
  its ``module:callable`` value;

any other ``module:callable`` runs only with consent: ``--trust-code`` on the command line, ``trust_code=True`` in
Python. Consent is checked before anything is imported. A module that is not importable is also looked up in the
current directory, as ``python -m`` users expect.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from mentor.errors import MentorError, clip, nearest, shown

GROUP = "mentor.models"
SPEC = re.compile(r"(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):(?P<attribute>[A-Za-z_]\w*)")
CONSENT = "pass --trust-code (trust_code=True in Python) if you trust it"


@cache
def entry_points() -> dict[str, metadata.EntryPoint]:
    """Models declared by installed packages in the ``mentor.models`` entry point group, by name."""
    return {point.name: point for point in metadata.entry_points(group=GROUP)}


def split(spec: str, where: str = "model") -> tuple[str, str]:
    """``(module, callable)`` of a ``package.module:callable`` model name; a one-line error when malformed."""
    match = SPEC.fullmatch(spec)
    if match is None:
        raise MentorError(f"{where} {shown(spec)} is neither a registered name nor 'package.module:callable' "
                          "(both parts Python names, e.g. mypackage.models:build_net)")
    return match["module"], match["attribute"]


def declared(spec: str) -> bool:
    """Whether ``module:callable`` is the value of an installed package's ``mentor.models`` entry point."""
    return any(f"{point.module}:{point.attr}" == spec for point in entry_points().values())


def check_consent(spec: str, trust_code: bool, where: str = "model") -> None:
    """Raise a one-line error when building ``spec`` would import code the user has not consented to.

    Registered names pass here (an unknown one fails later, with the nearest names); a well-formed
    ``module:callable`` passes when an entry point declares it, or with ``trust_code``.

    Args:
        spec: the model name.
        trust_code: the user's consent.
        where: how the message names the value (``"recipe key 'student.model': model"``).
    """
    if ":" not in spec or spec.partition(":")[0] in ("hf", "timm", "torchvision"):  # no code of the user's runs
        return
    module, attribute = split(spec, where)
    if trust_code or declared(spec):
        return
    raise MentorError(f"{where} {spec!r} would import module {module!r} and run its {attribute!r}: code outside "
                      f"Mentor's registered models runs only with consent; {CONSENT}, or register the model "
                      f"(`mentor list models`, or a package's {GROUP!r} entry point)")


def _import(module: str) -> Any:
    """Import ``module``; when it is not found, look in the current directory too (``python -m`` does)."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        here = str(Path.cwd())
        if error.name != module.split(".")[0] or here in sys.path or "" in sys.path:
            raise
    sys.path.insert(0, here)  # as `python -m` would have it; kept so the module's own imports work
    return importlib.import_module(module)


def load_factory(spec: str, trust_code: bool) -> Callable[..., Any]:
    """The callable named by ``package.module:callable`` (an entry point's value, or any with ``trust_code``)."""
    check_consent(spec, trust_code)
    module_name, attribute = split(spec)
    try:
        module = _import(module_name)
    except ModuleNotFoundError as error:
        raise MentorError(f"cannot import model factory module {module_name!r} from {spec!r}: no module named "
                          f"{error.name!r} on the Python path nor in the current directory ({Path.cwd()}); run "
                          "from the folder that holds it, or add that folder to PYTHONPATH") from None
    except Exception as error:  # noqa: BLE001 - the user's module failing to import is reported in one line
        raise MentorError(f"importing model factory module {module_name!r} failed: "
                          f"{type(error).__name__}: {clip(str(error))}") from None
    if not hasattr(module, attribute):
        names = [name for name in dir(module) if not name.startswith("_")]
        close = nearest(attribute, names)
        hint = f"; nearest: {', '.join(close)}" if close else ""
        raise MentorError(f"module {module_name!r} has no callable {attribute!r}{hint}")
    factory = getattr(module, attribute)
    if not callable(factory):
        raise MentorError(f"{spec!r} is not callable; name a function or class that returns an nn.Module")
    return factory


def load_entry_point(name: str) -> Callable[..., Any] | None:
    """The factory an installed package declares as ``name`` in ``mentor.models`` (``None`` when none does)."""
    point = entry_points().get(name)
    if point is None:
        return None
    try:
        return point.load()
    except Exception as error:  # noqa: BLE001 - a broken plug-in package is reported in one line
        raise MentorError(f"model {name!r} of the {GROUP!r} entry point ({point.value}) cannot be loaded: "
                          f"{type(error).__name__}: {clip(str(error))}") from None
