"""Learning schemes (survey §5): who teaches whom, and whose parameters step.

A scheme is the only place with training-step logic. The engine's loop calls :meth:`Scheme.loss` on
each batch, back-propagates the total and steps one optimizer per entry of :meth:`Scheme.optimized`;
it knows nothing of teachers, students or peers. Offline, online and self-learning schemes differ
only in what they put in these methods.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from torch import nn

from mentor.batch import Batch
from mentor.data import ArrayDataset
from mentor.data.batches import Transform
from mentor.losses.objective import LossOutput
from mentor.registry import Registry

SCHEMES: Registry[Callable[..., Scheme | Phased]] = Registry("scheme")
"""Scheme factories by name: ``factory(models: list[nn.Module], **params) -> Scheme | Phased``."""


class Scheme(nn.Module):
    """Base class of learning schemes."""

    def setup(self, batch: Batch) -> None:
        """Prepare with one sample batch before training (bind objectives, build adapters)."""

    def trained(self) -> dict[str, nn.Module]:
        """Modules whose parameters step, by name: checkpointed, put in train mode, wrapped for DDP."""
        raise NotImplementedError

    def optimized(self) -> dict[str, list[nn.Parameter]]:
        """Parameter groups, each stepped by its own optimizer (default: one group of everything trained)."""
        return {"main": [p for module in self.trained().values() for p in module.parameters() if p.requires_grad]}

    def predictors(self) -> dict[str, nn.Module]:
        """Models evaluated after each epoch, by name; the first is the one selected on validation."""
        raise NotImplementedError

    def loss(self, batch: Batch, epoch: float, epochs: int) -> LossOutput:
        """The loss of one training step (its ``total`` is back-propagated)."""
        raise NotImplementedError

    def augmentation(self) -> Transform | None:
        """The augmentation the scheme itself applies to its peers' inputs, on top of the loop's (``None``: none).

        A fair baseline trains each peer alone with it too, so the scheme and its peers alone see the same data.
        """
        return None

    def training_set(self, train: ArrayDataset) -> ArrayDataset:
        """The samples the loop trains the scheme on, made from the training split (default: the split itself).

        A semi-supervised scheme hides labels here (target ``-1``, see :mod:`mentor.schemes.selflearning.mean_teacher`).
        """
        return train

    def alone_training_set(self, train: ArrayDataset) -> ArrayDataset:
        """The samples a peer trained alone for comparison is trained on (default: the split itself).

        A semi-supervised scheme gives only the samples whose labels it keeps, so that the baseline sees no label
        the scheme does not.
        """
        return train

    def after_step(self) -> None:
        """Called after every optimizer step (EMA teachers, memory banks)."""

    def cache_teachers(self, train: ArrayDataset) -> None:
        """The inputs of ``train`` are deterministic: frozen teachers may precompute their outputs on it."""

    def train(self, mode: bool = True) -> Scheme:
        """Switch the trained modules only; teachers keep their own mode."""
        self.training = mode
        for module in self.trained().values():
            module.train(mode)
        return self


@dataclass
class Phase:
    """One call of the loop: a scheme trained for ``epochs`` (``None``: the run's epochs)."""

    name: str
    scheme: Scheme
    epochs: int | None = None


class Phased:
    """A scheme whose roles change between phases (born-again generations, self-training rounds).

    :meth:`phases` is a generator: the runner trains each yielded phase with the one loop before asking
    for the next, so a later phase may use the models trained by an earlier one as its teachers.
    """

    def phases(self) -> Iterator[Phase]:
        raise NotImplementedError

    def predictors(self) -> dict[str, nn.Module]:
        """The final models to evaluate, by name."""
        raise NotImplementedError
