"""`mentor list [KIND]` and `mentor recipes`: what is registered and built in."""

from __future__ import annotations

import argparse
import inspect
from typing import Any

KINDS = ("knowledge", "models", "datasets", "schemes", "weightings")


def add_parser(commands: argparse._SubParsersAction) -> None:
    recipes = commands.add_parser("recipes", help="list the built-in recipes, or print one (recipes show NAME)")
    recipes.set_defaults(handler=command_recipes)
    actions = recipes.add_subparsers(dest="action")
    show = actions.add_parser("show", help="print a built-in recipe (to start your own: > my-recipe.yaml)")
    show.add_argument("name", help="a built-in recipe name (see `mentor recipes`)")
    show.set_defaults(handler=command_show)
    listing = commands.add_parser("list", help="list registered knowledge methods, models, datasets or schemes")
    listing.add_argument("kind", nargs="?", choices=KINDS)
    listing.set_defaults(handler=command_list)


def command_recipes(args: argparse.Namespace) -> int:
    from mentor.recipes import builtin_recipes
    from mentor.recipes.load import read_yaml

    for name, path in sorted(builtin_recipes().items()):
        print(f"{name:<20} {read_yaml(path).get('description', '')}")
    return 0


def command_show(args: argparse.Namespace) -> int:
    from mentor.errors import unknown
    from mentor.recipes import builtin_recipes

    builtins = builtin_recipes()
    if args.name not in builtins:
        raise unknown("recipe", args.name, builtins)
    print(builtins[args.name].read_text(encoding="utf-8"), end="")
    return 0


def parameters_line(factory: Any, skip: tuple[str, ...] = ()) -> str:
    """``name=default`` of each keyword parameter (``name=REQUIRED`` when it has none)."""
    shown = []
    for name, parameter in inspect.signature(factory).parameters.items():
        if name in skip or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        default = "REQUIRED" if parameter.default is parameter.empty else repr(parameter.default)
        shown.append(f"{name}={default}")
    return ", ".join(shown) or "no parameters"


def _registries() -> dict[str, object]:
    from mentor.data import DATASETS
    from mentor.knowledge import KNOWLEDGE
    from mentor.models import MODELS
    from mentor.schemes import SCHEMES
    from mentor.teachers.weighting import WEIGHTINGS

    return {"knowledge": KNOWLEDGE, "models": MODELS, "datasets": DATASETS, "schemes": SCHEMES,
            "weightings": WEIGHTINGS}


def command_list(args: argparse.Namespace) -> int:
    registries = _registries()
    kinds = [args.kind] if args.kind else list(KINDS)
    for kind in kinds:
        print(f"{kind}:")
        for entry in registries[kind]:  # type: ignore[attr-defined]
            print(f"  {entry.name:<22} {entry.summary}")
            if kind in ("knowledge", "schemes", "weightings"):
                skip = ("teachers",) if kind == "weightings" else ("models",)  # given by the run, not the user
                print(f"  {'':<22} {parameters_line(entry.obj, skip=skip)}")
        if kind == "models":
            from mentor.models import trust

            for name, point in sorted(trust.entry_points().items()):
                package = f" (package {point.dist.name})" if point.dist is not None else ""
                print(f"  {name:<22} {point.value}: declared by an installed package{package}")
    return 0


