"""Models from other packages, by prefix: ``hf:<model id or folder>``, ``hf-config``, ``timm:<name>``,
``torchvision:<name>``.

Nothing downloads at run time:

- ``hf:<id or folder>`` builds ``transformers.AutoModelForSequenceClassification.from_pretrained`` with
  ``num_labels`` = the run's classes and ``local_files_only=True``: a folder with ``config.json`` and weights,
  or a model id already in the local Hugging Face cache. A new classification head is initialised when the
  checkpoint has none (an encoder such as MiniLM) or one for another number of classes. Options are passed to
  ``from_pretrained`` (``attn_implementation: eager`` makes attentions tappable).
- ``hf-config`` builds the same class from a configuration, with fresh weights: ``model_type`` (default
  ``bert``) and any configuration field as options, e.g. a 2-layer BERT of width 32:
  ``{model_type: bert, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 64}``.
- ``timm:<name>`` calls ``timm.create_model(name, pretrained=False, num_classes=..., in_chans=...)``; trained
  weights come from a file on disk with ``checkpoint_path: <file>``.
- ``torchvision:<name>`` calls ``torchvision.models.get_model(name, weights=None, num_classes=...)``.

Each needs its optional extra (``pip install 'mentor[hf]'``, ``'mentor[timm]'``, ``'mentor[torchvision]'``); the
core never imports them, and a missing one is a one-line error naming the extra. The Hugging Face models are
adapted by :func:`mentor.outputs.select_output`: they take named tensors (``input_ids``, ``attention_mask``)
and return their logits ``(B, K)``; ``hidden_states.N`` and ``attentions.N`` are tapped by name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

from torch import nn

from mentor.errors import MentorError, clip
from mentor.outputs import select_output

EXTRAS = {"hf": ("transformers", "hf"), "hf-config": ("transformers", "hf"), "timm": ("timm", "timm"),
          "torchvision": ("torchvision", "torchvision")}
"""Model prefix -> (the package it imports, the extra that installs it)."""
PREFIXES = ("hf", "timm", "torchvision")


def requires(package: str, extra: str, spec: str) -> ModuleType:
    """Import ``package``; a one-line error naming the extra when it is missing or cannot load."""
    try:
        return importlib.import_module(package)
    except ImportError as error:
        raise MentorError(f"model {spec!r} needs the optional package {package!r}, which is not installed "
                          f"({clip(str(error))}); install it with: pip install 'mentor[{extra}]'") from None
    except Exception as error:  # noqa: BLE001 - a broken install (a CUDA build against a CPU torch) is one line too
        raise MentorError(f"model {spec!r} needs the optional package {package!r}, which fails to import "
                          f"({type(error).__name__}: {clip(str(error))}); reinstall it with: "
                          f"pip install 'mentor[{extra}]'") from None


def is_ecosystem(spec: str) -> bool:
    """Whether ``spec`` names a model of another package (``hf:...``, ``timm:...``, ``torchvision:...``)."""
    prefix, colon, name = spec.partition(":")
    return bool(colon) and prefix in PREFIXES


def builder(spec: str) -> Callable[..., nn.Module]:
    """The builder of ``hf:<id>``, ``timm:<name>`` or ``torchvision:<name>`` (called by the model factory)."""
    prefix, _, name = spec.partition(":")
    if not name.strip():
        raise MentorError(f"model {spec!r} names no model after {prefix + ':'!r}; e.g. {prefix}:"
                          + {"hf": "path/to/model-folder", "timm": "resnet18", "torchvision": "resnet18"}[prefix])
    return partial({"hf": _hf, "timm": _timm, "torchvision": _torchvision}[prefix], name.strip())


def _hf(name: str, num_classes: int, input_shape: Sequence[int] = (), **options: Any) -> nn.Module:
    transformers = requires("transformers", "hf", f"hf:{name}")
    place = Path(name).expanduser()
    source = str(place) if place.exists() else name
    try:
        model = transformers.AutoModelForSequenceClassification.from_pretrained(
            source, **{"num_labels": num_classes, "ignore_mismatched_sizes": True, **options, "local_files_only": True})
    except OSError as error:
        raise MentorError(f"model 'hf:{name}': no Hugging Face model {name!r} on disk (nothing downloads; "
                          f"{clip(str(error).splitlines()[0])}); give a folder with config.json and weights, "
                          "or an id already in the local Hugging Face cache") from None
    return select_output(model)


def hf_config(num_classes: int, input_shape: Sequence[int] = (), model_type: str = "bert",
              **config: Any) -> nn.Module:
    """A ``transformers`` sequence classifier with fresh weights, from a configuration (see the module docstring).

    Args:
        num_classes: ``num_labels`` of the classification head.
        input_shape: the token sequence's shape ``(L,)`` (unused: the configuration sets the sizes).
        model_type: a ``transformers`` model type (``bert``, ``distilbert``, ``roberta``, ...).
        **config: configuration fields (``hidden_size``, ``num_hidden_layers``, ``vocab_size``...).
    """
    transformers = requires("transformers", "hf", "hf-config")
    try:
        settings = transformers.AutoConfig.for_model(model_type, num_labels=num_classes, **config)
    except ValueError as error:
        raise MentorError(f"The 'model_type' option of hf-config must be a transformers model type (bert, "
                          f"distilbert, roberta, ...). Got {model_type!r} instead ({clip(str(error))}).") from None
    return select_output(transformers.AutoModelForSequenceClassification.from_config(settings))


def _timm(name: str, num_classes: int, input_shape: Sequence[int] = (3,), **options: Any) -> nn.Module:
    timm = requires("timm", "timm", f"timm:{name}")
    if options.pop("pretrained", False):
        raise MentorError(f"model 'timm:{name}': pretrained weights would download; give the file instead: "
                          "options: {checkpoint_path: path/to/weights.pth}")
    channels = int(input_shape[0]) if len(input_shape) == 3 else 3
    return timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=channels, **options)


def _torchvision(name: str, num_classes: int, input_shape: Sequence[int] = (3,), **options: Any) -> nn.Module:
    torchvision = requires("torchvision", "torchvision", f"torchvision:{name}")
    if options.get("weights") is not None:
        raise MentorError(f"model 'torchvision:{name}': weights would download; load trained weights with "
                          "teacher.checkpoint instead and leave options.weights out")
    options.pop("weights", None)
    return torchvision.models.get_model(name, weights=None, num_classes=num_classes, **options)
