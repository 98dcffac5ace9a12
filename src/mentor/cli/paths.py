"""`mentor paths MODEL|RECIPE`: the module paths of a model (what taps and methods name), with output shapes."""

from __future__ import annotations

import argparse
from pathlib import Path

from mentor.cli.run import add_trust_code


def add_parser(commands: argparse._SubParsersAction) -> None:
    paths = commands.add_parser("paths", help="list a model's module paths with their output shapes for one sample")
    paths.add_argument("target", metavar="MODEL|RECIPE",
                       help="a model (registered name or package.module:callable), or a recipe (built-in name or "
                            "YAML file): then every model of it, on its dataset")
    paths.add_argument("--data", metavar="NAME", help="take the input shape and classes of this dataset")
    paths.add_argument("--input-shape", metavar="C,H,W", help="shape of one sample (default: 1,28,28)")
    paths.add_argument("--classes", type=int, metavar="K", help="number of classes (default: 10)")
    paths.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                       help="a model option, e.g. channels=[8,16] (a MODEL only)")
    add_trust_code(paths)
    paths.set_defaults(handler=command_paths)


def _is_recipe(target: str) -> bool:
    from mentor.recipes import builtin_recipes

    return target in builtin_recipes() or Path(target).suffix in (".yaml", ".yml") or Path(target).is_file()


def _shape(text: str) -> tuple[int, ...]:
    from mentor.errors import MentorError

    try:
        shape = tuple(int(part) for part in text.replace("(", "").replace(")", "").split(",") if part.strip())
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise MentorError(f"--input-shape must be positive integers separated by commas, e.g. 1,28,28; got {text!r}")
    return shape


def _options(pairs: list[str]) -> dict[str, object]:
    import yaml

    from mentor.errors import MentorError

    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise MentorError(f"--option expects key=value (e.g. channels=[8,16]); got {pair!r}")
        options[key] = yaml.safe_load(value)
    return options


def command_paths(args: argparse.Namespace) -> int:
    from mentor.data import load
    from mentor.errors import MentorError
    from mentor.models import create, paths, paths_table

    if _is_recipe(args.target):
        from mentor.recipes import load_recipe

        if args.data or args.input_shape or args.classes or args.option:
            raise MentorError("--data, --input-shape, --classes and --option describe a MODEL; a recipe has its own")
        recipe = load_recipe(args.target)
        data = load(recipe.data.name, validation=recipe.data.validation, root=recipe.data.root,
                    limit=recipe.data.limit, offset=recipe.data.offset)
        sections = [("teacher", recipe.teacher), ("student", recipe.student)]
        sections += [(f"teachers[{index}]", teacher) for index, teacher in enumerate(recipe.teachers or [])]
        sections += [(f"peer {index}", peer) for index, peer in enumerate(recipe.peers or [])]
        models = [(f"{role}: {section.model}", section.model, section.options, data.input_shape, data.num_classes)
                  for role, section in sections if section is not None]
    else:
        shape, classes = (1, 28, 28), 10
        if args.data:
            data = load(args.data, validation=0.0)
            shape, classes = data.input_shape, data.num_classes
        shape = _shape(args.input_shape) if args.input_shape else shape
        classes = args.classes if args.classes is not None else classes
        models = [(args.target, args.target, _options(args.option), shape, classes)]
    for index, (title, spec, options, shape, classes) in enumerate(models):
        model = create(spec, classes, shape, trust_code=args.trust_code, **options)
        print(("\n" if index else "") + f"{title} (inputs {tuple(shape)}, {classes} classes)")
        print(paths_table(paths(model, shape)))
    return 0
