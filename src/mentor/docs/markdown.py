"""Markdown helpers: table cells, code, docstrings turned into Markdown."""

from __future__ import annotations

import inspect
import re
import textwrap
from collections.abc import Iterable
from typing import Any

import yaml


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
