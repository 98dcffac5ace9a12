"""MkDocs hooks: the reference pages generated from Mentor's registries, schema and parser (mentor.docs)."""

from mentor.docs import on_config, on_files

__all__ = ["on_config", "on_files"]
