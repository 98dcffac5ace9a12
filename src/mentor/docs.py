"""Reference pages generated from Mentor's own sources, so the documentation cannot drift from the code.

Every page is built from what the library registers and declares: the recipe schema (pydantic fields:
key, type, default, constraints, description), the registries of knowledge methods, schemes, models and
datasets (name, paper, module docstring with the equation, parameters from the factory's signature), the
built-in recipes and the ``mentor`` argument parser. Nothing here is written by hand twice.

Two ways to use it:

- ``mentor docs --out DIR`` (:func:`write`) writes the pages as Markdown files;
- ``mkdocs build`` runs the hooks at the end of this module (through ``docs/hooks.py``): the pages are
  added to the site in memory and listed in its navigation, so no generated file is ever committed.
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
import textwrap
import types
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import annotated_types
import pydantic
import yaml

Pages = dict[str, str]
"""Page path relative to the documentation root (``reference/knowledge/kd.md``) -> Markdown text."""

ROOT = "reference"
_CONSTRAINTS: dict[type, tuple[str, str]] = {
    annotated_types.Gt: ("gt", "> {}"), annotated_types.Ge: ("ge", ">= {}"),
    annotated_types.Lt: ("lt", "< {}"), annotated_types.Le: ("le", "<= {}"),
    annotated_types.MinLen: ("min_length", "at least {} item(s)"),
    annotated_types.MaxLen: ("max_length", "at most {} item(s)"),
}


# ---------------------------------------------------------------- Markdown helpers

def _cell(text: object) -> str:
    """Text for one table cell: one line, pipes outside code spans escaped."""
    parts = str(text).replace("\n", " ").split("`")
    return "`".join(part.replace("|", "\\|") if index % 2 == 0 else part for index, part in enumerate(parts))


def _table(header: list[str], rows: Iterable[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def _code(value: str) -> str:
    """An inline code span that survives backticks inside ``value``."""
    return f"`` {value} ``" if "`" in value else f"`{value}`"


def _yaml_inline(value: Any) -> str:
    """``value`` as it would be written in a recipe (flow style, one line)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000, allow_unicode=True).strip()
    return text.removesuffix("...").strip()


def _slug(heading: str) -> str:
    """The anchor Python-Markdown's ``toc`` extension gives a heading (its default slugify)."""
    text = re.sub(r"[^\w\s-]", "", heading).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


_ROLE = re.compile(r":(?:class|func|meth|attr|data|mod|obj|exc):`(~?)([^`]+)`")
_SECTION = re.compile(r"^(Args|Arguments|Returns|Raises|Attributes):\s*$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _literal_blocks(lines: list[str]) -> list[str]:
    """reST literal blocks (a line ending in ``::``, then an indented block) as fenced code blocks."""
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line.rstrip().endswith("::"):
            out.append(line)
            continue
        out.append(line.rstrip()[:-1])
        block: list[str] = []
        while index < len(lines) and (not lines[index].strip() or _indent(lines[index]) > _indent(line)):
            block.append(lines[index])
            index += 1
        while block and not block[-1].strip():
            block.pop()
        out += ["", "```", *textwrap.dedent("\n".join(block)).strip("\n").splitlines(), "```", ""]
    return out


def docstring_markdown(text: str | None) -> str:
    """A Google-style docstring as Markdown: Sphinx roles as code spans, reST literal blocks as fenced code,
    and ``Args:``-style sections as a bold heading with one bullet per entry (continuation lines joined)."""
    if not text:
        return ""
    text = _ROLE.sub(lambda m: f"`{m.group(2).split('.')[-1] if m.group(1) else m.group(2)}`", inspect.cleandoc(text))
    out: list[str] = []
    section = False
    for line in _literal_blocks(text.splitlines()):
        match = _SECTION.match(line)
        if match:
            out += ["", f"**{match.group(1)}**", ""]
            section = True
        elif section and line.startswith(" ") and _indent(line) > 4 and out[-1].startswith("- "):
            out[-1] += " " + line.strip()
        elif section and line.startswith(" "):
            out.append("- " + line.strip())
        else:
            section = False  # a blank or unindented line ends the section
            out.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip() + "\n"


# ---------------------------------------------------------------- types, defaults, constraints

def _constraints(metadata: Iterable[Any]) -> list[str]:
    """Readable bounds from pydantic/annotated-types metadata (``Gt(0)`` -> ``> 0``)."""
    found: list[str] = []
    for item in metadata:
        if isinstance(item, pydantic.fields.FieldInfo):
            found += _constraints(item.metadata)
            continue
        for kind, (attribute, template) in _CONSTRAINTS.items():
            if isinstance(item, kind):
                found.append(template.format(getattr(item, attribute)))
    return found


def type_name(annotation: Any) -> str:
    """A short, readable name of a type annotation (``float | None``, ``list[int]``, ``'sgd' | 'adam'``)."""
    if annotation is inspect.Parameter.empty:
        return "any"
    if isinstance(annotation, str):
        return annotation
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin is typing.Literal:
        return " | ".join(repr(arg) for arg in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join("None" if arg is type(None) else type_name(arg) for arg in args)
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(type_name(arg) for arg in args)}]" if args else name
    if annotation is Any:
        return "any"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation).replace("typing.", ""))


def _hints(function: Callable[..., Any]) -> dict[str, Any]:
    """Resolved annotations (``Annotated`` kept); the raw ones where they cannot be resolved."""
    target = inspect.unwrap(getattr(function, "func", function))  # functools.partial: its function's hints
    if inspect.isclass(target):
        target = target.__init__
    try:
        return typing.get_type_hints(target, include_extras=True)
    except Exception:  # noqa: BLE001 - a forward reference that cannot be resolved: show it as written
        return dict(getattr(target, "__annotations__", {}))


def _parameters(function: Callable[..., Any], skip: Iterable[str]) -> list[tuple[str, Any, Any]]:
    """(name, default or ``inspect.Parameter.empty``, resolved annotation) of each keyword parameter."""
    hints, skipped = _hints(function), set(skip)
    signature = inspect.signature(function).parameters.items()
    return [(name, p.default, hints.get(name, p.annotation)) for name, p in signature
            if name not in skipped and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def parameter_rows(function: Callable[..., Any], skip: Iterable[str] = ()) -> list[list[str]]:
    """One row per keyword parameter of ``function``: name, type, default, constraints."""
    rows = []
    for name, default, annotation in _parameters(function, skip):
        metadata = typing.get_args(annotation)[1:] if typing.get_origin(annotation) is typing.Annotated else ()
        shown = "required" if default is inspect.Parameter.empty else _code(_yaml_inline(_plain(default)))
        rows.append([_code(name), _code(type_name(annotation)), shown, ", ".join(_constraints(metadata))])
    return rows


def _plain(value: Any) -> Any:
    """Tuples as lists (as a recipe writes them); anything else unchanged or as its repr."""
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if isinstance(value, (list, dict, str, int, float, bool)) or value is None:
        return value
    return repr(value)


# ---------------------------------------------------------------- recipe schema

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


# ---------------------------------------------------------------- methods and schemes

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
    from mentor.recipes import builtin_recipes
    from mentor.recipes.load import read_yaml

    for path in builtin_recipes().values():
        scheme = read_yaml(path).get("scheme")
        if isinstance(scheme, dict) and scheme.get("name") == name:
            return path
    return None


def entry_page(kind: str, name: str, paper: str, factory: Callable[..., Any]) -> str:
    """The page of one knowledge method (``kind="knowledge"``) or scheme (``kind="schemes"``)."""
    skip = ("models",) if kind == "schemes" else ()
    parameters = _parameters(factory, skip)
    params = {key: "REQUIRED" if default is inspect.Parameter.empty else _plain(default)
              for key, default, _ in parameters}
    if kind == "knowledge":
        usage = {"knowledge": {"method": name, "params": params}}
        python = f'mentor.knowledge.create("{name}", ...)'
    else:
        usage = {"scheme": {"name": name, "params": params}}
        python = f'mentor.schemes.SCHEMES.create("{name}", models, ...)'
    parts = [f"# {name}", "", f"**Paper:** {paper}", "", _module_doc(factory), "## Parameters", ""]
    rows = parameter_rows(factory, skip)
    parts += [_table(["parameter", "type", "default", "constraint"], rows) if rows else "None.", ""]
    own = docstring_markdown(inspect.unwrap(factory).__doc__)
    if own:
        parts += [own]
    parts += ["## Use", ""]
    if all(_recipe_ready(annotation) for _, _, annotation in parameters):
        snippet = yaml.safe_dump(usage, sort_keys=False, default_flow_style=None, allow_unicode=True).strip()
        parts += ["In a recipe (defaults shown):", "", "```yaml", snippet, "```", ""]
    else:
        parts += ["Its parameters are Python objects, so it is created from Python, not named in a recipe.", ""]
    parts += [f"In Python: `{python}` with the same keyword parameters.", ""]
    recipe = _builtin_for_scheme(name) if kind == "schemes" else None
    if recipe is not None:
        parts += [f"Built-in recipe `{recipe.stem}` (`mentor run {recipe.stem}`):", "", "```yaml",
                  recipe.read_text(encoding="utf-8").strip(), "```", ""]
    return "\n".join(parts)


def _registry_pages(kind: str, title: str, intro: str, registry: Any) -> Pages:
    pages = {f"{ROOT}/{kind}/{entry.name}.md": entry_page(kind, entry.name, entry.summary, entry.obj)
             for entry in registry}
    rows = [[f"[{entry.name}]({entry.name}.md)", entry.summary] for entry in registry]
    pages[f"{ROOT}/{kind}/index.md"] = "\n".join([f"# {title}", "", intro, "", _table(["name", "paper"], rows), ""])
    return pages


# ---------------------------------------------------------------- models, datasets, command line

def models_page() -> str:
    from mentor.models import MODELS

    parts = ["# Models", "", "Registered models (`mentor list models`). In a recipe: `{model: NAME, options: {...}}`; "
             "`num_classes` and `input_shape` come from the dataset. Any `nn.Module` can also be used: from Python "
             "pass it directly, from a recipe name a factory as `package.module:callable` (called with the options, "
             "plus `num_classes` / `input_shape` when it accepts them).", ""]
    parts += [_table(["name", "description"], [[f"[{e.name}](#{_slug(e.name)})", e.summary] for e in MODELS]), ""]
    for entry in MODELS:
        target = getattr(entry.obj, "func", entry.obj)
        parts += [f"## {entry.name}", "", entry.summary, ""]
        rows = parameter_rows(entry.obj, skip=("input_shape", "num_classes"))
        parts += [_table(["option", "type", "default", "constraint"], rows) if rows else "No options.", ""]
        parts += [docstring_markdown(target.__doc__)]
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


# ---------------------------------------------------------------- all pages

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


# ---------------------------------------------------------------- MkDocs hooks (loaded by docs/hooks.py)

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
