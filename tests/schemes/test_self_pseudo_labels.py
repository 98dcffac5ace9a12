"""Iterated pseudo labels (Pang et al. 2020): the label table, the rounds and the ordinal flavour."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mentor.batch import Batch
from mentor.data import ArrayDataset
from mentor.engine import FitSettings, fit
from mentor.errors import MentorError
from mentor.schemes import SCHEMES
from mentor.schemes.selflearning.pseudo_labels import (
    UNSEEN,
    UNSURE,
    OrdinalLevels,
    PseudoLabelRound,
    labelled_subset,
    pseudo_labels,
)
from tests.schemes.conftest import small_cnn, tiny_data

SETTINGS = FitSettings(epochs=1, batch_size=8, progress=False)


class Fixed(nn.Module):
    """A 'model' that returns stored outputs for inputs that are their own row index."""

    def __init__(self, outputs: torch.Tensor) -> None:
        super().__init__()
        self.outputs = nn.Parameter(outputs.clone())

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.outputs[inputs.long().flatten()]


def test_pseudo_labels_keep_only_confident_predictions() -> None:
    logits = torch.tensor([[3.0, 0.0, 0.0], [0.1, 0.0, 0.2], [0.0, 0.0, 5.0]])
    assert pseudo_labels(logits, 0.8, None).tolist() == [0, UNSURE, 2]
    scores = torch.tensor([[0.05], [0.45], [0.9], [1.7]])  # levels 0, 1: confidence 1 − 2|s − k| on [0, 1]
    assert pseudo_labels(scores, 0.7, 2).tolist() == [0, UNSURE, 1, 1]


def test_labelled_subset_is_a_seeded_fraction() -> None:
    mask = labelled_subset(40, 0.25, 3)
    assert int(mask.sum()) == 10 and torch.equal(mask, labelled_subset(40, 0.25, 3))
    assert not torch.equal(mask, labelled_subset(40, 0.25, 4))


def index_batch(indices: list[int], targets: list[int], size: int) -> Batch:
    index = torch.tensor(indices)
    return Batch(index.float().unsqueeze(1), torch.tensor(targets), index, size)


def test_a_round_uses_truth_where_labelled_and_the_previous_models_confident_labels_elsewhere() -> None:
    size = 6
    previous = Fixed(torch.tensor([[4.0, 0.0], [0.0, 4.0], [0.1, 0.0], [0.0, 4.0], [4.0, 0.0], [0.0, 0.1]]))
    student = Fixed(torch.randn(size, 2, generator=torch.Generator().manual_seed(0)))
    scheme = PseudoLabelRound(student, previous, False, fraction=0.5, threshold=0.9, levels=None, seed=0)
    batch = index_batch(list(range(size)), [1, 1, 1, 1, 1, 1], size)
    scheme.setup(batch)
    labelled = scheme.labelled.tolist()
    output = scheme.loss(batch, 0.0, 1)
    predicted = [0, 1, UNSURE, 1, 0, UNSURE]
    assert scheme.table.tolist() == [UNSEEN if labelled[i] else predicted[i] for i in range(size)]
    targets = [1 if labelled[i] else predicted[i] for i in range(size)]
    rows = student.outputs.detach().tolist()
    losses = [math.log(sum(math.exp(v) for v in rows[i])) - rows[i][t] for i, t in enumerate(targets) if t >= 0]
    assert output.total.item() == pytest.approx(sum(losses) / len(losses), rel=1e-6)
    output.total.backward()
    assert student.outputs.grad.abs().sum() > 0 and previous.outputs.grad is None
    with torch.no_grad():
        previous.outputs.neg_()  # the table is filled once per round: later batches read it, not the model
    scheme.loss(batch, 0.5, 1)
    assert scheme.table.tolist() == [UNSEEN if labelled[i] else predicted[i] for i in range(size)]


def test_the_detector_phase_learns_only_the_labelled_subset() -> None:
    student = Fixed(torch.randn(6, 3, generator=torch.Generator().manual_seed(1)))
    scheme = PseudoLabelRound(student, None, False, fraction=0.5, threshold=0.9, levels=None, seed=2)
    batch = index_batch(list(range(6)), [0, 1, 2, 0, 1, 2], 6)
    scheme.setup(batch)
    value = scheme.loss(batch, 0.0, 1).total
    rows, labelled = student.outputs.detach().tolist(), scheme.labelled.tolist()
    targets = batch.targets.tolist()
    losses = [math.log(sum(math.exp(v) for v in rows[i])) - rows[i][targets[i]] for i in range(6) if labelled[i]]
    assert value.item() == pytest.approx(sum(losses) / len(losses), rel=1e-6)


def test_ordinal_mode_regresses_scores_and_reads_the_nearest_level() -> None:
    student = Fixed(torch.tensor([[0.2], [0.9], [1.6], [0.4]]))
    scheme = PseudoLabelRound(student, None, False, fraction=1.0, threshold=0.5, levels=3, seed=0)
    batch = index_batch([0, 1, 2, 3], [0, 1, 2, 1], 4)
    scheme.setup(batch)
    assert scheme.loss(batch, 0.0, 1).total.item() == pytest.approx((0.2 + 0.1 + 0.4 + 0.6) / 4, rel=1e-6)
    assert OrdinalLevels(student, 3)(batch.inputs).argmax(dim=1).tolist() == [0, 1, 2, 0]
    wide = PseudoLabelRound(Fixed(torch.zeros(4, 2)), None, False, fraction=1.0, threshold=0.5, levels=3, seed=0)
    wide.setup(batch)
    with pytest.raises(MentorError, match="1 output"):
        wide.loss(batch, 0.0, 1)


def test_rounds_relabel_from_the_round_before() -> None:
    built = SCHEMES.get("pseudo-labels")([small_cnn(1)], rounds=2, labelled_fraction=0.25, threshold=0.0)
    data = tiny_data()
    trained, names = [], []
    for phase in built.phases():
        fit(phase.scheme, data, None, SETTINGS)
        trained.append(phase.scheme)
        names.append(phase.name)
    detector, first, second = trained
    assert names == ["detector", "round0", "round1"]
    assert first.labeller.model is detector.student and second.labeller.model is first.student
    assert first.student is not detector.student and second.student is not first.student
    unlabelled = ~first.labelled
    with torch.no_grad():
        detector.student.eval()
        expected = detector.student(data.inputs).argmax(dim=1)
    assert torch.equal(first.table[unlabelled], expected[unlabelled])
    assert list(built.predictors()) == ["final", "detector"] and built.predictors()["final"] is second.student


def test_continued_training_keeps_the_model_and_labels_from_a_frozen_copy() -> None:
    model = small_cnn(1)
    built = SCHEMES.get("pseudo-labels")([model], rounds=1, labelled_fraction=0.5, threshold=0.0,
                                         continue_training=True)
    phases = list(built.phases())
    data = ArrayDataset(tiny_data().inputs, tiny_data().targets)
    fit(phases[0].scheme, data, None, SETTINGS)
    round0 = phases[1].scheme
    assert round0.student is model
    fit(round0, data, None, SETTINGS)
    assert round0.labeller.model is not model and all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize(
    "params",
    [{"rounds": 0}, {"labelled_fraction": 0.0}, {"threshold": 1.5}, {"continue_training": "maybe"},
     {"ordinal_levels": 1}, {"seed": 0.5}, {"detector_epochs": 0}],
)
def test_bad_parameters_raise(params: dict) -> None:
    with pytest.raises(MentorError, match=next(iter(params))):
        SCHEMES.create("pseudo-labels", [small_cnn(1)], **params)
