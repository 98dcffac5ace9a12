"""The data of knowledge expansion (:mod:`mentor.pipelines.expand`): labeled draws, pseudo labels, class balance,
the curriculum order, each student's training set, the baseline's repeated labels and each round's record.

Shapes: ``K`` classes, ``N`` unlabeled images, ``M`` selected pseudo-labeled images (duplicates included),
``L`` labeled images.

* Pseudo labels (Xie et al. 2020, §2): the teacher, in eval mode and on clean inputs, gives p = softmax(z_T)
  ``(N, K)``; the target is p itself (soft) or the one-hot of argmax p (hard); an image is kept when its
  confidence max_k p_k reaches ``threshold``.
* Class balance (Xie et al. 2020, §3.1 "Data balancing"): every class gets ``per_class`` images: a class with
  more keeps its most confident ones, a class with fewer has its images duplicated (all of them, in order of
  confidence, as often as it takes; the remainder are the most confident).
* Curriculum by confidence (Wang, Li, Guo, Fang & Wang 2021, "Data-uncertainty guided multi-phase learning for
  semi-supervised object detection", CVPR, arXiv:2103.16368): easy (confident) images first. Each selected image
  gets its rank r_i = position_i / M in the order of decreasing confidence, in [0, 1); in phase j of J (the
  epochs cut into J equal parts) the images with r_i < s_j = start + (1 − start)·j/(J − 1) are learned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from mentor.data import ArrayDataset
from mentor.errors import MentorError

LABELED_STREAM = 0x1ABE
"""Added to the seed of the labeled draw, so it differs from the validation split's draw with the same seed."""


@dataclass(frozen=True)
class PseudoLabeling:
    """How the teacher's predictions become training targets (module docstring).

    ``soft``: the teacher's softmax (the paper's default; it found soft slightly better on out-of-domain data).
    ``threshold``: the paper's 0.3 on ImageNet. ``per_class``: images per class after balancing (``None``: the
    number kept over the classes, so balancing moves images between classes without growing the pool).
    """

    soft: bool = True
    threshold: float = 0.3
    balance: bool = True
    per_class: int | None = None


@dataclass(frozen=True)
class Curriculum:
    """Curriculum by confidence: ``phases`` equal parts of the epochs, the first learning the ``start`` most
    confident share of the pseudo-labeled images, the last all of them."""

    phases: int = 2
    start: float = 0.5

    def share(self, epoch: float, epochs: int) -> float:
        """s_j of the module docstring at training progress ``epoch`` (0 to ``epochs``)."""
        phase = min(int(self.phases * epoch / epochs), self.phases - 1)
        return self.start + (1.0 - self.start) * phase / (self.phases - 1)


def balanced_labels(targets: torch.Tensor, labels: int, classes: int, seed: int) -> torch.Tensor:
    """Sorted indices ``(labels,)``: ``labels / classes`` samples of every class, drawn from ``seed``."""
    if labels % classes:
        raise MentorError(f"The 'labels' parameter of expand must be a multiple of the {classes} classes (the same "
                          f"number per class). Got {labels} instead; use e.g. {classes * max(1, labels // classes)}.")
    each, generator = labels // classes, torch.Generator().manual_seed(seed + LABELED_STREAM)
    chosen = []
    for label in range(classes):
        members = torch.nonzero(targets == label).flatten()
        if len(members) < each:
            raise MentorError(f"The 'labels' parameter of expand asks {each} labeled samples per class but class "
                              f"{label} has {len(members)} training samples; lower labels to {classes * len(members)} "
                              "or raise data.limit.")
        chosen.append(members[torch.randperm(len(members), generator=generator)[:each]])
    return torch.cat(chosen).sort().values


def split_labels(train: ArrayDataset, labels: int, classes: int, seed: int,
                 unlabeled: int | None = None) -> tuple[ArrayDataset, ArrayDataset]:
    """(``labels`` class-balanced samples of ``train``, the first ``unlabeled`` others with their labels kept
    only for measuring the pseudo labels; ``None``: all others)."""
    chosen = balanced_labels(train.targets, labels, classes, seed)
    rest = torch.ones(len(train), dtype=torch.bool).index_fill_(0, chosen, False)
    others = torch.nonzero(rest).flatten()[:unlabeled]
    return train.subset(chosen), train.subset(others)


def targets_of(probabilities: torch.Tensor, soft: bool) -> torch.Tensor:
    """The targets ``(N, K)``: the probabilities themselves, or the one-hot of their argmax."""
    if soft:
        return probabilities
    return torch.nn.functional.one_hot(probabilities.argmax(dim=1), probabilities.shape[1]).to(probabilities.dtype)


def select(probabilities: torch.Tensor, labeling: PseudoLabeling) -> torch.Tensor:
    """Indices ``(M,)`` of the pseudo-labeled images to learn, duplicates included, each class's in order of
    decreasing confidence (module docstring)."""
    confidence, predicted = probabilities.max(dim=1)
    kept = confidence >= labeling.threshold
    order = torch.sort(confidence, descending=True, stable=True).indices
    if not labeling.balance:
        return order[kept[order]]
    classes = probabilities.shape[1]
    per_class = labeling.per_class if labeling.per_class is not None else round(int(kept.sum()) / classes)
    chosen = []
    for label in range(classes):
        members = order[kept[order] & (predicted[order] == label)]
        if len(members):
            chosen.append(members.repeat(math.ceil(per_class / len(members)))[:per_class])
    return torch.cat(chosen) if chosen else torch.zeros(0, dtype=torch.long)


def ranks(confidence: torch.Tensor) -> torch.Tensor:
    """r_i ``(M,)``: each image's position in the order of decreasing ``confidence``, over M (ties: first first)."""
    order = torch.sort(confidence, descending=True, stable=True).indices
    return torch.empty_like(confidence).index_put_((order,), torch.arange(len(order), dtype=confidence.dtype)) \
        / max(len(order), 1)


@dataclass
class StudentData:
    """One student's training set: labeled rows first (repeated), then the pseudo-labeled ones.

    ``targets`` ``(L·repeats + M, K)``: one-hot ground truth or pseudo labels; ``ranks`` ``(same,)``: the
    curriculum rank, −1 for labeled rows (always learned); ``pseudo``: how many rows are pseudo-labeled.
    """

    dataset: ArrayDataset
    targets: torch.Tensor
    ranks: torch.Tensor
    pseudo: int


def student_data(labeled: ArrayDataset, unlabeled: ArrayDataset, probabilities: torch.Tensor,
                 labeling: PseudoLabeling, unlabeled_ratio: float, classes: int) -> StudentData:
    """The labeled samples, repeated so that pseudo-labeled rows are about ``unlabeled_ratio`` times as many, and
    the selected pseudo-labeled images; the dataset's targets are the hard labels (ground truth, or the teacher's
    argmax, which measures nothing the student learns from)."""
    chosen = select(probabilities, labeling)
    confidence = probabilities.max(dim=1).values[chosen]
    repeats = max(1, round(len(chosen) / (unlabeled_ratio * len(labeled))))
    truth = torch.nn.functional.one_hot(labeled.targets.long(), classes).float()
    targets = torch.cat([truth.repeat(repeats, 1), targets_of(probabilities, labeling.soft)[chosen].float()])
    inputs = torch.cat([labeled.inputs.repeat(repeats, *[1] * (labeled.inputs.ndim - 1)), unlabeled.inputs[chosen]])
    order = torch.cat([torch.full((len(labeled) * repeats,), -1.0), ranks(confidence)])
    return StudentData(ArrayDataset(inputs, targets.argmax(dim=1)), targets, order, len(chosen))


def repeat_to(labeled: ArrayDataset, rows: int) -> ArrayDataset:
    """``labeled`` repeated to about ``rows`` samples: the baseline takes as many steps per epoch as the last
    student."""
    return labeled.subset(torch.arange(len(labeled)).repeat(max(1, round(rows / len(labeled)))))


def pseudo_record(seed: int, round_: int, probabilities: torch.Tensor, truth: torch.Tensor,
                  labeling: PseudoLabeling, selected: int) -> dict[str, Any]:
    """What one round's pseudo labels were: images kept, rows learned, and the share right where labels exist."""
    confidence, predicted = probabilities.max(dim=1)
    kept = confidence >= labeling.threshold
    known = kept & (truth >= 0)
    right = float((predicted[known] == truth[known]).float().mean()) if bool(known.any()) else None
    return {"seed": seed, "round": round_, "pool": len(probabilities), "kept": int(kept.sum()), "selected": selected,
            "right": right}
