"""The generated pages: recipe schema, methods and schemes, models, datasets, command line; MkDocs hooks."""

from __future__ import annotations

import argparse
import inspect
import sys
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydantic

from mentor.docs.markdown import _code, _slug, _table, _yaml_inline, docstring_markdown
from mentor.docs.signatures import _constraints, _parameters, _plain, parameter_rows, type_name

Pages = dict[str, str]
"""Page path relative to the documentation root (``reference/knowledge/kd.md``) -> Markdown text."""

ROOT = "reference"


def _sections_of(annotation: Any) -> list[type[pydantic.BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return [annotation]
    return [found for arg in typing.get_args(annotation) for found in _sections_of(arg)]


def schema_sections(model: type[pydantic.BaseModel], path: str = "") -> list[tuple[str, type[pydantic.BaseModel]]]:
    """Every section of the recipe schema with its key path (``train.optimizer``; list items as ``peers[]``)."""
    found = [(path, model)]
    for name, field in model.model_fields.items():
        is_list = typing.get_origin(_without_none(field.annotation)) is list
        for section in _sections_of(field.annotation):
            child = f"{path}.{name}" if path else name
            found += schema_sections(section, child + ("[]" if is_list else ""))
    return found


def _without_none(annotation: Any) -> Any:
    args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    return args[0] if union and len(args) == 1 else annotation


def _schema_type(annotation: Any, child: str) -> str:
    sections = _sections_of(annotation)
    if not sections:
        return _code(type_name(annotation))
    plain = _without_none(annotation)
    kind = "list of sections" if typing.get_origin(plain) is list else "section"
    optional = " or `null`" if plain is not annotation else ""
    return f"{kind} [{child}](#{_slug(child)}){optional}"


def _schema_default(field: pydantic.fields.FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, pydantic.BaseModel):
        return "(its defaults)"
    return _code(_yaml_inline(_plain(value)))


def recipe_page() -> str:
    from mentor.recipes import Recipe, builtin_recipes
    from mentor.recipes.load import read_yaml

    parts = [
        "# Recipe keys",
        "",
        "Every key a recipe file may hold, generated from the schema (`mentor.recipes.schema`). Unknown keys, "
        "wrong types and out-of-range values are refused with one line naming the key path "
        "(`mentor: error: recipe key 'train.epochs': ...`, exit status 2) before anything is written.",
        "",
        "A recipe is either a **distillation** recipe (`teacher`, `student` and `knowledge`) or a **scheme** "
        "recipe (`scheme` and `peers`, and none of the three others). `knowledge` may be one mapping or a "
        "list of them (combined into one objective). Any key can be overridden on the command line: "
        "`mentor run RECIPE --set train.epochs=5 --set knowledge.params.temperature=2`.",
        "",
    ]
    for path, section in schema_sections(Recipe):
        title = path or "top level"
        doc = section.__dict__.get("__doc__")
        parts += [f"## {title}", ""] + ([docstring_markdown(doc)] if doc and path else [])
        rows = []
        for name, field in section.model_fields.items():
            key = f"{path}.{name}" if path else name
            child = key + ("[]" if typing.get_origin(_without_none(field.annotation)) is list
                           and _sections_of(field.annotation) else "")
            rows.append([_code(name), _schema_type(field.annotation, child), _schema_default(field),
                         ", ".join(_constraints(field.metadata)), field.description or ""])
        parts += [_table(["key", "type", "default", "constraint", "description"], rows), ""]
    builtins = sorted(builtin_recipes().items())
    parts += ["## Built-in recipes", "", "Run one with `mentor run NAME`; copy its file to start your own.", "",
              _table(["name", "description"], [[_code(name), read_yaml(path).get("description", "")]
                                                for name, path in builtins]), ""]
    quickstart = dict(builtins).get("quickstart")
    if quickstart is not None:
        parts += ["The `quickstart` recipe:", "", "```yaml", quickstart.read_text(encoding="utf-8").strip(), "```", ""]
    return "\n".join(parts)
def _module_doc(obj: Any) -> str:
    module = sys.modules.get(getattr(inspect.unwrap(obj), "__module__", ""), None)
    return docstring_markdown(getattr(module, "__doc__", None))


def _recipe_ready(annotation: Any) -> bool:
    """Whether a recipe (plain YAML values) can give a parameter of this type."""
    if annotation is inspect.Parameter.empty or annotation is Any or isinstance(annotation, str):
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return True
    if origin is not None:
        args = typing.get_args(annotation)
        return all(_recipe_ready(arg) for arg in (args[:1] if origin is typing.Annotated else args))
    plain = (int, float, str, bool, list, dict, tuple, type(None), pydantic.BaseModel)
    return typing.is_typeddict(annotation) or (isinstance(annotation, type) and issubclass(annotation, plain))


def _builtin_for_scheme(name: str) -> Path | None:
    """The built-in recipe a scheme's page shows: the one that runs the scheme (``offline``: a distillation)."""
    from mentor.docs.examples import SCHEME_RECIPES
    from mentor.recipes import builtin_recipes
    from mentor.recipes.load import read_yaml

    builtins = builtin_recipes()
    if name in SCHEME_RECIPES:
        return builtins.get(SCHEME_RECIPES[name])
    for path in sorted(builtins.values()):
        scheme = read_yaml(path).get("scheme")
        if isinstance(scheme, dict) and scheme.get("name") == name:
            return path
    return None


def _python_call(function: str, head: str, params: dict[str, Any], tail: str = "") -> str:
    arguments = ", ".join([head, *(f"{key}={value!r}" for key, value in params.items())])
    return f"{function}({arguments}{tail})"


def entry_page(kind: str, name: str, paper: str, factory: Callable[..., Any]) -> str:
    """The page of one knowledge method (``kind="knowledge"``) or scheme (``kind="schemes"``)."""
    from mentor.docs.examples import MULTI_TEACHER, method_recipe_text, python_params

    skip = ("models",) if kind == "schemes" else ()
    parameters = _parameters(factory, skip)
    parts = [f"# {name}", "", f"**Paper:** {paper}", "", _module_doc(factory), "## Parameters", ""]
    rows = parameter_rows(factory, skip)
    parts += [_table(["parameter", "type", "default", "constraint"], rows) if rows else "None.", ""]
    own = docstring_markdown(inspect.unwrap(factory).__doc__)
    if own:
        parts += [own]
    parts += ["## Use", ""]
    if kind == "knowledge":
        params = python_params(name)
        teacher = "mentor.teachers.Ensemble([teacher0, teacher1])" if name in MULTI_TEACHER else "teacher"
        parts += ["A complete recipe on digits (save it as a file and `mentor run FILE`; `mentor paths MODEL` lists "
                  "the module paths of other models):", "", "```yaml", method_recipe_text(name), "```", "",
                  "The same in Python:", "", "```python",
                  f"plan = {_python_call('mentor.knowledge.create', repr(name), params)}",
                  f"result = mentor.distill({teacher}, student, data, plan, baseline=True)", "```", ""]
        return "\n".join(parts)
    recipe = _builtin_for_scheme(name)
    if recipe is not None:
        parts += [f"Built-in recipe `{recipe.stem}` (`mentor run {recipe.stem}`; `mentor recipes show {recipe.stem}` "
                  "prints it to start your own):", "", "```yaml", recipe.read_text(encoding="utf-8").strip(), "```", ""]
    if not all(_recipe_ready(annotation) for _, _, annotation in parameters):
        parts += ["Its parameters are Python objects: in Python, `mentor.distill(teacher, student, data, objective)` "
                  "runs it (a recipe's `teacher`, `student` and `knowledge` do the same).", ""]
        return "\n".join(parts)
    from mentor.recipes.load import read_yaml

    params = ((read_yaml(recipe).get("scheme") or {}).get("params") or {}) if recipe is not None else {}
    parts += ["In Python (the peers in the order the scheme expects):", "", "```python",
              _python_call("result = mentor.collaborate", f"{name!r}, peers, data", {},
                           f", params={params!r}, baseline=True"),
              "print(result.table())", "```", ""]
    return "\n".join(parts)


def _registry_pages(kind: str, title: str, intro: str, registry: Any) -> Pages:
    pages = {f"{ROOT}/{kind}/{entry.name}.md": entry_page(kind, entry.name, entry.summary, entry.obj)
             for entry in registry}
    rows = [[f"[{entry.name}]({entry.name}.md)", entry.summary] for entry in registry]
    pages[f"{ROOT}/{kind}/index.md"] = "\n".join([f"# {title}", "", intro, "", _table(["name", "paper"], rows), ""])
    return pages
PATHS_SHAPE = (1, 28, 28)
"""The inputs the models page lists module paths for (Fashion-MNIST's and MNIST's)."""


def _paths_table(name: str) -> str:
    from mentor.models import create, paths

    rows = [[_code(row.path), row.kind, "not run" if row.shape is None else _code(str(row.shape))]
            for row in paths(create(name, 10, PATHS_SHAPE), PATHS_SHAPE)]
    return _table(["module path", "module", "output (one sample)"], rows)


def models_page() -> str:
    from mentor.models import MODELS

    parts = ["# Models", "", "Registered models (`mentor list models`), each with its module paths. In a recipe: "
             "`{model: NAME, options: {...}}`; "
             "`num_classes` and `input_shape` come from the dataset. Any `nn.Module` can also be used: from Python "
             "pass it directly, from a recipe name a factory as `package.module:callable` (called with the options, "
             "plus `num_classes` / `input_shape` when it accepts them; it imports code, so it runs only with "
             "`--trust-code`, unless an installed package declares it in the `mentor.models` entry point group: "
             "see [Security](../security.md)).", ""]
    parts += [_table(["name", "description"], [[f"[{e.name}](#{_slug(e.name)})", e.summary] for e in MODELS]), ""]
    for entry in MODELS:
        target = getattr(entry.obj, "func", entry.obj)
        parts += [f"## {entry.name}", "", entry.summary, ""]
        rows = parameter_rows(entry.obj, skip=("input_shape", "num_classes"))
        parts += [_table(["option", "type", "default", "constraint"], rows) if rows else "No options.", ""]
        parts += [docstring_markdown(target.__doc__)]
        parts += [f"Module paths with the default options, for inputs {PATHS_SHAPE} and 10 classes (what taps and "
                  f"methods name; `mentor paths {entry.name} --input-shape C,H,W` for other inputs):", "",
                  _paths_table(entry.name), ""]
    return "\n".join(parts)


def datasets_page() -> str:
    from mentor.data import DATASETS, load
    from mentor.data.folder import EXPECTED

    parts = ["# Datasets", "", "Registered datasets (`mentor list datasets`). In a recipe: `data: {name: NAME, ...}` "
             "(see [recipe keys](recipe.md#data)); in Python: `mentor.data.load(NAME, ...)`. Nothing is downloaded "
             "during a run except the one-time, checksummed fetch described for a dataset below.", "",
             _table(["name", "source"], [[_code(e.name), e.summary] for e in DATASETS]), "",
             "## Your own data", "",
             f"`data: {{name: folder, root: DIR}}` (or a directory as the name) reads {EXPECTED}. "
             "Inputs are `uint8` (scaled to [0, 1]) or floating point, `(N, D)`, `(N, H, W)` or `(N, C, H, W)`; "
             "labels are integers `0..K-1` of shape `(N,)`.", "", "## mentor.data.load", "",
             docstring_markdown(load.__doc__)]
    return "\n".join(parts)


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    for action in parser._actions:  # noqa: SLF001 - argparse has no public API to walk sub-commands
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}  # noqa: SLF001
            return [(name, helps.get(name, ""), sub) for name, sub in action.choices.items()]
    return []


def cli_page() -> str:
    from mentor.cli import EXIT_USAGE, parser

    main = parser()
    parts = ["# Command line", "", f"`{main.prog}`: {main.description} Every user mistake prints one line "
             f"`mentor: error: ...` and exits with status {EXIT_USAGE}.", ""]
    commands = sorted(_subcommands(main))
    parts += [_table(["command", "what it does"], [[f"[{name}](#{_slug('mentor ' + name)})", text]
                                                   for name, text, _ in commands]), ""]
    for name, text, sub in commands:
        usage = argparse.HelpFormatter(sub.prog, width=100)
        usage.add_usage(sub.usage, sub._actions, sub._mutually_exclusive_groups)  # noqa: SLF001
        parts += [f"## mentor {name}", "", text, "", "```", usage.format_help().strip(), "```", ""]
        rows = []
        for action in sub._actions:  # noqa: SLF001
            if isinstance(action, argparse._HelpAction):  # noqa: SLF001
                continue
            names = ", ".join(action.option_strings) or (action.metavar or action.dest)
            default = "" if action.default in (None, [], False, argparse.SUPPRESS) or not action.option_strings \
                else _code(str(action.default))
            choices = ", ".join(str(c) for c in action.choices) if action.choices else ""
            rows.append([_code(str(names)), action.help or "", default, choices])
        if rows:
            parts += [_table(["argument", "meaning", "default", "choices"], rows), ""]
    return "\n".join(parts)
def pages() -> Pages:
    """Every generated page, by path relative to the documentation root."""
    from mentor.knowledge import KNOWLEDGE
    from mentor.schemes import SCHEMES

    generated: Pages = {
        f"{ROOT}/recipe.md": recipe_page(),
        f"{ROOT}/cli.md": cli_page(),
        f"{ROOT}/models.md": models_page(),
        f"{ROOT}/datasets.md": datasets_page(),
    }
    generated.update(_registry_pages(
        "knowledge", "Knowledge methods", "Knowledge construction and optimization (survey §3), one file of "
        "`mentor/knowledge/` per method, registered under its paper's name. Use one in a recipe with "
        "`knowledge: {method: NAME, params: {...}}`, or in Python with `mentor.knowledge.create(NAME, ...)`.",
        KNOWLEDGE))
    generated.update(_registry_pages(
        "schemes", "Learning schemes", "Who teaches whom, and whose parameters step (survey §5): offline, online "
        "(`mentor/schemes/online/`) and self-learning (`mentor/schemes/selflearning/`). Use one in a recipe with "
        "`scheme: {name: NAME, params: {...}}` and `peers: [...]`; `offline` is what a distillation recipe "
        "(`teacher`, `student`, `knowledge`) runs.", SCHEMES))
    index = ["# Reference", "", "Generated from the code by `mentor docs` (the registries, the recipe schema, the "
             "argument parser and the docstrings).", "",
             _table(["page", "what it lists"], [
                 ["[Recipe keys](recipe.md)", "every recipe key: type, default, constraint, meaning; built-in recipes"],
                 ["[Command line](cli.md)", "every `mentor` command and its arguments"],
                 ["[Knowledge methods](knowledge/index.md)", f"{len(KNOWLEDGE.names())} methods, one page each"],
                 ["[Learning schemes](schemes/index.md)", f"{len(SCHEMES.names())} schemes, one page each"],
                 ["[Models](models.md)", "the model zoo and its options"],
                 ["[Datasets](datasets.md)", "built-in datasets and your own files"]]), ""]
    generated[f"{ROOT}/index.md"] = "\n".join(index)
    return generated


def navigation(generated: Pages) -> list[Any]:
    """The site navigation of the generated pages (MkDocs ``nav`` format)."""
    def entries(kind: str) -> list[Any]:
        names = sorted(p.removeprefix(f"{ROOT}/{kind}/").removesuffix(".md") for p in generated
                       if p.startswith(f"{ROOT}/{kind}/") and not p.endswith("/index.md"))
        return [f"{ROOT}/{kind}/index.md"] + [{name: f"{ROOT}/{kind}/{name}.md"} for name in names]

    return [{"Overview": f"{ROOT}/index.md"}, {"Recipe keys": f"{ROOT}/recipe.md"}, {"Command line": f"{ROOT}/cli.md"},
            {"Knowledge methods": entries("knowledge")}, {"Learning schemes": entries("schemes")},
            {"Models": f"{ROOT}/models.md"}, {"Datasets": f"{ROOT}/datasets.md"}]


def write(out: Path) -> list[Path]:
    """Write every page under ``out`` (``out/reference/...`` without the ``reference/`` prefix); the files written.

    A file whose content is unchanged is not rewritten (so ``mkdocs serve`` does not rebuild in a loop).
    """
    written = []
    for relative, text in pages().items():
        path = Path(out) / relative.removeprefix(f"{ROOT}/")
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
_GENERATED: Pages = {}


def on_config(config: Any) -> Any:
    """Replace the nav entry whose value is ``reference/index.md`` by the generated reference section."""
    _GENERATED.clear()
    _GENERATED.update(pages())

    def expand(items: list[Any]) -> list[Any]:
        result = []
        for item in items:
            if isinstance(item, dict):
                (title, value), = item.items()
                if value == f"{ROOT}/index.md":
                    item = {title: navigation(_GENERATED)}
                elif isinstance(value, list):
                    item = {title: expand(value)}
            result.append(item)
        return result

    if config.get("nav"):
        config["nav"] = expand(config["nav"])
    return config


def on_files(files: Any, config: Any) -> Any:
    """Add the generated pages to the site; files under ``reference/`` on disk (a ``mentor docs`` copy, maybe
    stale) are left out: the generated pages are the only truth there."""
    from mkdocs.structure.files import File

    for stale in [file for file in files if file.src_uri.startswith(f"{ROOT}/")]:
        files.remove(stale)
    for relative, text in (_GENERATED or pages()).items():
        files.append(File.generated(config, relative, content=text))
    return files
