"""The module paths of a model, with what each module outputs for one sample: what taps and methods name.

>>> for row in paths(mentor.models.create("cnn-small", 10, (1, 28, 28)), (1, 28, 28)):
...     print(row.path, row.kind, row.shape)
stage1 Sequential (16, 14, 14)
stage1.conv1 Conv2d (16, 28, 28)
...
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from mentor.engine.evaluate import evaluating
from mentor.errors import MentorError
from mentor.report.table import render


@dataclass(frozen=True)
class ModulePath:
    """One submodule: its dotted path, its class name and the shape of its output for one sample (``None``
    when the forward pass does not call it, or when it returns no tensor)."""

    path: str
    kind: str
    shape: tuple[int, ...] | None


def _shape(value: object) -> tuple[int, ...] | None:
    if isinstance(value, (tuple, list)):
        value = next((item for item in value if isinstance(item, torch.Tensor)), None)
    return tuple(value.shape[1:]) if isinstance(value, torch.Tensor) else None


def paths(model: nn.Module, input_shape: Sequence[int]) -> list[ModulePath]:
    """Every module path of ``model`` with its output shape, from one forward pass of a zero sample.

    The pass runs in eval mode without gradients; each module's train/eval mode is restored after.

    Raises:
        MentorError: when the model cannot run on a sample of ``input_shape``.

    Args:
        model: any ``nn.Module``.
        input_shape: the shape of one sample, e.g. ``(1, 28, 28)``.
    """
    shapes: dict[str, tuple[int, ...] | None] = {}

    def recorder(path: str):  # noqa: ANN202 - hook signature is torch's
        def record(module: nn.Module, args: tuple[object, ...], output: object) -> None:
            shapes.setdefault(path, _shape(output))  # the first call: a module may run again (a shared block)

        return record

    named = [(path, module) for path, module in model.named_modules() if path]
    handles = [module.register_forward_hook(recorder(path)) for path, module in named]
    parameter = next(model.parameters(), None)
    sample = torch.zeros((1, *input_shape), device=parameter.device if parameter is not None else None)
    try:
        with evaluating(model), torch.no_grad():
            model(sample)
    except Exception as error:  # noqa: BLE001 - a model that cannot take this shape: one line
        lines = str(error).strip().splitlines()
        raise MentorError(f"the model cannot run on one sample of shape {tuple(input_shape)}: "
                          f"{type(error).__name__}: {lines[0] if lines else ''}; give the shape it takes") from None
    finally:
        for handle in handles:
            handle.remove()
    return [ModulePath(path, type(module).__name__, shapes.get(path)) for path, module in named]


def paths_table(rows: Sequence[ModulePath]) -> str:
    """The rows of :func:`paths` as a text table (indented by depth)."""
    return render(["module path", "module", "output (one sample)"],
                  [["  " * row.path.count(".") + row.path, row.kind, "not run" if row.shape is None else str(row.shape)]
                   for row in rows])
