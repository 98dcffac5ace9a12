"""Cutting a model into consecutive blocks at module paths, for methods that run a network block by block.

The contract: a model can be cut after the module at ``path`` when the model and every module on the way
down to ``path`` is a plain ``nn.Sequential`` (its forward runs its children one after the other, as the
zoo's CNNs and MLPs do). Cutting after ``stage1`` and ``stage2`` of a three-stage CNN gives three blocks:
``[stage1]``, ``[stage2]`` and ``[stage3, pool, flatten, head]``; running them in order is the model's
forward. A path may reach inside a child that is itself a plain Sequential (``stage2.relu1``). The blocks
hold the model's own modules (no copies): training a block trains the model.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from mentor.errors import MentorError, nearest

_CUT = object()  # marks a boundary in the flattened list of modules


def plain_sequential(module: nn.Module) -> bool:
    """An ``nn.Sequential`` whose forward is Sequential's own: its children run one after the other."""
    return isinstance(module, nn.Sequential) and type(module).forward is nn.Sequential.forward


def _flatten(module: nn.Module, boundaries: list[list[str]], prefix: str, key: str, role: str,
             order: list[str]) -> list[object]:
    """``module``'s children in order, expanded where a boundary lies inside, with a cut after each boundary."""
    children = dict(module.named_children())
    for parts in boundaries:
        if parts[0] not in children:
            path = prefix + ".".join(parts)
            names = [prefix + name for name, _ in module.named_modules() if name]
            close = nearest(path, names)
            hint = f"; nearest: {', '.join(close)}" if close else ""
            raise MentorError(f"{key}: {path!r} is not a module path of the {role}{hint}; `mentor paths` lists them")
    items: list[object] = []
    for name, child in children.items():
        inside = [parts[1:] for parts in boundaries if parts[0] == name and len(parts) > 1]
        if inside:
            if not plain_sequential(child):
                raise MentorError(f"{key}: the {role} cannot be cut inside {prefix + name!r}, a "
                                  f"{type(child).__name__} (only a plain nn.Sequential runs its children in "
                                  f"order); cut after {prefix + name!r} itself or after one of its parents")
            items += _flatten(child, inside, f"{prefix}{name}.", key, role, order)
        else:
            items.append(child)
        if [name] in boundaries:
            items.append(_CUT)
            order.append(prefix + name)
    return items


def split(model: nn.Module, boundaries: Sequence[str], key: str, role: str) -> list[nn.Sequential]:
    """Cut ``model`` after each module path of ``boundaries`` (forward order): ``len(boundaries) + 1`` blocks.

    Args:
        model: the network to cut (see the module docstring for what can be cut).
        boundaries: module paths, shallowest first.
        key: how the setting is named in error messages (a recipe key or a parameter).
        role: how the model is named in error messages ("teacher", "student").

    Raises:
        MentorError: naming ``key`` when a path is not in the model, lies inside a module that is not a plain
            ``nn.Sequential``, repeats, is out of forward order, or leaves an empty block.
    """
    if not plain_sequential(model):
        raise MentorError(f"{key}: the {role} is a {type(model).__name__}, not a plain nn.Sequential whose children "
                          "run in order, so it cannot be cut into blocks; use a zoo model (cnn, mlp) or an "
                          "nn.Sequential")
    if len(set(boundaries)) != len(boundaries):
        raise MentorError(f"{key}: each module path may appear once; got {list(boundaries)}")
    order: list[str] = []
    items = _flatten(model, [path.split(".") for path in boundaries], "", key, role, order)
    if order != list(boundaries):
        raise MentorError(f"{key}: list the module paths in forward order ({', '.join(order)}); "
                          f"got {', '.join(boundaries)}")
    blocks: list[list[nn.Module]] = [[]]
    for item in items:
        if item is _CUT:
            blocks.append([])
        else:
            blocks[-1].append(item)  # type: ignore[arg-type]
    if not blocks[-1]:
        raise MentorError(f"{key}: {boundaries[-1]!r} is the last module of the {role}, which leaves no block after "
                          "it; cut before the classifier")
    if not all(blocks):
        raise MentorError(f"{key}: two cuts of the {role} fall at the same place ({', '.join(boundaries)}), which "
                          "leaves an empty block; give one path per block boundary")
    return [nn.Sequential(*modules) for modules in blocks]
