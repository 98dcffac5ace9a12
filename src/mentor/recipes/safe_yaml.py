"""YAML read safely: ``safe_load`` (no code, no custom tags) plus the limits a hostile file needs.

- A key given twice in one mapping is an error: YAML requires unique keys, and PyYAML would silently keep
  the last one.
- Aliases may not add more than :data:`ALIAS_BUDGET` values to a document (a "billion laughs" file of a few
  hundred bytes otherwise expands to 10^9 of them) nor refer to themselves.
- Nesting deeper than the parser can follow is refused, not a ``RecursionError``.
"""

from __future__ import annotations

from typing import Any

import yaml

from mentor.errors import MentorError

ALIAS_BUDGET = 10_000
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser when PyYAML has it: the same rules, faster
MERGE = "tag:yaml.org,2002:merge"


def parse(text: str, what: str) -> Any:
    """The value of the YAML document ``text``; ``what`` names it in errors (``"recipe 'a.yaml'"``).

    Raises:
        yaml.YAMLError: when ``text`` is not valid YAML (the caller says where).
        MentorError: for a duplicate key, an alias bomb, a self-referring alias or nesting too deep.
    """
    loader = LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        walk = _Walk(what)
        if walk.size(node) - len(walk.sizes) > ALIAS_BUDGET:
            raise MentorError(f"{what} expands its aliases (*name) by more than {ALIAS_BUDGET:,} values; write the "
                              "values out instead of nesting aliases")
        return loader.construct_document(node)
    except RecursionError:
        raise MentorError(f"{what} nests lists or mappings too deeply to read; flatten it") from None
    finally:
        loader.dispose()


class _Walk:
    """Counts the values a node graph expands to (a shared node once per use; each node is visited once), checking
    keys on the way."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.sizes: dict[int, int] = {}
        self.open: set[int] = set()

    def size(self, node: yaml.Node) -> int:
        known = self.sizes.get(id(node))
        if known is not None:
            return known
        if id(node) in self.open:
            raise MentorError(f"{self.what} has an alias that refers to itself (line {node.start_mark.line + 1}); "
                              "write the value out")
        self.open.add(id(node))
        known = 1 + sum(self.size(child) for child in _children(node, self.what))
        self.open.discard(id(node))
        self.sizes[id(node)] = known
        return known


def _children(node: yaml.Node, what: str) -> list[yaml.Node]:
    """The key and value nodes below ``node``; a key given twice is an error."""
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if not isinstance(node, yaml.MappingNode):
        return []
    seen: dict[tuple[str, str], int] = {}
    for key, _ in node.value:
        if isinstance(key, yaml.ScalarNode) and key.tag != MERGE:
            line = key.start_mark.line + 1
            if (key.tag, key.value) in seen:
                raise MentorError(f"{what} gives the key {key.value[:60]!r} twice (lines {seen[key.tag, key.value]} "
                                  f"and {line}); keep one")
            seen[key.tag, key.value] = line
    return [child for pair in node.value for child in pair]
