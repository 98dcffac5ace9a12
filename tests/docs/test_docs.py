"""The documentation: pages generated from the registries, schema and parser; the MkDocs site builds strictly."""

from __future__ import annotations

import importlib.util
import inspect
import os
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from mentor import docs
from mentor.cli import main, parser
from mentor.data import DATASETS
from mentor.docs.markdown import _cell
from mentor.knowledge import KNOWLEDGE
from mentor.models import MODELS
from mentor.recipes import Recipe
from mentor.schemes import SCHEMES

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reference")
    assert main(["docs", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize(("kind", "registry"), [("knowledge", KNOWLEDGE), ("schemes", SCHEMES)])
def test_every_method_and_scheme_has_a_page_with_its_paper_equation_and_parameters(
    pages: Path, kind: str, registry: typing.Any
) -> None:
    index = (pages / kind / "index.md").read_text(encoding="utf-8")
    for entry in registry:
        page = (pages / kind / f"{entry.name}.md").read_text(encoding="utf-8")
        assert page.startswith(f"# {entry.name}\n")
        assert entry.summary and entry.summary in page, entry.name
        module_doc = sys.modules[inspect.unwrap(entry.obj).__module__].__doc__
        assert module_doc.strip().splitlines()[0] in page, entry.name  # the docstring that states the equation
        skip = 1 if kind == "schemes" else 0
        for name in list(inspect.signature(entry.obj).parameters)[skip:]:
            assert f"| `{name}` |" in page, (entry.name, name)
        assert f"[{entry.name}]({entry.name}.md)" in index


def test_parameter_rows_show_type_default_and_constraint(pages: Path) -> None:
    page = (pages / "knowledge" / "kd.md").read_text(encoding="utf-8")
    default = inspect.signature(KNOWLEDGE.get("kd")).parameters["temperature"].default
    assert f"| `temperature` | `float` | `{default}` | > 0 |" in page
    assert "| `alpha` | `float` |" in page and ">= 0, <= 1" in page
    assert "method: kd" in page  # the recipe snippet


def test_recipe_page_lists_every_key_of_the_schema(pages: Path) -> None:
    page = (pages / "recipe.md").read_text(encoding="utf-8")
    for path, section in docs.schema_sections(Recipe):
        heading = f"## {path or 'top level'}\n"
        assert heading in page, path
        body = page.split(heading, 1)[1].split("\n## ", 1)[0]
        for name, field in section.model_fields.items():
            assert f"| `{name}` |" in body, f"{path}.{name}"
            if field.description:
                assert field.description.replace("|", "\\|") in body
    epochs = Recipe.model_fields["train"].default_factory().epochs
    assert f"| `epochs` | `int` | `{epochs}` | > 0 |" in page
    assert "| `name` | `'sgd' | 'adam' | 'adamw'` | `adam` |" in page
    assert "## teacher.train.optimizer" in page and "## peers[]" in page


def test_cli_models_and_datasets_pages_cover_everything(pages: Path) -> None:
    cli = (pages / "cli.md").read_text(encoding="utf-8")
    commands = next(a for a in parser()._actions if hasattr(a, "choices") and isinstance(a.choices, dict)).choices
    for name, sub in commands.items():
        assert f"## mentor {name}\n" in cli
        for action in sub._actions:
            if action.option_strings and "--help" not in action.option_strings:
                assert f"`{', '.join(action.option_strings)}`" in cli, (name, action.option_strings)
    models = (pages / "models.md").read_text(encoding="utf-8")
    assert all(f"## {entry.name}\n" in models for entry in MODELS)
    tiny = list(MODELS.get("mlp-tiny").keywords["hidden"])  # a size's own default, not the class's
    assert f"| `hidden` | `Sequence[int]` | `{tiny}` |" in models.split("## mlp-tiny\n", 1)[1]
    datasets = (pages / "datasets.md").read_text(encoding="utf-8")
    assert all(f"| `{entry.name}` | {entry.summary} |" in datasets for entry in DATASETS)


def test_writing_again_leaves_unchanged_pages_untouched(tmp_path: Path) -> None:
    first = docs.write(tmp_path)
    old = 1_000_000_000
    for path in first:
        os.utime(path, ns=(old, old))
    assert docs.write(tmp_path) == first
    assert all(path.stat().st_mtime_ns == old for path in first)


def test_docs_out_must_be_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    target = tmp_path / "file.md"
    target.write_text("x")
    assert main(["docs", "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mentor: error:") and len(err.strip().splitlines()) == 1


def test_navigation_lists_every_generated_page() -> None:
    config = docs.on_config({"nav": [{"Home": "index.md"}, {"Reference": "reference/index.md"}]})
    flat: list[str] = []

    def walk(items: list) -> None:
        for item in items:
            value = next(iter(item.values())) if isinstance(item, dict) else item
            if isinstance(value, list):
                walk(value)
            else:
                flat.append(value)

    walk(config["nav"])
    assert flat[0] == "index.md"
    assert sorted(flat[1:]) == sorted(docs.pages())


def test_docstring_markdown_converts_sections_roles_and_literal_blocks() -> None:
    text = '''Title line.

    See :class:`~mentor.losses.Objective` and :func:`mentor.data.load`. Example::

        code(x)
        more(y)

    Args:
        first: the first
            argument, continued.
        second: the second.
    '''
    markdown = docs.docstring_markdown(text)
    assert "See `Objective` and `mentor.data.load`. Example:\n\n```\ncode(x)\nmore(y)\n```" in markdown
    assert "**Args**\n\n- first: the first argument, continued.\n- second: the second." in markdown


def test_type_names_and_table_cells() -> None:
    assert docs.type_name(typing.Optional[int]) == "int | None"  # noqa: UP045 - the typing spelling on purpose
    assert docs.type_name(int | None) == "int | None"
    assert docs.type_name(typing.Literal["a", "b"]) == "'a' | 'b'"
    assert docs.type_name(typing.Annotated[float, "meta"]) == "float"
    assert docs.type_name(list[dict[str, int]]) == "list[dict[str, int]]"
    assert _cell("a | b `c | d`\nnext") == "a \\| b `c | d` next"


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="mkdocs is not installed")
def test_mkdocs_build_strict(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(ROOT / "docs", project / "docs", ignore=shutil.ignore_patterns("reference", "__pycache__"))
    shutil.copy(ROOT / "mkdocs.yml", project / "mkdocs.yml")
    stale = project / "docs" / "reference" / "knowledge"  # an old `mentor docs` copy: the generated pages win
    stale.mkdir(parents=True)
    (stale / "kd.md").write_text("# kd\n\nSTALE PAGE\n")
    (stale / "renamed-method.md").write_text("# gone\n")
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          capture_output=True, text=True, cwd=project, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for kind, registry in (("knowledge", KNOWLEDGE), ("schemes", SCHEMES)):
        for entry in registry:
            assert (site / "reference" / kind / entry.name / "index.html").is_file(), entry.name
    assert "STALE PAGE" not in (site / "reference" / "knowledge" / "kd" / "index.html").read_text(encoding="utf-8")
    assert not (site / "reference" / "knowledge" / "renamed-method").exists()
    assert (site / "reference" / "recipe" / "index.html").is_file() and not (site / "hooks.py").exists()
