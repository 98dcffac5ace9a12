"""Knowledge construction (survey §3.1, Table 2): one file per method, registered by its paper's name.

Every module of this package is imported here so that its ``@register`` runs: adding a method is
adding one file.
"""

import importlib
import pkgutil

from mentor.knowledge.base import KNOWLEDGE, Method, Plan, Stage, as_stages, combine, create, parameters, register

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["KNOWLEDGE", "Method", "Plan", "Stage", "as_stages", "combine", "create", "parameters", "register"]
