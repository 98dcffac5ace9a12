"""The page "Use Mentor in your own training code" runs, its blocks in order with epochs cut to 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.test_snippets import ROOT, blocks, shortened

PAGE = ROOT / "docs" / "your-trainer.md"


def test_the_three_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for extra in ("transformers", "accelerate", "pytorch_lightning"):
        pytest.importorskip(extra)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__snippets__"}
    code = blocks(PAGE, "python")
    assert len(code) == 3
    for index, block in enumerate(code):
        exec(compile(shortened(block), f"{PAGE.name} block {index + 1}", "exec"), namespace)  # noqa: S102
    assert namespace["trainer"].state.global_step > 0  # the Hugging Face student was trained
    assert namespace["callback"].objective.bound  # the Lightning callback computed its loss
