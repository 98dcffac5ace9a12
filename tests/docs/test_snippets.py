"""The code in README.md and the documentation runs: every Python block, recipe and quoted command; every
generated method and scheme page's recipe."""

from __future__ import annotations

import functools
import importlib.util
import re
import shlex
from pathlib import Path

import pytest
import yaml

from mentor.cli import main
from mentor.docs import pages
from mentor.docs.examples import method_recipe
from mentor.engine import latency
from mentor.knowledge import KNOWLEDGE
from mentor.pipelines import result
from mentor.recipes import load_recipe
from mentor.schemes import SCHEMES

ROOT = Path(__file__).resolve().parents[2]
FILES = ["README.md", *sorted(str(path.relative_to(ROOT)) for path in (ROOT / "docs").glob("*.md"))]
SHORT = ["--set", "seeds=[0]", "--set", "data.limit=120", "--set", "train.epochs=3", "--set", "latency_batch=8",
         "--quiet"]
"""A recipe run cut short: one seed, 120 samples, 3 epochs (room for a method's 2-epoch first stage)."""


EXTRAS = {"transformers": ("transformers", "accelerate"), "pytorch_lightning": ("pytorch_lightning",)}
"""A block importing one of these modules runs where its extra's packages are (mentor[hf], mentor[lightning])."""


def needs_missing_extra(code: str) -> bool:
    """Whether ``code`` imports a module of an extra whose packages are not all installed."""
    return any(re.search(rf"^(import|from) {module}\b", code, re.M) and
               any(importlib.util.find_spec(package) is None for package in packages)
               for module, packages in EXTRAS.items())


def blocks(path: Path, language: str) -> list[str]:
    """The fenced code blocks of one language in a Markdown file, in order."""
    text = path.read_text(encoding="utf-8")
    return [match.group(1) for match in re.finditer(rf"^```{language}\n(.*?)^```$", text, re.M | re.S)]


def shortened(code: str) -> str:
    """The same code with every epoch count cut to 1 (``epochs=30``, ``epochs = 10``): the same code paths."""
    code = re.sub(r"\bepochs( ?)=( ?)\d+", r"epochs\1=\g<2>1", code)
    return re.sub(r"(\bbatches, epochs = .*, )\d+$", r"\g<1>1", code, flags=re.M)


def test_python_blocks_run_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each file's blocks in order; a block already run word for word in an earlier file (the docs repeat
    the README's) is not run again, its names come from that run."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(result, "latency", functools.partial(latency, repeats=1, warmup=0))  # timing is not tested
    namespace: dict[str, object] = {"__name__": "__snippets__"}
    done: set[str] = set()
    for name in FILES:
        for index, code in enumerate(blocks(ROOT / name, "python")):
            if code not in done and not needs_missing_extra(code):
                exec(compile(shortened(code), f"{name} block {index + 1}", "exec"), namespace)  # noqa: S102
                done.add(code)
    assert len(done) >= 5


def _run(recipe: Path | str, tmp_path: Path, *extra: str) -> None:
    """``mentor run`` of a recipe, cut short (its teacher trained for one epoch)."""
    loaded = load_recipe(str(recipe))
    teacher = ["--set", "teacher.train.epochs=1"] if loaded.teacher is not None else []
    for index, item in enumerate(loaded.teachers or []):
        teacher += ["--set", f"teachers.{index}.train.epochs=1"] if item.train is not None else []
    assert main(["run", str(recipe), "--out", str(tmp_path / "run"), *SHORT, *teacher, *extra]) == 0


@pytest.mark.parametrize("name", [name for name in FILES if blocks(ROOT / name, "yaml")])
def test_recipe_blocks_run(name: str, tmp_path: Path) -> None:
    recipes = [yaml.safe_load(text) for text in blocks(ROOT / name, "yaml")]
    full = [recipe for recipe in recipes if "name" in recipe]
    assert full, "a recipe fragment needs a full recipe before it"
    for index, recipe in enumerate(recipes):
        whole = recipe if "name" in recipe else {**full[0], **recipe}  # a fragment: inside the first full recipe
        path = tmp_path / f"recipe{index}.yaml"
        path.write_text(yaml.safe_dump(whole), encoding="utf-8")
        _run(path, tmp_path / str(index))


@pytest.mark.parametrize("name", [name for name in FILES if blocks(ROOT / name, "text")])
def test_quoted_commands_print_what_the_page_says(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    for block in blocks(ROOT / name, "text"):
        command, *expected = block.strip().splitlines()
        if not command.startswith("$ mentor "):
            continue
        recipe = next((yaml.safe_load(text) for text in blocks(ROOT / name, "yaml") if "name" in text), None)
        Path("my-run.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
        main(shlex.split(command)[2:])
        printed = capsys.readouterr()
        for line in expected:
            assert line.split("...")[0] in printed.out + printed.err


def test_no_generated_page_leaves_a_placeholder() -> None:
    generated = pages()
    assert not [path for path, text in generated.items() if "REQUIRED" in text]
    for entry in KNOWLEDGE:
        page = generated[f"reference/knowledge/{entry.name}.md"]
        assert "```yaml\nname: " in page and f"mentor.knowledge.create({entry.name!r}" in page, entry.name
    for entry in SCHEMES:
        page = generated[f"reference/schemes/{entry.name}.md"]
        assert "Built-in recipe `" in page, entry.name
        assert entry.name == "offline" or f"mentor.collaborate({entry.name!r}, peers, data" in page, entry.name


@pytest.mark.parametrize("method", KNOWLEDGE.names())
def test_every_method_page_recipe_runs(method: str, tmp_path: Path) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(method_recipe(method)), encoding="utf-8")
    _run(path, tmp_path)


@pytest.mark.parametrize("scheme", SCHEMES.names())
def test_every_scheme_page_recipe_runs(scheme: str, tmp_path: Path) -> None:
    text = pages()[f"reference/schemes/{scheme}.md"]
    recipe = re.search(r"Built-in recipe `([^`]+)`", text).group(1)
    alone = "compare.student_alone=false" if scheme == "offline" else "compare.independent=false"
    _run(recipe, tmp_path, "--set", alone, "--set", "train.epochs=1")  # a scheme has no fixed first stages


def test_the_readme_states_the_quickstart_test_split_size() -> None:
    from mentor.data import load

    data = load_recipe("quickstart").data
    test = load(data.name, validation=data.validation, seed=0).test
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"the test split has {len(test)} images, so one image is\n{100 / len(test):.2f} points" in readme
