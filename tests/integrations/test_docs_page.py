"""The page "Use Mentor in your own training code" runs, its blocks in order with epochs cut to 1.

A block that needs an extra which is not installed is left out (``mentor[hf]``, ``mentor[lightning]``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.test_snippets import ROOT, blocks, needs_missing_extra, shortened

PAGE = ROOT / "docs" / "your-trainer.md"


def test_the_three_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__snippets__"}
    code = blocks(PAGE, "python")
    assert len(code) == 3
    ran = [not needs_missing_extra(block) for block in code]
    for index, block in enumerate(code):
        if ran[index]:
            exec(compile(shortened(block), f"{PAGE.name} block {index + 1}", "exec"), namespace)  # noqa: S102
    assert namespace["objective"].last.total.isfinite()  # the plain loop computed its loss
    if ran[1]:
        assert namespace["trainer"].state.global_step > 0  # the Hugging Face student was trained
    if ran[2]:
        assert namespace["callback"].objective.bound  # the Lightning callback computed its loss
