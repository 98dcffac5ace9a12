"""What a model's forward returned: the logits among a tuple, a dict or a ``transformers`` ``ModelOutput``.

Models from the ecosystem return more than logits: a Hugging Face classifier returns a ``ModelOutput`` (an
ordered dict: ``logits``, ``hidden_states``, ``attentions``), others a tuple ``(logits, features)`` or a dict.
Mentor picks the logits with an *output key*:

- ``None`` (the default): the ``logits`` entry when there is one, else the first element;
- a name (``"logits"``, ``"pooler_output"``) for a dict or ``ModelOutput``;
- an integer index for a tuple or list (``0``);
- a dotted path through nested results (``"hidden_states.2"``: the third entry of ``hidden_states``).

The same paths name *output taps*: a tap that is no module path of the model (``hidden_states.2``,
``attentions.0``) is read from the forward's result (:func:`mentor.taps.run_with_taps`). An unknown key fails
with the keys the result has.

:func:`select_output` fixes a model's output for every caller: it installs two hooks on the model's root
module (its weights, module paths and state-dict keys stay as they are): named tensors given as the only
argument are passed as keyword arguments (``model(batch)`` calls ``model(**batch)``), and the forward's result
is replaced by the tensor at the output key, so ``model(batch)`` returns logits ``(B, K)`` everywhere.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from mentor.errors import MentorError

OutputKey = str | int | None
_HOOK = "_mentor_output_hooks"  # a key of the model's __dict__: the handles of the hooks select_output installed


def keys_of(result: object) -> list[str]:
    """The keys (or indices) a forward result offers, present ones only (a ``ModelOutput`` drops ``None``)."""
    if isinstance(result, Mapping):
        return [str(key) for key, value in result.items() if value is not None]
    if isinstance(result, (tuple, list)):
        return [str(index) for index in range(len(result))]
    return []


def _step(value: object, part: str, path: str, role: str) -> object:
    """One step of a dotted path: a key of a mapping or an index of a sequence (a ``None`` entry is absent)."""
    found = None
    if isinstance(value, Mapping) and part in value:
        found = value[part]
    elif isinstance(value, (tuple, list)) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
        found = value[int(part)]
    if found is not None:
        return found
    available = keys_of(value)
    shown = ", ".join(available) if available else f"none: it is a {type(value).__name__}"
    raise MentorError(f"output {path!r} of the {role}: {part!r} is not in its forward's result "
                      f"(available: {shown}){_HINTS.get(path.split('.')[0], '')}")


_HINTS = {
    "attentions": "; a Hugging Face model returns attentions only with eager attention: build it with "
                  "attn_implementation: eager",
    "hidden_states": "; a Hugging Face model returns hidden_states when tapped (0 = embeddings, N = layer N)",
}


def pick(result: object, key: OutputKey = None, role: str = "model") -> torch.Tensor:
    """The tensor at ``key`` of a forward's ``result`` (see the module docstring for the default)."""
    if key is None:
        if isinstance(result, torch.Tensor):
            return result
        if isinstance(result, Mapping) and result.get("logits") is not None:
            key = "logits"
        elif keys_of(result):
            key = keys_of(result)[0]
        else:
            raise MentorError(f"the {role} returned {type(result).__name__}, not a tensor of logits; "
                              "give the output key that holds them (output: logits, or an index)")
    path = str(key)
    value = result
    for part in path.split("."):
        value = _step(value, part, path, role)
    if not isinstance(value, torch.Tensor):
        raise MentorError(f"output {path!r} of the {role} is a {type(value).__name__}, not a tensor; "
                          f"name one of its entries ({path}.0 ...)")
    return value


def check_key(key: object, where: str = "output") -> OutputKey:
    """``key`` when it is an output key: ``None``, a non-empty name or dotted path, or an integer index."""
    if key is None or (isinstance(key, int) and not isinstance(key, bool)):
        return key
    if isinstance(key, str) and key.strip() and all(part for part in key.split(".")):
        return key
    raise MentorError(f"The {where!r} parameter must be a key name ('logits'), an integer index (0) or a dotted "
                      f"path ('hidden_states.2'). Got {key!r} instead.")


def _keywords(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple, dict] | None:
    """Forward pre-hook: named tensors as the only argument become keyword arguments."""
    if len(args) == 1 and isinstance(args[0], Mapping):
        return (), {**args[0], **kwargs}
    return None


def _picked(key: OutputKey, module: nn.Module, args: tuple[Any, ...], result: object) -> torch.Tensor:
    """Forward hook: the tensor at ``key`` of the result."""
    return pick(result, key, type(module).__name__)


def select_output(model: nn.Module, output: OutputKey = None) -> nn.Module:
    """Make ``model(inputs)`` return the tensor at ``output`` of its forward's result, and take named tensors.

    Calling it again replaces the key. Returns ``model`` itself (hooks added, nothing else changed).

    Example:
        >>> select_output(bert_classifier)            # ModelOutput -> its logits (B, K)
        >>> select_output(two_output_model, 0)        # (logits, features) -> logits
    """
    key = check_key(output)
    for handle in model.__dict__.pop(_HOOK, ()):
        handle.remove()
    model.__dict__[_HOOK] = (
        model.register_forward_pre_hook(_keywords, with_kwargs=True),
        model.register_forward_hook(functools.partial(_picked, key)),
    )
    return model


def selected(model: nn.Module) -> bool:
    """Whether :func:`select_output` adapted ``model``."""
    return _HOOK in model.__dict__


def capture(model: nn.Module, keys: list[str]) -> tuple[dict[str, object], list[Any]]:
    """Hooks that keep the full forward result of ``model`` (under ``"result"``), before any output selection.

    Returns the dict they fill and the handles to remove. A Hugging Face model (one with a ``config``) is asked
    for its ``hidden_states``/``attentions`` when one of the output taps ``keys`` names them.
    """
    held: dict[str, object] = {}
    wanted = {part for part in ("hidden_states", "attentions") if any(k.split(".")[0] == part for k in keys)}

    def ask(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple, dict]:
        return args, {**kwargs, **{f"output_{part}": True for part in wanted}}

    def record(module: nn.Module, args: tuple[Any, ...], result: object) -> None:
        held.setdefault("result", result)

    handles = [model.register_forward_hook(record, prepend=True)]
    if wanted and hasattr(model, "config"):
        handles.append(model.register_forward_pre_hook(ask, with_kwargs=True))
    return held, handles
