"""Distillation from internal representations: attention maps, values by hand, PID/SID stages, errors."""

from __future__ import annotations

import math

import pytest
import torch

from mentor.batch import Batch, Outputs
from mentor.errors import MentorError
from mentor.knowledge import Stage, create
from mentor.knowledge.internal import spatial_attention
from mentor.losses import Context, Objective
from mentor.schemes import Offline
from tests.knowledge.conftest import sample_batch, student_model, teacher_model

LAYERS = [{"student": "stage1", "teacher": "stage1"}, {"student": "stage2", "teacher": "stage2"}]


def test_spatial_attention_is_the_attention_map_normalized_to_sum_one() -> None:
    features = torch.tensor([[[[1.0, 0.0], [2.0, -1.0]], [[0.5, 1.0], [-2.0, 3.0]]]])  # (1, 2, 2, 2)
    squares = [1.25, 1.0, 8.0, 10.0]  # Σ_c F² at positions (0,0), (0,1), (1,0), (1,1); their sum is 20.25
    assert spatial_attention(features)[0].tolist() == pytest.approx([v / 20.25 for v in squares], rel=1e-6)
    torch.testing.assert_close(spatial_attention(7 * features), spatial_attention(features))


def test_attention_value_and_gradient_by_hand() -> None:
    # a_S = [1.25, 1, 8, 10] / 20.25, a_T = [4, 1, 1, 4] / 10; KL(a_T || a_S) = Σ a_T log(a_T / a_S) = 0.596370
    # and ∂KL/∂F_c,j = 2 F_c,j (1/Σ Q_S − a_T,j / Q_S,j)
    student = torch.tensor([[[[1.0, 0.0], [2.0, -1.0]], [[0.5, 1.0], [-2.0, 3.0]]]], dtype=torch.float64,
                           requires_grad=True)
    teacher = torch.tensor([[[[2.0, 1.0], [1.0, 2.0]]]], dtype=torch.float64)
    objective = create("internal", layers=[{"student": "s", "teacher": "t"}], hidden_weight=0.0, alpha=0.0)
    context = Context(Batch(torch.zeros(1, 1), torch.tensor([0])), Outputs(torch.zeros(1, 3), {"s": student}),
                      Outputs(torch.zeros(1, 3), {"t": teacher}))
    objective.bind(context.student, context.teacher)
    value = objective.terms["attention1"].loss(context)
    assert float(value.detach()) == pytest.approx(0.596370, rel=1e-6)
    value.backward()
    expected = torch.tensor([[[[-0.541235, 0.0], [0.147531, -0.018765]], [[-0.270617, -0.101235],
                                                                           [-0.147531, 0.056296]]]],
                            dtype=torch.float64)
    torch.testing.assert_close(student.grad, expected, atol=1e-6, rtol=0)


def map_context(dtype: torch.dtype = torch.float32) -> tuple[Context, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    student_map = torch.randn(2, 2, 2, 2, generator=generator, dtype=dtype).requires_grad_()
    teacher_map = torch.randn(2, 2, 2, 2, generator=generator, dtype=dtype)
    student_logits = torch.randn(2, 3, generator=generator, dtype=dtype).requires_grad_()
    teacher_logits = torch.randn(2, 3, generator=generator, dtype=dtype)
    batch = Batch(torch.zeros(2, 1), torch.tensor([2, 0]))
    context = Context(batch, Outputs(student_logits, {"s": student_map}), Outputs(teacher_logits, {"t": teacher_map}))
    return context, student_map, student_logits


def test_value_matches_a_hand_computed_reference() -> None:
    context, student_map, student_logits = map_context()
    objective = create("internal", layers=[{"student": "s", "teacher": "t"}], hidden_weight=0.6, attention_weight=1.7,
                       temperature=2.0, alpha=0.25)
    objective.bind(context.student, context.teacher)
    s_map, t_map = student_map.detach(), context.teacher.features["t"]
    s, t, y = student_logits.detach().tolist(), context.teacher.logits.tolist(), context.batch.targets.tolist()
    ce = kl = hidden = attention = 0.0
    for b in range(2):
        ce -= s[b][y[b]] - math.log(sum(math.exp(v) for v in s[b]))
        p_t = [math.exp(v / 2) / sum(math.exp(u / 2) for u in t[b]) for v in t[b]]
        p_s = [math.exp(v / 2) / sum(math.exp(u / 2) for u in s[b]) for v in s[b]]
        kl += 4 * sum(p * math.log(p / q) for p, q in zip(p_t, p_s, strict=True))
        u, v = s_map[b].flatten().tolist(), t_map[b].flatten().tolist()
        dot = sum(a * c for a, c in zip(u, v, strict=True))
        hidden += 1 - dot / (math.sqrt(sum(a * a for a in u)) * math.sqrt(sum(c * c for c in v)))
        a_s = [sum(s_map[b, c, i, j].item() ** 2 for c in range(2)) for i in range(2) for j in range(2)]
        a_t = [sum(t_map[b, c, i, j].item() ** 2 for c in range(2)) for i in range(2) for j in range(2)]
        q_s, q_t = [a / sum(a_s) for a in a_s], [a / sum(a_t) for a in a_t]
        attention += sum(p * math.log(p / q) for p, q in zip(q_t, q_s, strict=True))
    expected = {"ce": 0.75 * ce / 2, "kl": 0.25 * kl / 2, "hidden1": 0.6 * hidden / 2,
                "attention1": 1.7 * attention / 2}
    output = objective(context)
    assert set(output.parts) == set(expected)
    for name, value in expected.items():
        assert float(output.parts[name]) == pytest.approx(value, rel=1e-5), name


def test_gradients_of_the_layer_terms_are_correct() -> None:
    context, student_map, student_logits = map_context(torch.float64)
    objective = create("internal", layers=[{"student": "s", "teacher": "t"}])
    objective.bind(context.student, context.teacher)

    def total(features: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        return objective(Context(context.batch, Outputs(logits, {"s": features}), context.teacher)).total

    assert torch.autograd.gradcheck(total, (student_map, student_logits))


def terms_of(stage: Stage) -> list[str]:
    return [term.name for term in stage.objective]


def test_progressive_schedule_has_one_stage_per_layer_then_kd() -> None:
    stages = create("internal", layers=LAYERS, progressive=True, layer_epochs=2)
    assert [(s.name, s.epochs) for s in stages] == [("layer1", 2), ("layer2", 2), ("distill", None)]
    assert [terms_of(s) for s in stages] == [["hidden1", "attention1"], ["hidden2", "attention2"], ["ce", "kl"]]
    single = create("internal", layers=LAYERS)
    assert isinstance(single, Objective)
    assert [t.name for t in single] == ["ce", "kl", "hidden1", "attention1", "hidden2", "attention2"]


def test_stacked_schedule_keeps_lower_layers_and_their_trained_adapters() -> None:
    stages = create("internal", layers=LAYERS, progressive=True, stacked=True, layer_epochs=1)
    assert [terms_of(s) for s in stages][:2] == [["hidden1", "attention1"], ["hidden1", "attention1", "hidden2",
                                                                               "attention2"]]
    first = Offline(student_model(), stages[0].objective, teacher_model())
    first.setup(sample_batch())
    adapter = stages[0].objective.terms["hidden1"].adapter
    assert isinstance(adapter.conv, torch.nn.Conv2d)  # (4, 4, 4) -> (8, 4, 4) needs conv1x1
    with torch.no_grad():
        adapter.conv.weight.add_(1.0)  # as if stage 1 trained it
    trained = adapter.conv.weight.clone()
    Offline(student_model(), stages[1].objective, teacher_model()).setup(sample_batch())
    assert stages[1].objective.terms["hidden1"].adapter is adapter
    assert torch.equal(adapter.conv.weight, trained)


def test_a_layer_stage_trains_the_student_and_adapter_but_not_the_head() -> None:
    stage = create("internal", layers=LAYERS[:1], progressive=True)[0]
    scheme = Offline(student_model(), stage.objective, teacher_model())
    scheme.setup(sample_batch())
    scheme.train()
    scheme.loss(sample_batch(), 0.0, 1).total.backward()
    assert scheme.student.stage1.conv1.weight.grad.abs().sum() > 0
    assert scheme.student.head.weight.grad is None
    assert all(p.grad is not None for p in scheme.objective.parameters())


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"layers": []}, "layers"),
        ({"layers": [{"student": "stage1", "techer": "stage1"}]}, "techer"),
        ({"layers": LAYERS, "stacked": True}, "progressive"),
        ({"layers": LAYERS, "adapter": "conv5x5"}, "adapter"),
        ({"layers": LAYERS, "layer_epochs": 0}, "layer_epochs"),
        ({"layers": LAYERS, "attention_weight": -1}, "attention_weight"),
    ],
)
def test_bad_parameters_raise(params: dict, message: str) -> None:
    with pytest.raises(MentorError, match=message):
        create("internal", **params)


def test_attention_needs_maps_of_the_same_spatial_size() -> None:
    mismatched = create("internal", layers=[{"student": "stage1", "teacher": "stage2"}])
    with pytest.raises(MentorError, match="same H x W"):
        Offline(student_model(), mismatched, teacher_model()).setup(sample_batch())
    vectors = create("internal", layers=[{"student": "flatten", "teacher": "flatten"}])
    with pytest.raises(MentorError, match="attention_weight: 0"):
        Offline(student_model(), vectors, teacher_model()).setup(sample_batch())
    hidden_only = create("internal", layers=[{"student": "flatten", "teacher": "flatten"}], attention_weight=0)
    Offline(student_model(), hidden_only, teacher_model()).setup(sample_batch())  # linear adapter (8,) -> (16,)
    assert isinstance(hidden_only.terms["hidden1"].adapter[1], torch.nn.Linear)
