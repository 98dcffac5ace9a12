"""Attention transfer (Zagoruyko & Komodakis 2017), activation- and gradient-based, against hand values."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from mentor.batch import Batch, Outputs
from mentor.errors import MentorError
from mentor.knowledge import create
from mentor.losses import Context
from mentor.schemes import Offline
from mentor.teachers.frozen import FrozenTeacher
from tests.knowledge.conftest import sample_batch, teacher_model


def loop_attention(features: torch.Tensor) -> list[list[float]]:
    """Per sample, the flattened map Σ_c A_c² normalized by its L2 norm, by loops."""
    batch, channels, height, width = features.shape
    maps = []
    for b in range(batch):
        values = [
            sum(float(features[b, c, i, j]) ** 2 for c in range(channels)) for i in range(height) for j in range(width)
        ]
        length = math.sqrt(sum(v * v for v in values))
        maps.append([v / length for v in values])
    return maps


def test_activation_attention_value_over_two_layer_pairs() -> None:
    generator = torch.Generator().manual_seed(0)
    s1, t1 = torch.randn(2, 2, 2, 2, generator=generator), torch.randn(2, 3, 2, 2, generator=generator)
    s2, t2 = torch.randn(2, 4, 3, 3, generator=generator), torch.randn(2, 1, 3, 3, generator=generator)
    objective = create("at", student=["s1", "s2"], teacher=["t1", "t2"], beta=10.0)
    student = Outputs(torch.zeros(2, 3), {"s1": s1, "s2": s2})
    teacher = Outputs(torch.zeros(2, 3), {"t1": t1, "t2": t2})
    objective.bind(student, teacher)
    out = objective(Context(Batch(torch.zeros(2, 1), torch.zeros(2, dtype=torch.long)), student, teacher))
    expected = 0.0
    for s, t, elements in ((s1, t1, 4), (s2, t2, 9)):
        for qs, qt in zip(loop_attention(s), loop_attention(t), strict=True):
            expected += sum((a - b) ** 2 for a, b in zip(qs, qt, strict=True)) / 2 / elements  # mean over b, H·W
    assert out.parts["at"].item() == pytest.approx(10.0 / 2 * expected, rel=1e-5)
    assert set(out.parts) == {"ce", "at"}


def test_value_and_gradient_match_the_authors_code_at_its_beta() -> None:
    # at(x) = normalize(vec(mean_c x²)); loss = β/2 · mean (at(s) − at(t))², β = 1000, by hand:
    # Σ_c s² = [1.25, 4, 1, 2] / 4.75 = [0.263158, 0.842105, 0.210526, 0.421053]
    # Σ_c t² = [5, 2, 2, 5] / √58 = [0.656532, 0.262613, 0.262613, 0.656532]
    # mean of the squared differences 0.137180, times 500
    student = torch.tensor([[[[1.0, 2.0], [0.0, -1.0]], [[0.5, 0.0], [1.0, 1.0]]]], dtype=torch.float64,
                           requires_grad=True)
    teacher = torch.tensor([[[[2.0, 0.0], [1.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]], [[1.0, 1.0], [0.0, 2.0]]]],
                           dtype=torch.float64)
    objective = create("at", student=["s"], teacher=["t"])
    student_out, teacher_out = Outputs(torch.zeros(1, 3), {"s": student}), Outputs(torch.zeros(1, 3), {"t": teacher})
    objective.bind(student_out, teacher_out)
    batch = Batch(torch.zeros(1, 1), torch.zeros(1, dtype=torch.long))
    value = objective(Context(batch, student_out, teacher_out)).parts["at"]
    assert float(value) == pytest.approx(68.589797, rel=1e-6)
    term = objective.terms["at"]
    (term.weight * term.loss(Context(batch, student_out, teacher_out))).backward()
    expected = torch.tensor([[[[-49.007795, 73.358544], [0.0, 36.947283]],
                              [[-24.503898, 0.0], [-11.562777, -36.947283]]]], dtype=torch.float64)
    torch.testing.assert_close(student.grad, expected, atol=1e-5, rtol=0)


def test_maps_of_different_sizes_are_pooled_to_the_smaller() -> None:
    student_map = torch.tensor([[1.0, 2.0, 0.0, 0.0], [3.0, 4.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    student = Outputs(torch.zeros(1, 3), {"s": student_map.sqrt().view(1, 1, 4, 4)})  # Σ_c A² = student_map
    teacher = Outputs(torch.zeros(1, 3), {"t": torch.tensor([[2.5, 0.0], [0.0, 1.0]]).sqrt().view(1, 1, 2, 2)})
    objective = create("at", student=["s"], teacher=["t"])
    objective.bind(student, teacher)
    out = objective(Context(Batch(torch.zeros(1, 1), torch.zeros(1, dtype=torch.long)), student, teacher))
    assert out.parts["at"].item() == pytest.approx(0.0, abs=1e-5)  # 2x2 means of the map: [[2.5, 0], [0, 1]]


def test_alpha_adds_kd_and_the_distance_has_a_gradient() -> None:
    objective = create("at", student=["s"], teacher=["t"], alpha=0.25, temperature=2.0)
    assert set(objective.terms) == {"ce", "kl", "at"}
    assert objective.terms["ce"].weight == 0.75 and objective.terms["kl"].weight == 0.25
    generator = torch.Generator().manual_seed(4)
    features = torch.randn(2, 3, 2, 2, dtype=torch.float64, generator=generator).requires_grad_(True)
    target = torch.randn(2, 2, 2, 2, dtype=torch.float64, generator=generator)
    term = objective.terms["at"]

    def value(student_features: torch.Tensor) -> torch.Tensor:
        student = Outputs(torch.zeros(2, 3), {"s": student_features})
        teacher = Outputs(torch.zeros(2, 3), {"t": target})
        return term.loss(Context(Batch(torch.zeros(2, 1), torch.zeros(2, dtype=torch.long)), student, teacher))

    assert torch.autograd.gradcheck(value, (features,))


def linear_input_gradient(weight: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """∂ mean_b CE(W x_b, y_b) / ∂x_b = Wᵀ (softmax(W x_b) − onehot(y_b)) / B, written out."""
    batch = inputs.shape[0]
    rows = []
    for b in range(batch):
        probs = torch.softmax(weight @ inputs[b], dim=0)
        probs[targets[b]] -= 1.0
        rows.append(weight.T @ probs / batch)
    return torch.stack(rows)


def gradient_setup() -> tuple[nn.Linear, FrozenTeacher, Batch]:
    torch.manual_seed(0)
    student, teacher = nn.Linear(3, 4, bias=False).double(), nn.Linear(3, 4, bias=False).double()
    generator = torch.Generator().manual_seed(5)
    batch = Batch(torch.randn(2, 3, dtype=torch.float64, generator=generator), torch.tensor([1, 3]))
    return student, FrozenTeacher(teacher), batch


def test_gradient_mode_value_and_double_backprop_gradient() -> None:
    student, teacher, batch = gradient_setup()
    objective = create("at", mode="gradient", beta=6.0)
    assert set(objective.terms) == {"ce", "at"}
    term = objective.terms["at"]

    def loss() -> torch.Tensor:
        context = Context(batch, Outputs(student(batch.inputs)), teacher.outputs(batch.inputs), 0, 1, student, teacher)
        return term.loss(context)

    j_s = linear_input_gradient(student.weight.detach(), batch.inputs, batch.targets)
    j_t = linear_input_gradient(teacher.model.weight, batch.inputs, batch.targets)
    expected = 0.0
    for b in range(2):
        s, t = j_s[b] / j_s[b].norm(), j_t[b] / j_t[b].norm()
        expected += float((s - t).pow(2).sum()) / 2 / 3  # mean over the batch and the 3 input elements
    value = loss()
    assert value.item() == pytest.approx(expected, rel=1e-6)
    value.backward()
    assert student.weight.grad is not None and student.weight.grad.abs().sum() > 0
    assert teacher.model.weight.grad is None and not teacher.model.weight.requires_grad
    # the second-order gradient agrees with central finite differences
    eps = 1e-6
    with torch.no_grad():
        student.weight[0, 1] += eps
        plus = loss().item()
        student.weight[0, 1] -= 2 * eps
        minus = loss().item()
        student.weight[0, 1] += eps
    assert student.weight.grad[0, 1].item() == pytest.approx((plus - minus) / (2 * eps), rel=1e-4, abs=1e-9)


def test_gradient_mode_vanishes_for_a_copy_of_the_teacher_and_leaves_it_frozen() -> None:
    teacher = teacher_model()
    student = copy.deepcopy(teacher)
    scheme = Offline(student, create("at", mode="gradient"), teacher)
    scheme.setup(sample_batch())
    student.eval()
    out = scheme.loss(sample_batch(), 0.5, 2)
    assert abs(out.parts["at"].item()) < 1e-6
    student.train()
    scheme.loss(sample_batch(), 0.5, 2).total.backward()
    assert all(p.grad is None for p in scheme.teacher.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())


def test_bad_parameters() -> None:
    with pytest.raises(MentorError, match="same number .* of layer paths"):
        create("at")
    with pytest.raises(MentorError, match="same number .* of layer paths"):
        create("at", student=["a", "b"], teacher=["a"])
    with pytest.raises(MentorError, match="not used in gradient mode"):
        create("at", student=["a"], teacher=["a"], mode="gradient")
    with pytest.raises(MentorError, match="'mode' parameter of at"):
        create("at", student=["a"], teacher=["a"], mode="saliency")
    with pytest.raises(MentorError, match="'beta' parameter of at"):
        create("at", student=["a"], teacher=["a"], beta=-1)
    with pytest.raises(MentorError, match="'norm' parameter of at"):
        create("at", student=["a"], teacher=["a"], norm=0.5)
    objective = create("at", student=["a"], teacher=["b"])
    with pytest.raises(MentorError, match="need feature maps"):
        flat = Outputs(torch.zeros(1, 2), {"a": torch.zeros(1, 4)})
        objective.bind(flat, Outputs(torch.zeros(1, 2), {"b": torch.zeros(1, 2, 2, 2)}))
