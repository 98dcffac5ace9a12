"""A digest of what a model computes, as far as it can be hashed: the key of the teacher-output cache.

Beyond the weights and buffers (the ``state_dict``) it covers, for the model and every submodule:

- its class (module and qualified name) and the code of its ``forward`` (bytecode, constants, names and the
  values its closure holds), so a wrapper whose ``forward`` was edited between two runs gets a new key;
- its plain attributes: numbers, strings, tensors that are not buffers, containers of them, functions by their
  code and other objects by their type (a normalisation constant kept as ``self.scale = 0.5`` is part of the key);
- its forward hooks and pre-hooks, by code.

What no digest can see (a module-level global read inside ``forward``, a helper function it calls) is caught by the
cache's probe check, which compares cached outputs with the live teacher's before they are used
(:mod:`mentor.teachers.cache`).
"""

from __future__ import annotations

import enum
import functools
import hashlib
import types
import weakref
from typing import Any

import numpy as np
import torch
from torch import nn

_INTERNAL = frozenset(vars(nn.Module()))  # torch's own bookkeeping attributes of every module
_HOOKS = ("_forward_hooks", "_forward_pre_hooks")
_DIGESTS: dict[int, tuple[int, str]] = {}  # id(tensor) -> (version, digest), forgotten with the tensor


def tensor_digest(tensor: torch.Tensor, remember: bool = False) -> str:
    """SHA-256 of a tensor's dtype, shape and bytes.

    With ``remember`` (for large datasets hashed at every fit) the digest is kept while the tensor lives
    and its version counter is unchanged, so an in-place edit is noticed.
    """
    known = _DIGESTS.get(id(tensor))
    if known is not None and known[0] == tensor._version:
        return known[1]
    digest = hashlib.sha256(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
    digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().data)  # no copy
    value = digest.hexdigest()
    if remember:
        if id(tensor) not in _DIGESTS:
            weakref.finalize(tensor, _DIGESTS.pop, id(tensor), None)
        _DIGESTS[id(tensor)] = (tensor._version, value)
    return value


def model_digest(model: nn.Module) -> str:
    """SHA-256 of ``model``'s weights, buffers, classes, ``forward`` code, plain attributes and hooks."""
    digest = hashlib.sha256(f"torch {torch.__version__}".encode())
    for name, value in sorted(model.state_dict().items()):
        digest.update(f"{name}={tensor_digest(value)};".encode())
    for path, module in model.named_modules():
        digest.update(f"[{path}]{type(module).__module__}.{type(module).__qualname__}".encode())
        _feed(digest, type(module).forward, set())
        for name, value in sorted(vars(module).items()):
            if name not in _INTERNAL:
                digest.update(f".{name}=".encode())
                _feed(digest, value, set())
        for hooks in _HOOKS:
            for hook in getattr(module, hooks).values():
                digest.update(hooks.encode())
                _feed(digest, hook, set())
    return digest.hexdigest()


def _feed(digest: Any, value: Any, seen: set[int]) -> None:
    """Add a stable description of ``value`` to ``digest`` (never a memory address)."""
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes, enum.Enum)):
        digest.update(f"{type(value).__name__}:{value!r};".encode())
    elif isinstance(value, (torch.dtype, torch.device, torch.Size)):
        digest.update(f"{value};".encode())
    elif isinstance(value, torch.Tensor):
        digest.update(f"tensor:{tensor_digest(value)};".encode())
    elif isinstance(value, np.ndarray):
        digest.update(f"array:{value.dtype}{value.shape}".encode() + np.ascontiguousarray(value).tobytes())
    elif id(value) in seen:
        digest.update(b"(cycle)")
    elif isinstance(value, (list, tuple, set, frozenset, dict)):
        seen.add(id(value))
        digest.update(f"{type(value).__name__}(".encode())
        if isinstance(value, dict):
            for key, item in sorted(value.items(), key=lambda pair: repr(pair[0])):
                _feed(digest, key, seen)
                _feed(digest, item, seen)
        else:
            for item in sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value:
                _feed(digest, item, seen)
        digest.update(b")")
    elif isinstance(value, (types.FunctionType, types.MethodType, functools.partial, types.CodeType)):
        seen.add(id(value))
        _feed_code(digest, value, seen)
    elif isinstance(value, nn.Module):  # held outside the module tree: its class and weights
        seen.add(id(value))
        digest.update(f"module:{type(value).__module__}.{type(value).__qualname__}".encode())
        for name, tensor in sorted(value.state_dict().items()):
            digest.update(f"{name}={tensor_digest(tensor)};".encode())
    else:
        digest.update(f"object:{type(value).__module__}.{type(value).__qualname__};".encode())


def _feed_code(digest: Any, function: Any, seen: set[int]) -> None:
    if isinstance(function, types.MethodType):
        function = function.__func__
    if isinstance(function, functools.partial):
        _feed(digest, (function.args, function.keywords), seen)
        function = function.func
    code = function if isinstance(function, types.CodeType) else getattr(function, "__code__", None)
    if code is None:  # a builtin: its name is all there is
        digest.update(f"builtin:{getattr(function, '__qualname__', type(function).__qualname__)};".encode())
        return
    digest.update(code.co_code + repr(code.co_names).encode())
    for constant in code.co_consts:
        _feed(digest, constant, seen)
    for cell in getattr(function, "__closure__", None) or ():
        try:
            _feed(digest, cell.cell_contents, seen)
        except ValueError:  # an empty cell
            digest.update(b"(empty)")
