"""Capture intermediate tensors of any ``nn.Module`` by module path, without editing the model.

A :class:`Taps` is a context manager that installs forward hooks on the named submodules and removes
them on exit, whatever happens inside. Paths are the dotted names of ``model.named_modules()``
(``"features.3"``, ``"layer4.1.conv2"``); a path that is not in the model fails when the tap is built,
naming the nearest valid paths.

Example:
    >>> with Taps(model, ["features.3"]) as taps:
    ...     logits = model(x)
    >>> taps["features.3"].shape
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Literal

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from mentor.batch import Inputs, call
from mentor.errors import MentorError, nearest
from mentor.outputs import capture, keys_of, pick

Where = Literal["output", "input"]
_COMPILED = "_mentor_compiled"  # a key of a model's __dict__: not a submodule, so state dicts and paths stay


def resolve(model: nn.Module, path: str, role: str = "model") -> nn.Module:
    """The submodule of ``model`` at ``path``; a :class:`MentorError` with the nearest paths otherwise."""
    modules = dict(model.named_modules())
    if path in modules and path != "":
        return modules[path]
    names = [name for name in modules if name]
    close = nearest(path, names)
    hint = f"; nearest: {', '.join(close)}" if close else ""
    shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    raise MentorError(f"unknown module path {path!r} in {role}{hint} (paths: {shown})")


def _first_tensor(value: object) -> torch.Tensor:
    """The tensor a hook captured: the value itself or the first tensor of a tuple/list."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)):
        for item in value:
            if isinstance(item, torch.Tensor):
                return item
    raise MentorError(f"a tapped module returned {type(value).__name__}, not a tensor; tap a module that returns one")


class Taps:
    """Record the output (or input) of submodules by path while the context is open.

    Args:
        model: any ``nn.Module``.
        paths: dotted module paths to capture (an empty list records nothing).
        where: ``"output"`` (the module's result) or ``"input"`` (its first positional argument,
            e.g. a pre-activation tensor when tapping a ReLU).
        role: how the model is named in error messages ("student", "teacher").
    """

    def __init__(self, model: nn.Module, paths: Iterable[str], where: Where = "output", role: str = "model") -> None:
        if where not in ("output", "input"):
            raise MentorError(f"The 'where' parameter of Taps must be 'output' or 'input'. Got {where!r} instead.")
        self.paths = list(dict.fromkeys(paths))
        self.modules = {path: resolve(model, path, role) for path in self.paths}
        self.where = where
        self.captured: dict[str, torch.Tensor] = {}
        self._handles: list[RemovableHandle] = []

    def __enter__(self) -> dict[str, torch.Tensor]:
        self.captured = {}
        for path, module in self.modules.items():
            self._handles.append(module.register_forward_hook(self._hook(path)))
        return self.captured

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, path: str):  # noqa: ANN202 - hook signature is torch's
        def record(module: nn.Module, args: tuple[object, ...], output: object) -> None:
            self.captured[path] = _first_tensor(args if self.where == "input" else output)

        return record


def run_with_taps(
    model: nn.Module, inputs: Inputs, taps: Iterable[str] = (), role: str = "model"
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Run ``model(inputs)`` and return its logits with the tapped tensors by path.

    ``inputs`` is a tensor or named tensors (passed as keyword arguments). A forward that returns a tuple, a
    dict or a ``ModelOutput`` gives its logits by :func:`mentor.outputs.pick`'s default. A path ending in
    ``":input"`` records that module's input instead of its output, so a module can be tapped on both sides (e.g.
    the pre-activation entering a ReLU); a path that is no module path is read from the forward's result
    (``hidden_states.2``, ``attentions.0``, any key of it).
    """
    taps = tuple(taps)
    if not taps:
        return pick(call(model.__dict__.get(_COMPILED, model), inputs), role=role), {}
    modules = {path for path, _ in model.named_modules() if path}
    in_model = [path for path in taps if path.removesuffix(":input") in modules]
    from_result = [path for path in taps if path not in in_model]
    if from_result and any(path.endswith(":input") for path in from_result):
        resolve(model, next(p for p in from_result if p.endswith(":input")).removesuffix(":input"), role)
    outputs_of = [path for path in in_model if not path.endswith(":input")]
    inputs_of = [path.removesuffix(":input") for path in in_model if path.endswith(":input")]
    out_taps, in_taps = Taps(model, outputs_of, "output", role), Taps(model, inputs_of, "input", role)
    held, handles = capture(model, from_result) if from_result else ({}, [])
    try:
        with out_taps as captured_out, in_taps as captured_in:
            result = call(model, inputs)
    finally:
        for handle in handles:
            handle.remove()
    features = dict(captured_out)
    features.update({f"{path}:input": value for path, value in captured_in.items()})
    features.update({path: _from_result(model, held.get("result"), path, role) for path in from_result})
    return pick(result, role=role), features


def _from_result(model: nn.Module, result: object, path: str, role: str) -> torch.Tensor:
    """The output tap ``path`` of the full forward ``result``; a path in neither lists both kinds of names."""
    if not keys_of(result):
        resolve(model, path, role)  # a model that returns one tensor: only module paths exist
    try:
        return pick(result, path, role)
    except MentorError as error:
        names = [name for name, _ in model.named_modules() if name]
        close = nearest(path, names)
        hint = f"; nearest module paths: {', '.join(close)}" if close else ""
        if hasattr(model, "config") and path.split(".")[0] not in ("hidden_states", "attentions"):
            hint += "; a Hugging Face model also gives hidden_states.N and attentions.N"
        raise MentorError(f"{str(error).rstrip('.')}; it is no module path of the {role} either{hint}") from None


def _plain_sequential(module: nn.Module) -> bool:
    """An ``nn.Sequential`` whose forward is Sequential's own: its children run one after the other."""
    return isinstance(module, nn.Sequential) and type(module).forward is nn.Sequential.forward


def prefix(model: nn.Module, path: str) -> nn.Sequential | None:
    """The part of ``model`` that computes the tensor at ``path``, as a Sequential of ``model``'s own modules.

    Defined when every module on the way down to ``path`` is a plain ``nn.Sequential`` (the children run
    in order): the result holds the children before ``path`` at each level and the module at ``path``
    itself (not for ``"path:input"``). It shares the weights of ``model``: the sub-network an early exit
    at ``path`` really needs. ``None`` for any other model, whose forward Mentor cannot cut.

    Raises:
        MentorError: when ``path`` is not a module path of ``model``.
    """
    target = path.removesuffix(":input")
    resolve(model, target)
    layers: list[nn.Module] = []
    module = model
    for part in target.split("."):
        if not _plain_sequential(module):
            return None
        children = list(module.named_children())
        index = [name for name, _ in children].index(part)
        layers += [child for _, child in children[:index]]
        module = children[index][1]
    if not path.endswith(":input"):
        layers.append(module)
    return nn.Sequential(*layers)


@contextlib.contextmanager
def compiled(models: Iterable[nn.Module]) -> Iterator[None]:
    """Within the block, :func:`run_with_taps` runs ``models`` through ``torch.compile`` when it taps nothing.

    A tapped pass stays eager: its forward hooks are added for one call, and a compiled graph would not
    run them. The compiled wrappers are kept out of the models' submodules (state-dict keys and module
    paths do not change) and dropped when the block ends.
    """
    unique = list({id(model): model for model in models}.values())
    for model in unique:
        model.__dict__[_COMPILED] = torch.compile(model)
    try:
        yield
    finally:
        for model in unique:
            model.__dict__.pop(_COMPILED, None)
