"""A complete, runnable recipe for every knowledge method and scheme page (the test suite runs each one).

Knowledge methods run on one standard pair on digits (8×8 images, 10 classes): the teacher ``cnn`` with
stages of 8 and 16 channels (``stage1`` → (8, 4, 4), ``stage2`` → (16, 2, 2)) and the student
``cnn-tiny`` (``stage1`` → (4, 4, 4), ``stage2`` → (8, 2, 2)); :data:`METHOD_PARAMS` names the layers a
method needs on them. A scheme page shows the scheme's built-in recipe; ``offline`` is what a
distillation recipe runs (``quickstart``).
"""

from __future__ import annotations

from typing import Any

import yaml

PAIR: dict[str, Any] = {
    "data": {"name": "digits", "validation": 0.15},
    "teacher": {"model": "cnn", "options": {"channels": [8, 16]},
                "train": {"epochs": 20, "optimizer": {"name": "adam", "lr": 0.003}, "scheduler": {"name": "cosine"}}},
    "student": {"model": "cnn-tiny"},
}
"""The data, teacher and student of every method's page recipe."""

TRAIN: dict[str, Any] = {"epochs": 20, "optimizer": {"name": "adam", "lr": 0.01}, "scheduler": {"name": "cosine"}}

REGRESSION_PAIR: dict[str, Any] = {
    "data": {"name": "diabetes", "validation": 0.15},
    "teacher": {"model": "mlp-medium", "train": {"epochs": 60, "batch_size": 32, "optimizer": {"name": "adam",
                                                                                           "lr": 0.01}}},
    "student": {"model": "mlp-two-head"},
}
"""The data, teacher and student of a regression method's page recipe (diabetes, float targets)."""

REGRESSION_METHODS = {"outlier-rejection"}

_STAGES = ["stage1", "stage2"]
_PRE_ACTIVATIONS = ["stage1.relu1:input", "stage2.relu1:input"]

METHOD_PARAMS: dict[str, dict[str, Any]] = {
    "ab": {"student": _PRE_ACTIVATIONS, "teacher": _PRE_ACTIVATIONS, "init_epochs": 2},
    "at": {"student": _STAGES, "teacher": _STAGES},
    "crd": {"feature_dim": 32, "negatives": 256},
    "fitnet": {"hint": "stage2", "guided": "stage2", "hint_epochs": 2},
    # FSP matrices of equal size: (input, student stage2) and (input, teacher stage1) are both 1 x 8
    "fsp": {"student": [["stage1.conv1:input", "stage2"]], "teacher": [["stage1.conv1:input", "stage1"]],
            "fsp_epochs": 2},
    "ft": {"student": "stage2", "teacher": "stage2", "paraphraser_epochs": 2},
    "general": {"ce": 0.1, "kl": {"temperature": 4.0, "weight": 0.9},
                "distances": [{"student": "stage2", "teacher": "stage2", "adapter": "conv1x1", "weight": 0.5}]},
    "internal": {"layers": [{"student": "stage1", "teacher": "stage1"}, {"student": "stage2", "teacher": "stage2"}],
                 "layer_epochs": 2},
    "nst": {"student_layer": "stage2", "teacher_layer": "stage2"},
    "outlier-rejection": {"threshold": 2.0, "teacher_head": "teacher_head"},
    "sp": {"student_layers": _STAGES, "teacher_layers": _STAGES},
    "sskd": {"head_epochs": 2},
    "vid": {"student_layers": _STAGES, "teacher_layers": _STAGES},
}
"""The parameters a method's page recipe sets (the layers of the standard pair; short first stages)."""

TEACHERS: list[dict[str, Any]] = [
    {**PAIR["teacher"], "subset": {"start": 0.0, "stop": 0.6}},
    {"model": "cnn-small", "subset": {"start": 0.4, "stop": 1.0}, "train": PAIR["teacher"]["train"]},
]
"""The two teachers of a method with several teachers: each on 60% of the training split (``stage2`` of both)."""

MULTI_TEACHER: dict[str, dict[str, Any]] = {
    "multi-teacher": {"weighting": {"name": "adaptive", "params": {"feature": "stage2"}}},
    "relative-similarity": {"knowledge": {"student": "stage2", "teacher_features": ["stage2", "stage2"]}},
}
"""Methods with several teachers: their page recipe has ``teachers:`` (and a ``weighting:``), and these params."""



def python_params(name: str) -> dict[str, Any]:
    """The keyword arguments of ``mentor.knowledge.create`` that match a method's page recipe."""
    if name not in MULTI_TEACHER:
        return METHOD_PARAMS.get(name, {})
    extra = MULTI_TEACHER[name]
    weighting = extra.get("weighting")
    named = {"weighting": weighting["name"], "weighting_params": weighting["params"]} if weighting else {}
    return {"teachers": len(TEACHERS), **named, **extra.get("knowledge", {})}


SCHEME_RECIPES = {"offline": "quickstart"}
"""Schemes whose page shows a built-in recipe of another name (the rest: the recipe named as the scheme)."""


def method_recipe(name: str) -> dict[str, Any]:
    """The complete recipe of a knowledge method's page."""
    params = METHOD_PARAMS.get(name, {})
    if name in REGRESSION_METHODS:
        return {"name": f"{name}-diabetes", "description": f"{name} on diabetes: an MLP teacher, a two-head MLP "
                "student", "seeds": [0, 1, 2], **REGRESSION_PAIR, "knowledge": {"method": name, "params": params},
                "train": {**REGRESSION_PAIR["teacher"]["train"]}}
    if name in MULTI_TEACHER:
        extra = MULTI_TEACHER[name]
        pair = {"data": PAIR["data"], "teachers": TEACHERS, "student": PAIR["student"]}
        weighting = {"weighting": extra["weighting"]} if "weighting" in extra else {}
        return {"name": f"{name}-digits", "description": f"{name} on digits: two small CNN teachers on overlapping "
                "parts of the data, a tiny CNN student", "seeds": [0, 1, 2], **pair, **weighting,
                "knowledge": {"method": name, "params": extra.get("knowledge", {})}, "train": TRAIN}
    return {"name": f"{name}-digits", "description": f"{name} on digits: a small CNN teacher, a tiny CNN student",
            "seeds": [0, 1, 2], **PAIR, "knowledge": {"method": name, "params": params}, "train": TRAIN}


class _Plain(yaml.SafeDumper):
    """YAML without anchors: a list used twice is written twice."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def method_recipe_text(name: str) -> str:
    """:func:`method_recipe` as YAML, as a user would save it."""
    return yaml.dump(method_recipe(name), Dumper=_Plain, sort_keys=False, default_flow_style=None, width=100).strip()


def scheme_recipe(name: str) -> str | None:
    """The built-in recipe a scheme's page shows (its name), if there is one."""
    from mentor.recipes import builtin_recipes

    recipe = SCHEME_RECIPES.get(name, name)
    return recipe if recipe in builtin_recipes() else None
