"""What every integration shares: the objective from a method name, the logits of any model's result, a
teacher and a student run with their taps on whatever arguments the model takes, and an in-memory
teacher-output cache keyed by sample index.

Models of other libraries take several arguments (``input_ids=..., attention_mask=...``) and return
structures (a Hugging Face ``ModelOutput``, a tuple); Mentor's objective reads an
:class:`~mentor.batch.Outputs`: the logits ``(B, K)`` and the tapped tensors by module path.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

from mentor.batch import Outputs
from mentor.errors import MentorError, shown
from mentor.knowledge import create
from mentor.losses.objective import Objective
from mentor.losses.terms import Term
from mentor.outputs import pick
from mentor.taps import Taps

Method = str | Objective


def build_objective(method: Method, params: Mapping[str, Any] | None, owner: str) -> Objective:
    """A registered method created with ``params``, or an :class:`Objective` used as it is."""
    if isinstance(method, Objective):
        if params:
            raise MentorError(f"The 'params' parameter of {owner} applies to a method name; got both an Objective "
                              f"and params {shown(dict(params))}. Set the terms' parameters on the Objective instead.")
        return method
    if not isinstance(method, str):
        raise MentorError(f"The 'method' parameter of {owner} must be a method name (e.g. 'kd') or a "
                          f"mentor.Objective. Got {type(method).__name__} instead.")
    plan = create(method, **dict(params or {}))
    if not isinstance(plan, Objective):
        stages = ", ".join(stage.name for stage in plan)
        raise MentorError(f"method {method!r} trains in stages ({stages}); {owner} takes one objective: pass "
                          f"mentor.knowledge.create({method!r}, ...)[i].objective for the stage to train")
    return plan


def needs_bind(objective: Objective) -> bool:
    """Whether a term of ``objective`` checks shapes or builds trainable parts in ``bind``."""
    return not objective.bound and any(type(term).bind is not Term.bind for term in objective)


@contextlib.contextmanager
def tapped(model: nn.Module, paths: tuple[str, ...], role: str) -> Iterator[dict[str, torch.Tensor]]:
    """Record ``paths`` of ``model`` while the block runs (``"path:input"`` records a module's input)."""
    outputs_of = [path for path in paths if not path.endswith(":input")]
    inputs_of = [path.removesuffix(":input") for path in paths if path.endswith(":input")]
    features: dict[str, torch.Tensor] = {}
    with Taps(model, outputs_of, "output", role) as out, Taps(model, inputs_of, "input", role) as into:
        yield features
    features.update(out)
    features.update({f"{path}:input": value for path, value in into.items()})


def run_model(model: nn.Module, args: tuple[Any, ...], kwargs: Mapping[str, Any], taps: tuple[str, ...],
              role: str) -> Outputs:
    """``model(*args, **kwargs)`` with ``taps`` recorded, as :class:`Outputs` (autograd as the caller has it)."""
    with tapped(model, taps, role) as features:
        result = model(*args, **kwargs)
    return Outputs(pick(result, None, role), features)


def run_teacher(teacher: nn.Module, args: tuple[Any, ...], kwargs: Mapping[str, Any],
                taps: tuple[str, ...]) -> Outputs:
    """The frozen teacher's outputs under ``inference_mode``, cloned so that loss terms may keep them."""
    with torch.inference_mode():
        outputs = run_model(teacher, args, kwargs, taps, "teacher")
    return Outputs(outputs.logits.clone(), {path: value.clone() for path, value in outputs.features.items()})


def device_of(*values: Any) -> torch.device | None:
    """The device of the first tensor among ``values`` (searching mappings and sequences)."""
    for value in values:
        if isinstance(value, torch.Tensor):
            return value.device
        inner = value.values() if isinstance(value, Mapping) else value if isinstance(value, (tuple, list)) else ()
        found = device_of(*inner)
        if found is not None:
            return found
    return None


class OutputCache:
    """A teacher's outputs by sample index, on the CPU: each sample's row stored the first time it is seen.

    Valid only where a sample's inputs are the same at every visit (no random masking or augmentation);
    the integrations use it only when the user says so.
    """

    def __init__(self) -> None:
        self.rows: dict[int, Outputs] = {}

    def get(self, indices: torch.Tensor, device: torch.device) -> Outputs | None:
        """The stacked rows of ``indices`` on ``device``, or ``None`` unless every one is stored."""
        keys = [int(index) for index in indices.reshape(-1).tolist()]
        if not keys or any(key not in self.rows for key in keys):
            return None
        rows = [self.rows[key] for key in keys]
        try:
            logits = torch.stack([row.logits for row in rows]).to(device)
            features = {path: torch.stack([row.features[path] for row in rows]).to(device)
                        for path in rows[0].features}
        except RuntimeError:
            raise MentorError("cached teacher outputs of one batch differ in shape (padding to each batch's longest "
                              "sample?); pad every sample to one length, or turn the teacher cache off") from None
        return Outputs(logits, features)

    def put(self, indices: torch.Tensor, outputs: Outputs) -> None:
        """Store each sample's row of ``outputs`` under its index."""
        logits = outputs.logits.detach().cpu()
        features = {path: value.detach().cpu() for path, value in outputs.features.items()}
        for row, key in enumerate(indices.reshape(-1).tolist()):
            self.rows[int(key)] = Outputs(logits[row], {path: value[row] for path, value in features.items()})
