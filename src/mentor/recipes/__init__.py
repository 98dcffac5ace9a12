"""Recipes: a typed schema, YAML loading with overrides, and the built-in recipes."""

from mentor.recipes.load import builtin_recipes, load_recipe, read_run_recipe, validate
from mentor.recipes.schema import Recipe

__all__ = ["Recipe", "builtin_recipes", "load_recipe", "read_run_recipe", "validate"]
