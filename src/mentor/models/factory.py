"""The model factory: a registered name, a ``package.module:callable`` factory, or an ``nn.Module``."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from torch import nn

from mentor.errors import MentorError, clip, shown, unknown
from mentor.models import ecosystem
from mentor.models.cnn import CNN
from mentor.models.mlp import MLP
from mentor.models.multi_head import multi_head_cnn, multi_head_mlp
from mentor.models.trust import entry_points, load_entry_point, load_factory
from mentor.models.two_head import two_head_mlp
from mentor.outputs import select_output
from mentor.registry import Registry

Builder = Callable[..., nn.Module]
MODELS: Registry[Builder] = Registry("model")

_SIZES: dict[str, tuple[type[nn.Module], dict[str, Any], str]] = {
    "mlp-tiny": (MLP, {"hidden": (16,)}, "MLP, one hidden layer of 16"),
    "mlp-small": (MLP, {"hidden": (64,)}, "MLP, one hidden layer of 64"),
    "mlp-medium": (MLP, {"hidden": (256, 256)}, "MLP, two hidden layers of 256"),
    "mlp-large": (MLP, {"hidden": (1024, 1024)}, "MLP, two hidden layers of 1024"),
    "mlp-hinton-teacher": (MLP, {"hidden": (1200, 1200), "dropout": 0.5}, "MLP 1200-1200 with dropout (Hinton 2015)"),
    "mlp-hinton-student": (MLP, {"hidden": (800, 800)}, "MLP 800-800 (Hinton 2015)"),
    "cnn-tiny": (CNN, {"channels": (4, 8)}, "CNN, 2 stages of 4-8 channels"),
    "cnn-small": (CNN, {"channels": (16, 32)}, "CNN, 2 stages of 16-32 channels"),
    "cnn-medium": (CNN, {"channels": (32, 64, 128)}, "CNN, 3 stages of 32-64-128 channels"),
    "cnn-large": (CNN, {"channels": (64, 128, 256), "depth": 2}, "CNN, 3 stages of 2 convs, 64-128-256 channels"),
}
for _name, (_cls, _defaults, _summary) in _SIZES.items():
    MODELS.register(_name, _summary)(partial(_cls, **_defaults))
MODELS.register("mlp", "MLP with chosen hidden widths (hidden: [...], dropout)")(MLP)
MODELS.register("cnn", "CNN with chosen stage widths (channels: [...], depth, dropout)")(CNN)
MODELS.register("mlp-two-head", "MLP body (hidden: [...]) under a ground-truth head and a teacher head "
                                "(Takamoto 2020's regression student)")(two_head_mlp)
MODELS.register("cnn-multi-head", "CNN body (channels: [...], depth) under one head per task (heads: {task: "
                                  "outputs}; MuST's multi-task student)")(multi_head_cnn)
MODELS.register("mlp-multi-head", "MLP body (hidden: [...]) under one head per task (heads: {task: outputs})")(
    multi_head_mlp)


def _call(
    builder: Builder, spec: str, num_classes: int, input_shape: Sequence[int], options: dict[str, Any]
) -> nn.Module:
    """Call ``builder`` with the options it accepts, passing num_classes / input_shape where it takes them."""
    target = builder.func if isinstance(builder, partial) else builder
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        raise MentorError(f"model {spec!r} has no inspectable signature; name a Python function or class") from None
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    for key in options:
        if key not in signature.parameters and not accepts_any:
            valid = [n for n in signature.parameters if n not in ("num_classes", "input_shape")]
            raise MentorError(f"unknown option {key!r} of model {spec!r} (valid: {', '.join(valid) or 'none'})")
    arguments = dict(options)
    for key, value in (("num_classes", num_classes), ("input_shape", tuple(input_shape))):
        if key in signature.parameters or accepts_any:
            arguments.setdefault(key, value)
    try:
        model = builder(**arguments)
    except MentorError as error:
        raise MentorError(f"model {spec!r}: {error}") from None
    except Exception as error:  # noqa: BLE001 - a user's factory failing is reported, not dumped
        raise MentorError(f"model {spec!r} could not be built with {shown(sorted(arguments))}: "
                          f"{type(error).__name__}: {clip(str(error))}") from None
    if not isinstance(model, nn.Module):
        raise MentorError(f"model factory {spec!r} returned {type(model).__name__}, not an nn.Module")
    return model


def resolve(spec: str, trust_code: bool = False) -> Builder:
    """The builder of a model name: registered, declared by a package's ``mentor.models`` entry point, or (with
    ``trust_code``) any ``package.module:callable`` (see :mod:`mentor.models.trust`)."""
    if ecosystem.is_ecosystem(spec):  # hf:..., timm:..., torchvision:..., hf-config: another package's models
        return ecosystem.builder(spec)
    if spec == "hf-config":
        return ecosystem.hf_config
    if ":" in spec:
        return load_factory(spec, trust_code)
    if spec in MODELS:
        return MODELS.get(spec)
    declared = load_entry_point(spec)
    if declared is None:
        raise unknown("model", spec, [*MODELS.names(), "hf-config", *entry_points()])
    return declared


def create(
    spec: str | nn.Module,
    num_classes: int = 10,
    input_shape: Sequence[int] = (1, 28, 28),
    *,
    trust_code: bool = False,
    output: str | int | None = None,
    **options: Any,
) -> nn.Module:
    """Build a model.

    Args:
        spec: a registered name (``mentor list models``), a model an installed package declares in the
            ``mentor.models`` entry point group, ``"package.module:callable"`` (called with the options, plus
            ``num_classes``/``input_shape`` if it accepts them; runs code, so only with ``trust_code``), or an
            ``nn.Module`` (returned as it is).
        num_classes: output width.
        input_shape: per-sample input shape.
        trust_code: consent to import and run a ``package.module:callable`` that no package declares.
        output: the entry of the forward's result that holds the logits, for a model that returns a tuple, a
            dict or a ``ModelOutput`` (a key, an index or a dotted path; see :mod:`mentor.outputs`): installed
            with :func:`mentor.outputs.select_output`. ``None`` leaves the model as it is built (``hf:`` models
            already give their ``logits``).
        **options: constructor options (``hidden=[128]``, ``channels=[8, 16]``, ``dropout=0.2``...).

    Returns:
        The model; one built from a name carries its recipe section as ``model.mentor_recipe``
        (``{"model": spec, "options": {...}}``), so a Python run can describe it in its ``recipe.yaml``.
    """
    if isinstance(spec, nn.Module):
        return spec if output is None else select_output(spec, output)
    if not isinstance(spec, str):
        raise MentorError("a model must be a name, 'package.module:callable' or an nn.Module; "
                          f"got {type(spec).__name__}")
    model = _call(resolve(spec, trust_code), spec, num_classes, input_shape, options)
    if output is not None:
        select_output(model, output)
    model.mentor_recipe = {"model": spec, "options": dict(options)}
    if output is not None:
        model.mentor_recipe["output"] = output
    return model


def count_parameters(model: nn.Module) -> int:
    """Number of parameters of ``model`` (trainable or not)."""
    return sum(parameter.numel() for parameter in model.parameters())
