"""Many copies of one architecture held and run as one module: the teacher ensemble of PATE.

The n members' parameters and buffers are stacked along a leading axis (``torch.func.stack_module_state``)
and one ``torch.func.vmap`` of ``functional_call`` runs them all, so n small teachers cost a few batched
matrix products per step instead of n Python-level forward passes.

Shapes: :meth:`TeacherBank.forward` maps per-member inputs ``(n, B, ...)`` to logits ``(n, B, K)``;
:meth:`TeacherBank.shared` maps one input batch ``(B, ...)`` to ``(n, B, K)``.

:class:`BankTraining` is the scheme that trains every member on its own data with the one loop: a sample of
the dataset it reads is one row of n samples ``(n, ...)`` (member i's ``i``-th input) with n labels ``(n,)``,
and the loss is the sum over members of each member's mean cross-entropy, so member i's gradient is that of
its own loss alone, and an element-wise optimizer (Adam, SGD) steps each member as if it trained alone.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from mentor.batch import Batch
from mentor.errors import MentorError
from mentor.losses.objective import LossOutput
from mentor.schemes.base import Scheme


def has_running_statistics(model: nn.Module) -> bool:
    """Whether ``model`` updates buffers in training (BatchNorm), which a vmapped forward cannot do."""
    return any(isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats
               for module in model.modules())


class TeacherBank(nn.Module):
    """n models of one architecture, stacked (see the module docstring).

    Args:
        members: the models, all of the same class and parameter shapes (copied, not shared).
    """

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise MentorError("a TeacherBank needs at least one member model")
        shapes = [[tuple(p.shape) for p in member.state_dict().values()] for member in members]
        if any(shape != shapes[0] for shape in shapes):
            raise MentorError("the members of a TeacherBank must share one architecture (same parameter shapes)")
        parameters, buffers = stack_module_state(list(members))  # type: ignore[arg-type]
        self.parameter_names, self.buffer_names = list(parameters), list(buffers)
        self.stacked = nn.ParameterList([nn.Parameter(value.detach().clone()) for value in parameters.values()])
        for index, value in enumerate(buffers.values()):
            self.register_buffer(f"buffer{index}", value.detach().clone())
        self._template = [copy.deepcopy(members[0]).to("meta")]  # a list: not a submodule, holds no weights
        self.size = len(members)

    def _state(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        parameters = dict(zip(self.parameter_names, self.stacked, strict=True))
        buffers = {name: getattr(self, f"buffer{index}") for index, name in enumerate(self.buffer_names)}
        return parameters, buffers

    def _run(self, inputs: torch.Tensor, per_member: bool) -> torch.Tensor:
        template = self._template[0].train(self.training)

        def one(parameters: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor],
                member_inputs: torch.Tensor) -> torch.Tensor:
            return functional_call(template, (parameters, buffers), (member_inputs,))

        parameters, buffers = self._state()
        return vmap(one, in_dims=(0, 0, 0 if per_member else None), randomness="different")(
            parameters, buffers, inputs)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """Logits ``(n, B, K)`` of member i on its own inputs ``inputs[i]``; ``inputs`` is ``(n, B, ...)``."""
        return self._run(inputs, per_member=True)

    def shared(self, inputs: torch.Tensor) -> torch.Tensor:
        """Logits ``(n, B, K)`` of every member on the same inputs ``(B, ...)``."""
        return self._run(inputs, per_member=False)

    def members(self) -> list[nn.Module]:
        """Each member as a model of its own, holding a copy of its weights."""
        parameters, buffers = self._state()
        models = []
        for index in range(self.size):
            model = copy.deepcopy(self._template[0]).to_empty(device=self.stacked[0].device)
            state = {name: value[index].detach().clone() for name, value in {**parameters, **buffers}.items()}
            model.load_state_dict(state)
            models.append(model.train(self.training))
        return models


class PluralityVote(nn.Module):
    """The bank's vote histogram as a classifier: logits log((votes + 1e-6)/n), shape ``(B, K)``."""

    def __init__(self, bank: TeacherBank) -> None:
        super().__init__()
        self.bank = bank

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        logits = self.bank.shared(inputs)
        votes = F.one_hot(logits.argmax(dim=2), logits.shape[2]).sum(dim=0).to(logits.dtype)
        return torch.log((votes + 1e-6) / self.bank.size)


class BankTraining(Scheme):
    """Every member of ``bank`` learns its own rows of the data with cross-entropy (module docstring)."""

    def __init__(self, bank: TeacherBank) -> None:
        super().__init__()
        self.bank = bank

    def trained(self) -> dict[str, nn.Module]:
        return {"teachers": self.bank}

    def predictors(self) -> dict[str, nn.Module]:
        return {"teachers": PluralityVote(self.bank)}

    def loss(self, batch: Batch, epoch: float, epochs: int) -> LossOutput:
        inputs = batch.inputs.transpose(0, 1)  # (B, n, ...) -> (n, B, ...)
        logits = self.bank(inputs)  # (n, B, K)
        targets = batch.targets.transpose(0, 1)  # (n, B)
        per_member = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
        total = per_member.view(targets.shape).mean(dim=1).sum()
        return LossOutput(total, {"ce": total.detach() / self.bank.size})
