"""Born-Again Neural Networks: generations of one architecture, each taught by the one before.

Furlanello, Lipton, Tschannen, Itti & Anandkumar (2018), "Born-Again Neural Networks", ICML
(arXiv:1805.04770).

Generation 0 learns from the labels alone. Generation g+1 has the same architecture and a fresh
initialization and learns from generation g, frozen (logits ``z_g``, ``z_{g+1}`` of shape ``(B, K)``):

    L_{g+1} = w_CE · CE(y, softmax(z_{g+1})) + w_KL · τ² · KL(softmax(z_g / τ) || softmax(z_{g+1} / τ))

(τ = 1 in the paper; ``ce_weight = 0`` keeps the teacher's outputs as the only target, the paper's
basic born-again objective). The predictors are the last generation and the BAN ensemble, the average
of the softmax outputs of all generations p_ens = (1/(G+1)) Σ_g softmax(z_g), returned as log p_ens so
that it can be used as logits.

This module also holds what the other phased self-learning schemes share: a freshly initialized copy
of a model, and an offline phase whose teacher is frozen only once an earlier phase has trained it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Annotated

import torch
from pydantic import Field
from torch import nn

from mentor.batch import Batch
from mentor.data import ArrayDataset
from mentor.losses import CE, KL, Objective
from mentor.losses.objective import LossOutput
from mentor.schemes.base import SCHEMES, Phase, Phased, Scheme
from mentor.schemes.offline import Offline
from mentor.schemes.online.peers import check_count
from mentor.teachers import Ensemble
from mentor.teachers.frozen import FrozenTeacher, freeze


def reinitialized(template: nn.Module, seed: int) -> nn.Module:
    """A deep copy of ``template`` with every layer's ``reset_parameters()`` drawn from ``seed``.

    Layers without ``reset_parameters`` keep the (untrained) values of ``template``. The global random
    state is left as it was.
    """
    model = copy.deepcopy(template)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for module in model.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
    return model


class TaughtByEarlierPhase(Scheme):
    """An :class:`Offline` phase whose teacher is a model that an earlier phase trains.

    The offline scheme, and with it the frozen teacher, is built at :meth:`setup`, once the earlier phase
    is done, so the phase may be created before that (a caller that lists every phase first still
    trains the earlier model).
    """

    def __init__(self, student: nn.Module, objective: Objective, teacher: nn.Module) -> None:
        super().__init__()
        self.student, self.objective = student, objective
        self._earlier = (teacher,)  # a tuple keeps it out of this module's children until it is frozen
        self.offline: Offline | None = None

    @property
    def teacher(self) -> FrozenTeacher | None:
        return self.offline.teacher if self.offline is not None else None

    def setup(self, batch: Batch) -> None:
        if self.offline is None:
            self.offline = Offline(self.student, self.objective, freeze(self._earlier[0]))
        self.offline.setup(batch)

    def cache_teachers(self, train: ArrayDataset) -> None:
        if self.offline is not None:
            self.offline.cache_teachers(train)

    def trained(self) -> dict[str, nn.Module]:
        return {"student": self.student, "objective": self.objective}

    def predictors(self) -> dict[str, nn.Module]:
        return {"student": self.student}

    def loss(self, batch: Batch, epoch: float, epochs: int) -> LossOutput:
        if self.offline is None:
            self.setup(batch)
        return self.offline.loss(batch, epoch, epochs)


class BornAgain(Phased):
    """Generation 0 on the labels, then ``generations`` born-again students, each from the previous one."""

    def __init__(self, model: nn.Module, generations: int, temperature: float, ce_weight: float,
                 kl_weight: float, seed: int) -> None:
        self.template = copy.deepcopy(model)
        self.models = [model]
        self.count, self.temperature, self.seed = generations, temperature, seed
        self.ce_weight, self.kl_weight = ce_weight, kl_weight

    def phases(self) -> Iterator[Phase]:
        del self.models[1:]
        yield Phase("generation0", Offline(self.models[0], Objective(CE())))
        for generation in range(1, self.count + 1):
            student, teacher = reinitialized(self.template, self.seed + generation), self.models[-1]
            self.models.append(student)
            objective = Objective(CE(weight=self.ce_weight), KL(self.temperature, weight=self.kl_weight))
            yield Phase(f"generation{generation}", TaughtByEarlierPhase(student, objective, teacher))

    def predictors(self) -> dict[str, nn.Module]:
        return {"last": self.models[-1], "ensemble": Ensemble(self.models)}


@SCHEMES.register("born-again", "Furlanello et al. 2018, Born-Again Neural Networks (ICML)")
def born_again(
    models: list[nn.Module],
    generations: Annotated[int, Field(ge=1)] = 2,
    temperature: Annotated[float, Field(gt=0)] = 1.0,
    ce_weight: Annotated[float, Field(ge=0)] = 1.0,
    kl_weight: Annotated[float, Field(gt=0)] = 1.0,
    seed: int = 0,
) -> BornAgain:
    """``models`` = [the architecture]; ``generations`` born-again students follow generation 0."""
    check_count(models, "born-again", 1, 1)
    return BornAgain(models[0], generations, temperature, ce_weight, kl_weight, seed)
