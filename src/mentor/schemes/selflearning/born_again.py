"""Born-Again Neural Networks: generations of one architecture, each taught by the one before.

Furlanello, Lipton, Tschannen, Itti & Anandkumar (2018), "Born-Again Neural Networks", ICML
(arXiv:1805.04770).

Generation 0 learns from the labels alone. Generation g+1 has the same architecture and a fresh
initialization and learns from generation g, frozen (logits ``z_g``, ``z_{g+1}`` of shape ``(B, K)``):

    L_{g+1} = w_CE · CE(y, softmax(z_{g+1})) + w_KL · τ² · KL(softmax(z_g / τ) || softmax(z_{g+1} / τ))

(τ = 1 in the paper; ``ce_weight = 0`` gives its teacher-only objective). The predictors are the last
generation and the BAN ensemble, the average of the softmax outputs of all generations
p_ens = (1/(G+1)) Σ_g softmax(z_g), returned as log p_ens so that it can be used as logits.

This module also holds the pieces the other phased self-learning schemes share: the fresh copy of an
untrained model, an offline phase whose teacher is frozen only once it has been trained, and the
softmax-average ensemble.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from mentor.batch import Batch
from mentor.errors import MentorError
from mentor.losses import CE, KL, Objective
from mentor.losses.terms import check_temperature
from mentor.schemes.base import SCHEMES, Phase, Phased, Scheme
from mentor.schemes.offline import Offline
from mentor.teachers.frozen import FrozenTeacher, freeze


def only_model(models: Sequence[nn.Module], scheme: str) -> nn.Module:
    """The single model a self-learning scheme takes; a :class:`MentorError` for any other count."""
    if len(models) != 1 or not isinstance(models[0], nn.Module):
        raise MentorError(f"the {scheme} scheme takes exactly one model (peers: [one model]); got {len(models)}")
    return models[0]


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


def freeze_trained(model: nn.Module) -> FrozenTeacher:
    """:func:`~mentor.teachers.freeze` a model trained by an earlier phase, dropping its stale gradients."""
    for parameter in model.parameters():
        parameter.grad = None
    return freeze(model)


def mean_softmax_logits(logits: Sequence[torch.Tensor]) -> torch.Tensor:
    """log((1/M) Σ_m softmax(z_m)) for M logits ``(B, K)``: an ensemble's output, usable as logits."""
    log_probs = torch.stack([torch.log_softmax(z, dim=1) for z in logits])
    return torch.logsumexp(log_probs, dim=0) - math.log(len(logits))


class SoftmaxEnsemble(nn.Module):
    """Average of the softmax outputs of several models (forward returns the log of the average)."""

    def __init__(self, models: Sequence[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(models)
        self.training = False  # evaluation restores this mode: never switch frozen members to training

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return mean_softmax_logits([model(inputs) for model in self.members])


class TaughtByEarlierPhase(Offline):
    """An offline phase whose teacher is a model that an earlier phase trains.

    The teacher is frozen at :meth:`setup`, once the earlier phase is done, so the phase may be built
    before that (a caller that lists every phase first still trains the earlier model).
    """

    def __init__(self, student: nn.Module, objective: Objective, teacher: nn.Module) -> None:
        Scheme.__init__(self)
        self.student, self.objective = student, objective
        self.teacher: FrozenTeacher | None = None
        self._earlier = (teacher,)  # a tuple keeps it out of this module's children until frozen

    def setup(self, batch: Batch) -> None:
        self.teacher = freeze_trained(self._earlier[0])
        super().setup(batch)


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
        return {"last": self.models[-1], "ensemble": SoftmaxEnsemble(self.models)}


@SCHEMES.register("born-again", "Furlanello et al. 2018, Born-Again Neural Networks (ICML)")
def born_again(
    models: list[nn.Module],
    generations: int = 2,
    temperature: float = 1.0,
    ce_weight: float = 1.0,
    kl_weight: float = 1.0,
    seed: int = 0,
) -> BornAgain:
    """``models`` = [the architecture]; ``generations`` born-again students follow generation 0."""
    model = only_model(models, "born-again")
    if isinstance(generations, bool) or not isinstance(generations, int) or generations < 1:
        raise MentorError(f"The 'generations' parameter of born-again must be an int >= 1. Got {generations!r} instead.")
    if not isinstance(ce_weight, (int, float)) or ce_weight < 0:
        raise MentorError(f"The 'ce_weight' parameter of born-again must be a float >= 0. Got {ce_weight!r} instead.")
    if not isinstance(kl_weight, (int, float)) or kl_weight <= 0:
        raise MentorError(f"The 'kl_weight' parameter of born-again must be a float > 0. Got {kl_weight!r} instead.")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise MentorError(f"The 'seed' parameter of born-again must be an int. Got {seed!r} instead.")
    temperature = check_temperature(temperature, "born-again")
    return BornAgain(model, generations, temperature, float(ce_weight), float(kl_weight), seed)
