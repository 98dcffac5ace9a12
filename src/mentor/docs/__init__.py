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

from mentor.docs.markdown import docstring_markdown
from mentor.docs.pages import ROOT, Pages, navigation, on_config, on_files, pages, schema_sections, write
from mentor.docs.signatures import type_name

__all__ = [
    "ROOT", "Pages", "docstring_markdown", "navigation", "on_config", "on_files", "pages",
    "schema_sections", "type_name", "write",
]
