"""`mentor list [KIND]` and `mentor recipes`: what is registered and built in."""

from __future__ import annotations

import argparse

KINDS = ("knowledge", "models", "datasets", "schemes")


def add_parser(commands: argparse._SubParsersAction) -> None:
    recipes = commands.add_parser("recipes", help="list the built-in recipes")
    recipes.set_defaults(handler=command_recipes)
    listing = commands.add_parser("list", help="list registered knowledge methods, models, datasets or schemes")
    listing.add_argument("kind", nargs="?", choices=KINDS)
    listing.set_defaults(handler=command_list)


def command_recipes(args: argparse.Namespace) -> int:
    from mentor.recipes import builtin_recipes
    from mentor.recipes.load import read_yaml

    for name, path in sorted(builtin_recipes().items()):
        print(f"{name:<20} {read_yaml(path).get('description', '')}")
    return 0


def _registries() -> dict[str, object]:
    from mentor.data import DATASETS
    from mentor.knowledge import KNOWLEDGE
    from mentor.models import MODELS
    from mentor.schemes import SCHEMES

    return {"knowledge": KNOWLEDGE, "models": MODELS, "datasets": DATASETS, "schemes": SCHEMES}


def command_list(args: argparse.Namespace) -> int:
    registries = _registries()
    kinds = [args.kind] if args.kind else list(KINDS)
    for kind in kinds:
        print(f"{kind}:")
        for entry in registries[kind]:  # type: ignore[attr-defined]
            print(f"  {entry.name:<22} {entry.summary}")
    return 0


