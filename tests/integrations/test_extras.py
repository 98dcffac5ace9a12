"""The integrations' libraries are optional: ``import mentor`` never loads them, and a missing one is one line."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys

import pytest

from mentor.errors import MentorError


def test_import_mentor_loads_no_optional_library() -> None:
    code = ("import sys, mentor; loaded = [m for m in ('transformers', 'pytorch_lightning', 'lightning') "
            "if m in sys.modules]; print(loaded)")
    printed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert printed.strip() == "[]"


@pytest.mark.parametrize(("module", "library", "extra"), [
    ("mentor.integrations.hf", "transformers", "mentor[hf]"),
    ("mentor.integrations.lightning", "pytorch_lightning", "mentor[lightning]"),
])
def test_a_missing_extra_is_named(module: str, library: str, extra: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, library, None)  # importing it now raises ImportError
    monkeypatch.delitem(sys.modules, module, raising=False)
    with pytest.raises(MentorError, match=re.escape(f"pip install '{extra}'")) as error:
        importlib.import_module(module)
    assert "\n" not in str(error.value)
