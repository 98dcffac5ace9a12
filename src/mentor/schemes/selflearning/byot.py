"""Be Your Own Teacher: the deepest classifier of a network teaches shallow classifiers on its stages.

Zhang, Song, Gao, Chen, Bao & Ma (2019), "Be Your Own Teacher: Improve the Performance of Convolutional
Neural Networks via Self Distillation", ICCV (arXiv:1905.08094).

The network is cut at the tapped stages (``taps``, outputs ``(B, C_i, H_i, W_i)``). Each cut gets a
shallow classifier, built from the tapped shapes: a bottleneck (1×1 conv, 3×3 conv, BatchNorm, ReLU,
average-pooled to the shape of the deepest feature) giving F_i, then a fully connected layer giving
z_i ``(B, K)``. The deepest classifier is the network's own head; F_C is the tensor at ``feature``
(default the head's input, ``(B, C)``). With q^i_τ = softmax(z_i / τ):

    L = CE(y, softmax(z_C)) + Σ_{i<C} [(1 − α) · CE(y, softmax(z_i)) + α · KL(q^C_τ || q^i_τ) + λ · ‖F_i − F_C‖²₂]

q^C and F_C are detached: the deepest classifier is the teacher. ‖·‖²₂ is summed over a sample's elements
and averaged over the batch. The scales follow the authors' released code (ArchipLab-LinfengZhang/
pytorch-self-distillation-final): the deepest classifier's cross-entropy has weight 1, not the paper's
(1 − α); the soft term is the cross-entropy to q^C_τ with no τ² factor (KL here: the same gradient, 0 at
a perfect match), α = 0.3, τ = 3; and there is no feature term, so λ (``hint_weight``) defaults to 0
(the paper's λ‖F_i − F_C‖² is kept as an option; a widely used reimplementation weights it by 1e-6 on a
sum over the whole batch, next to nothing). Predictors: ``deepest`` (the network), ``exit1``,
``exit2``, ... (the shallow classifiers, in tap order) and ``ensemble`` (the average of every
classifier's softmax output). An exit is the path to it: the network's layers up to its tap and its
classifier (:func:`mentor.taps.prefix`), so its parameters, latency and exported file are those of the
early-exit model, when the network is a plain ``nn.Sequential`` down to the tap; for any other network
an exit runs the whole network.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from mentor.batch import Batch
from mentor.errors import MentorError
from mentor.losses.functional import kl_divergence, lp_distance
from mentor.losses.objective import LossOutput
from mentor.schemes.base import SCHEMES, Scheme
from mentor.schemes.online.peers import average_probabilities, check_count, probe
from mentor.taps import prefix, run_with_taps


class ShallowClassifier(nn.Module):
    """Bottleneck from a tapped map ``(C_i, H_i, W_i)`` to the deepest feature's shape, then an FC layer."""

    def __init__(self, tapped: torch.Size, deepest: torch.Size, classes: int) -> None:
        super().__init__()
        channels, size = deepest[0], (tuple(deepest[1:]) if len(deepest) == 3 else (1, 1))
        stride = 2 if tapped[1] >= 2 * size[0] else 1
        self.bottleneck = nn.Sequential(
            nn.Conv2d(tapped[0], channels, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(channels),
            nn.ReLU(), nn.AdaptiveAvgPool2d(size), *([nn.Flatten()] if len(deepest) == 1 else []),
        )
        pool = [nn.AdaptiveAvgPool2d(1), nn.Flatten()] if len(deepest) == 3 else []
        self.fc = nn.Sequential(*pool, nn.Linear(channels, classes))

    def forward(self, tapped: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        feature = self.bottleneck(tapped)
        return feature, self.fc(feature)


class Exits(nn.Module):
    """The network and its shallow classifiers: every classifier's logits and feature in one pass."""

    def __init__(self, network: nn.Module, taps: tuple[str, ...], feature: str) -> None:
        super().__init__()
        self.network, self.taps, self.feature = network, taps, feature
        self.classifiers = nn.ModuleDict()

    def all(self, inputs: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Logits and features, shallow classifiers first and the deepest last."""
        logits, tapped = run_with_taps(self.network, inputs, (*self.taps, self.feature), role="student")
        shallow = [head(tapped[path]) for path, head in zip(self.taps, self.classifiers.values(), strict=True)]
        return [z for _, z in shallow] + [logits], [f for f, _ in shallow] + [tapped[self.feature]]


class ExitPredictor(nn.Module):
    """One classifier's logits (``index``) or the ensemble's (``index=None``)."""

    def __init__(self, exits: Exits, index: int | None) -> None:
        super().__init__()
        self.exits, self.index = exits, index

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        logits, _ = self.exits.all(inputs)
        return average_probabilities(logits) if self.index is None else logits[self.index]


class ExitPath(nn.Module):
    """An early-exit model: the network's layers up to a tap, then that tap's shallow classifier."""

    def __init__(self, layers: nn.Sequential, classifier: ShallowClassifier) -> None:
        super().__init__()
        self.layers, self.classifier = layers, classifier

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.classifier(self.layers(inputs))[1]


def exit_model(exits: Exits, index: int) -> nn.Module:
    """Exit ``index`` as the path to it when the network can be cut there, else through the whole network."""
    layers = prefix(exits.network, exits.taps[index])
    classifier = list(exits.classifiers.values())[index]
    return ExitPath(layers, classifier) if layers is not None else ExitPredictor(exits, index)


class BeYourOwnTeacher(Scheme):
    """Shallow classifiers on ``taps`` distilled from the network's own head."""

    def __init__(self, model: nn.Module, taps: tuple[str, ...], feature: str, alpha: float, temperature: float,
                 hint_weight: float) -> None:
        super().__init__()
        self.exits = Exits(model, taps, feature)
        self.alpha, self.temperature, self.hint_weight = alpha, temperature, hint_weight

    def setup(self, batch: Batch) -> None:
        if len(self.exits.classifiers):
            return
        sample = probe(self.exits.network, batch.inputs, (*self.exits.taps, self.exits.feature))
        logits, tapped = sample.logits, sample.features
        deepest = tapped[self.exits.feature].shape[1:]
        if len(deepest) not in (1, 3):
            raise MentorError(f"the 'feature' of byot ({self.exits.feature!r}) must be a vector (C,) or a map "
                              f"(C, H, W); got shape {tuple(deepest)}")
        for index, path in enumerate(self.exits.taps, start=1):
            shape = tapped[path].shape[1:]
            if len(shape) != 3:
                raise MentorError(f"byot taps must be feature maps (C, H, W); {path!r} has shape {tuple(shape)}")
            head = ShallowClassifier(shape, deepest, logits.shape[1])
            self.exits.classifiers[f"exit{index}"] = head.to(tapped[path].device)

    def trained(self) -> dict[str, nn.Module]:
        return {"network": self.exits.network, "classifiers": self.exits.classifiers}

    def predictors(self) -> dict[str, nn.Module]:
        exits = {name: exit_model(self.exits, index) for index, name in enumerate(self.exits.classifiers)}
        return {"deepest": self.exits.network, **exits, "ensemble": ExitPredictor(self.exits, None)}

    def loss(self, batch: Batch, epoch: float, epochs: int) -> LossOutput:
        self.setup(batch)  # builds the classifiers once
        logits, features = self.exits.all(batch.inputs)
        weighted = self_distillation_parts(logits, features, batch.targets, list(self.exits.classifiers),
                                           self.alpha, self.temperature, self.hint_weight)
        return LossOutput.of(weighted)


def self_distillation_parts(logits: list[torch.Tensor], features: list[torch.Tensor], targets: torch.Tensor,
                            names: list[str], alpha: float, temperature: float,
                            hint_weight: float) -> dict[str, torch.Tensor]:
    """The weighted terms of L (module docstring) by name, from every classifier's logits ``(B, K)`` and
    feature, shallow classifiers first (``names``) and the deepest last; no feature term at λ = 0."""
    teacher_logits, teacher_feature = logits[-1].detach(), features[-1].detach()
    soft_targets = F.softmax(teacher_logits / temperature, dim=1)
    weighted = {"ce/deepest": F.cross_entropy(logits[-1], targets)}
    for name, student_logits, feature in zip(names, logits[:-1], features[:-1], strict=True):
        weighted[f"ce/{name}"] = (1 - alpha) * F.cross_entropy(student_logits, targets)
        weighted[f"kl/{name}"] = alpha * kl_divergence(F.log_softmax(student_logits / temperature, dim=1), soft_targets)
        if hint_weight > 0:
            weighted[f"hint/{name}"] = hint_weight * lp_distance(feature, teacher_feature, reduction="batchmean")
    return weighted


@SCHEMES.register("byot", "Zhang et al. 2019, Be Your Own Teacher: self distillation (ICCV)")
def byot(
    models: list[nn.Module],
    taps: Annotated[list[str], Field(min_length=1)],
    feature: str = "head:input",
    alpha: Annotated[float, Field(ge=0, lt=1)] = 0.3,
    temperature: Annotated[float, Field(gt=0)] = 3.0,
    hint_weight: Annotated[float, Field(ge=0)] = 0.0,
) -> BeYourOwnTeacher:
    """``models`` = [the network]; ``taps``: the stages that get a shallow classifier, shallowest first."""
    check_count(models, "byot", 1, 1)
    if len(set(taps)) != len(taps) or feature in taps:
        raise MentorError(f"The 'taps' parameter of byot must list distinct paths other than 'feature' ({feature!r}). "
                          f"Got {taps!r} instead.")
    return BeYourOwnTeacher(models[0], tuple(taps), feature, alpha, temperature, hint_weight)
