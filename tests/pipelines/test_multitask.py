"""The pieces of a multi-task run: the multi-head model, the data and its packing, pseudo labels, the scheme."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import mentor
from mentor.batch import Batch
from mentor.errors import MentorError
from mentor.models.multi_head import MultiHead, TaskHead
from mentor.pipelines.multitask_data import Layout, Task, ink, pool_cut, task_data
from mentor.pipelines.multitask_steps import (
    CrossTask,
    MultiTaskTraining,
    ground_truth_set,
    pseudo_labels,
    ranking_head,
    related,
)

TASKS = [Task("digits", "digits"), Task("ink", "digits", "ink")]


def test_the_multi_head_cnn_gives_one_output_per_task_and_a_view_per_head() -> None:
    model = mentor.models.create("cnn-multi-head", input_shape=(1, 8, 8), channels=[4, 8],
                                 heads={"a": 3, "b": 1})
    outputs = model(torch.randn(2, 1, 8, 8))
    assert {name: tuple(value.shape) for name, value in outputs.items()} == {"a": (2, 3), "b": (2, 1)}
    assert torch.equal(TaskHead(model, "b")(torch.ones(1, 1, 8, 8)), model(torch.ones(1, 1, 8, 8))["b"])
    with pytest.raises(MentorError, match="no head 'c'"):
        TaskHead(model, "c")
    with pytest.raises(MentorError, match="output width >= 1"):
        MultiHead(nn.Identity(), 4, {"a": 0})
    mlp = mentor.models.create("mlp-multi-head", input_shape=(1, 8, 8), hidden=[5], heads={"a": 3, "b": 1})
    assert mlp.tasks == {"a": 3, "b": 1} and mlp(torch.randn(2, 1, 8, 8))["a"].shape == (2, 3)
    assert mentor.models.count_parameters(mlp) == 64 * 5 + 5 + 5 * 3 + 3 + 5 * 1 + 1


def test_ink_is_the_percentage_of_pixels_above_one_half() -> None:
    image = torch.tensor([[[[0.6, 0.4], [1.0, 0.5]]]])
    assert ink(image).tolist() == [[50.0]]


def test_the_pool_and_the_teachers_part_split_the_training_set() -> None:
    kept, pooled = pool_cut(10, 0.3, seed=0)
    assert len(pooled) == 3 and sorted(torch.cat([kept, pooled]).tolist()) == list(range(10))
    with pytest.raises(MentorError, match="'pool_fraction' parameter of multitask"):
        pool_cut(10, 0.01, seed=0)


def test_task_data_labels_each_task_and_pools_images_without_labels() -> None:
    data = task_data(TASKS, seed=0, validation=0.1, limit=100, pool_fraction=0.5)
    digits, inked = data.tasks["digits"], data.tasks["ink"]
    assert len(digits.train) + len(data.pool) == 90 and len(data.pool) == 45
    assert inked.train.targets.shape == (45, 1) and torch.equal(inked.test.targets, ink(digits.test.inputs))
    assert digits.train.targets.dtype == torch.int64 and inked.num_classes == 1


def test_the_layout_packs_and_unpacks_every_task() -> None:
    layout = Layout({"a": 2, "b": 1})
    packed = layout.pack(2, {"b": (torch.tensor([[7.0], [8.0]]), torch.tensor([1, 0]), torch.tensor([0, 1]))})
    assert packed.shape == (2, 7)
    targets, mask, event = layout.unpack(packed, "b")
    assert targets.tolist() == [[7.0], [8.0]] and mask.tolist() == [True, False] and event.tolist() == [0.0, 1.0]
    assert layout.unpack(packed, "a")[1].tolist() == [False, False]


class Fixed(nn.Module):
    """A 'teacher' whose outputs are its inputs' first values: known pseudo labels."""

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs.flatten(1)[:, :2]


def test_pseudo_labels_are_calibrated_soft_probabilities_or_values() -> None:
    pool = mentor.data.ArrayDataset(torch.tensor([[2.0, 0.0], [0.0, 0.0], [4.0, 1.0]]), torch.zeros(3))
    labels = pseudo_labels(Fixed(), Task("a", "x"), pool, (2.0, 1.0, 0.0), confidence=0.7)
    # softmax(z / 2): (1, 0) -> 0.731059; (0, 0) -> ½; (2, 0.5) -> 0.817574
    assert labels.targets[:, 0].tolist() == pytest.approx([0.731059, 0.5, 0.817574], abs=1e-6)
    assert labels.events.tolist() == [1.0, 0.0, 1.0]
    values = pseudo_labels(Fixed(), Task("r", "x", "ink"), pool, (1.0, 2.0, 1.0), confidence=0.7)
    assert values.targets.tolist() == [[5.0, 1.0], [1.0, 1.0], [9.0, 3.0]]  # 2·r + 1
    assert values.events.tolist() == [1.0, 0.0, 1.0]  # above the median 5
    assert related({"a": labels.events, "r": values.events}) == {("a", "r"): True, ("r", "a"): True}


def test_the_ground_truth_set_labels_each_row_for_its_own_task_only() -> None:
    data = task_data(TASKS, seed=0, validation=0.1, limit=100, pool_fraction=0.5)
    layout = Layout({"digits": 10, "ink": 1})
    train = ground_truth_set(TASKS, data.tasks, layout)
    assert len(train) == 90
    first, mask, _ = layout.unpack(train.targets, "digits")
    assert mask.tolist() == [True] * 45 + [False] * 45
    assert torch.equal(first[:45].argmax(dim=1), data.tasks["digits"].train.targets)
    assert layout.unpack(train.targets, "ink")[1].tolist() == [False] * 45 + [True] * 45


def test_gradients_reach_the_weighted_heads_and_the_body_only() -> None:
    torch.manual_seed(0)
    student = mentor.models.create("cnn-multi-head", input_shape=(1, 8, 8), channels=[4],
                                   heads={"digits": 10, "ink": 1})
    tasks = [Task("digits", "digits"), Task("ink", "digits", "ink", weight=0.0)]
    layout = Layout({"digits": 10, "ink": 1})
    rows = 6
    targets = layout.pack(rows, {"digits": (torch.full((rows, 10), 0.1), torch.ones(rows), torch.ones(rows)),
                                 "ink": (torch.ones(rows, 1), torch.ones(rows), torch.zeros(rows))})
    scheme = MultiTaskTraining(student, tasks, layout, {"digits": 1.0, "ink": 1.0})
    output = scheme.loss(Batch(torch.randn(rows, 1, 8, 8), targets, torch.arange(rows), rows), 0.0, 1)
    output.total.backward()
    assert set(output.parts) == {"digits", "ink"} and output.parts["ink"] > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in student.heads["digits"].parameters())
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in student.heads["ink"].parameters())
    assert student.body.stage1.conv1.weight.grad.abs().sum() > 0


def test_cross_task_adds_one_ranking_loss_per_ordered_pair_on_its_own_heads() -> None:
    student = mentor.models.create("cnn-multi-head", input_shape=(1, 8, 8), channels=[4],
                                   heads={"digits": 10, "ink": 1, ranking_head("digits"): 1, ranking_head("ink"): 1})
    layout = Layout({"digits": 10, "ink": 1})
    rows = 4
    events, others = torch.tensor([1.0, 1.0, 0.0, 0.0]), torch.tensor([1.0, 0.0, 1.0, 0.0])  # levels 3, 2, 1, 0
    targets = layout.pack(rows, {"digits": (torch.full((rows, 10), 0.1), torch.ones(rows), events),
                                 "ink": (torch.ones(rows, 1), torch.ones(rows), others)})
    pairs = related({"digits": events, "ink": others})
    scheme = MultiTaskTraining(student, TASKS, layout, {"digits": 1.0, "ink": 1.0}, CrossTask(0.5), pairs)
    output = scheme.loss(Batch(torch.randn(rows, 1, 8, 8), targets, torch.arange(rows), rows), 0.0, 1)
    assert pairs == {("digits", "ink"): True, ("ink", "digits"): True}  # uncorrelated: the paper's order
    assert related({"digits": events, "ink": 1 - events})[("digits", "ink")] is False
    assert set(output.parts) == {"digits", "ink", "rank digits|ink", "rank ink|digits"}
    expected = output.parts["digits"] + output.parts["ink"] + 0.5 * (output.parts["rank digits|ink"]
                                                                     + output.parts["rank ink|digits"])
    assert output.total.item() == pytest.approx(expected.item(), rel=1e-6)
    student.zero_grad()
    scheme = MultiTaskTraining(student, [Task("digits", "digits", weight=0.0), Task("ink", "digits", "ink", 0.0)],
                               layout, {"digits": 1.0, "ink": 1.0}, CrossTask(1.0), pairs)
    scheme.loss(Batch(torch.randn(rows, 1, 8, 8), targets, torch.arange(rows), rows), 0.0, 1).total.backward()
    # the ranking losses train their own heads and the body, never a task head
    assert student.heads["digits-rank"].weight.grad.abs().sum() > 0
    assert student.heads["digits"].weight.grad.abs().sum() == 0
