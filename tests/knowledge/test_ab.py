"""Activation-boundary distillation (Heo et al. 2019) against hand-computed values."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mentor.batch import Batch, Outputs
from mentor.data import ArrayDataset
from mentor.engine import FitSettings, fit
from mentor.engine.optim import OptimizerSettings
from mentor.errors import MentorError
from mentor.knowledge import create
from mentor.knowledge.ab import activation_boundary_loss
from mentor.losses import Context
from mentor.schemes import Offline
from tests.knowledge.conftest import student_model, teacher_model

TEACHER = [[2.0, -1.0, 0.0, 0.5], [-0.3, 1.0, -2.0, 3.0]]
STUDENT = [[0.5, -0.2, -3.0, 1.5], [0.1, 2.0, -1.5, -1.0]]


def test_hinge_loss_on_a_tiny_tensor() -> None:
    # teacher active (T > 0) -> (max(0, μ − S))², inactive (T <= 0) -> (max(0, μ + S))², μ = 1:
    # sample 0: active 0.5 -> 0.25; inactive -0.2 -> 0.64; inactive (T = 0) -3 -> 0; active 1.5 -> 0
    # sample 1: inactive 0.1 -> 1.21; active 2 -> 0; inactive -1.5 -> 0; active -1 -> 4
    value = activation_boundary_loss(torch.tensor(STUDENT), torch.tensor(TEACHER), margin=1.0)
    assert value.item() == pytest.approx(((0.25 + 0.64) + (1.21 + 4.0)) / 2, rel=1e-6)
    # margin 0.5: sample 0: 0, 0.09, 0, 0; sample 1: 0.36, 0, 0, 2.25
    value = activation_boundary_loss(torch.tensor(STUDENT), torch.tensor(TEACHER), margin=0.5)
    assert value.item() == pytest.approx((0.09 + 0.36 + 2.25) / 2, rel=1e-6)


def test_gradient_pushes_neurons_across_the_teachers_boundary() -> None:
    student = torch.tensor(STUDENT, requires_grad=True)
    activation_boundary_loss(student, torch.tensor(TEACHER), margin=1.0).backward()
    # d/dS (μ − S)² = −2(μ − S), d/dS (μ + S)² = 2(μ + S), batch mean over 2 samples
    expected = [[-2 * 0.5 / 2, 2 * 0.8 / 2, 0.0, 0.0], [2 * 1.1 / 2, 0.0, 0.0, -2 * 2.0 / 2]]
    assert torch.allclose(student.grad, torch.tensor(expected))


def test_stages_and_connectors() -> None:
    stages = create("ab", student=["s1", "s2"], teacher=["t1", "t2"], init_epochs=3)
    assert [(s.name, s.epochs) for s in stages] == [("init", 3), ("train", None)]
    assert set(stages[1].objective.terms) == {"ce"}
    assert set(create("ab", student=["s"], teacher=["t"], alpha=0.5)[1].objective.terms) == {"ce", "kl"}
    student = Outputs(torch.zeros(2, 5), {"s1": torch.randn(2, 4, 8, 8), "s2": torch.randn(2, 3)})
    teacher = Outputs(torch.zeros(2, 5), {"t1": torch.randn(2, 16, 4, 4), "t2": torch.randn(2, 6)})
    stages[0].objective.bind(student, teacher)
    connectors = stages[0].objective.terms["ab"].connectors.eval()
    assert connectors[0](student.get("s1")).shape == (2, 16, 4, 4)  # 1x1 conv + BN, resized to the teacher
    assert connectors[1](student.get("s2")).shape == (2, 6)  # vectors get linear + BN
    assert isinstance(connectors[0].conv, nn.Conv2d) and connectors[0].conv.kernel_size == (1, 1)


def test_term_value_sums_pairs_and_applies_the_weight() -> None:
    objective = create("ab", student=["s1", "s2"], teacher=["t1", "t2"], margin=1.0, weight=2.0)[0].objective
    student = Outputs(torch.zeros(2, 5), {"s1": torch.zeros(2, 3, 2, 2), "s2": torch.tensor(STUDENT)})
    teacher = Outputs(torch.zeros(2, 5), {"t1": torch.ones(2, 3, 2, 2), "t2": torch.tensor(TEACHER)})
    objective.bind(student, teacher)
    objective.terms["ab"].connectors = nn.ModuleList([nn.Identity(), nn.Identity()])  # compare the raw tensors
    out = objective(Context(Batch(torch.zeros(2, 1), torch.zeros(2, dtype=torch.long)), student, teacher))
    # pair 1: every teacher neuron active, student at 0 -> (1 − 0)² on 12 neurons per sample, halved as the
    # shallower of two pairs; pair 2 (the deepest, weight 1) as in the first test
    assert out.parts["ab"].item() == pytest.approx(2.0 * (12.0 / 2 + (0.89 + 5.21) / 2), rel=1e-6)


def test_default_weight_is_the_reference_scale_in_value_and_gradient() -> None:
    # one pair (the deepest: layer weight 1), w = 3/1000: value 0.003 · (0.89 + 5.21) / 2 = 0.00915, and the
    # gradient of the first test times 0.003
    objective = create("ab", student=["s"], teacher=["t"])[0].objective
    student = torch.tensor(STUDENT, requires_grad=True)
    outputs = Outputs(torch.zeros(2, 5), {"s": student}), Outputs(torch.zeros(2, 5), {"t": torch.tensor(TEACHER)})
    objective.bind(*outputs)
    objective.terms["ab"].connectors = nn.ModuleList([nn.Identity()])
    value = objective(Context(Batch(torch.zeros(2, 1), torch.zeros(2, dtype=torch.long)), *outputs)).total
    assert value.item() == pytest.approx(0.00915, rel=1e-6)
    value.backward()
    expected = [[-0.5 * 0.003, 0.8 * 0.003, 0.0, 0.0], [1.1 * 0.003, 0.0, 0.0, -2.0 * 0.003]]
    assert torch.allclose(student.grad, torch.tensor(expected))


def test_init_stage_lowers_the_boundary_loss_on_the_tiny_pair() -> None:
    stage = create("ab", student=["stage2.relu1:input"], teacher=["stage2.relu1:input"], init_epochs=4)[0]
    generator = torch.Generator().manual_seed(3)
    data = ArrayDataset(torch.randn(32, 1, 8, 8, generator=generator), torch.randint(0, 5, (32,), generator=generator))
    scheme = Offline(student_model(), stage.objective, teacher_model())
    settings = FitSettings(epochs=4, batch_size=8, progress=False, optimizer=OptimizerSettings(lr=1e-2))
    history = fit(scheme, data, None, settings).history
    assert history[-1]["train/ab"] < 0.8 * history[0]["train/ab"]
    assert any(p.grad is not None for p in stage.objective.parameters())


def test_bad_parameters_and_shapes() -> None:
    with pytest.raises(MentorError, match="must pair up one to one. Got .* pre-activation taps"):
        create("ab", student=["a", "b"], teacher=["a"])
    with pytest.raises(MentorError, match="'student' parameter of ab"):
        create("ab", student=[], teacher=[])
    with pytest.raises(MentorError, match="'margin' parameter of ab"):
        create("ab", student=["a"], teacher=["a"], margin=-1)
    with pytest.raises(MentorError, match="'init_epochs' parameter of ab"):
        create("ab", student=["a"], teacher=["a"], init_epochs=0)
    with pytest.raises(MentorError, match="'alpha' parameter of ab"):
        create("ab", student=["a"], teacher=["a"], alpha=2)
    objective = create("ab", student=["a"], teacher=["b"])[0].objective
    with pytest.raises(MentorError, match="cannot connect student shape"):
        flat = Outputs(torch.zeros(1, 5), {"a": torch.zeros(1, 4)})
        objective.bind(flat, Outputs(torch.zeros(1, 5), {"b": torch.zeros(1, 2, 2, 2)}))
