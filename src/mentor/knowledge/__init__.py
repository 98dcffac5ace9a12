"""Knowledge construction (survey §3.1, Table 2): one file per method, registered by its paper's name."""

from mentor.knowledge import fitnet, kd  # noqa: F401  (registration)
from mentor.knowledge.base import KNOWLEDGE, Method, Plan, Stage, as_stages, combine, create, parameters, register

__all__ = ["KNOWLEDGE", "Method", "Plan", "Stage", "as_stages", "combine", "create", "parameters", "register"]
