"""Adversarial learning of portable students: values by hand, gradient isolation both ways, bad parameters."""

from __future__ import annotations

import math

import pytest
import torch

from mentor.batch import Batch, Outputs
from mentor.errors import MentorError
from mentor.knowledge import create
from mentor.losses import Context, Objective
from mentor.schemes import Offline
from mentor.schemes.offline import student_outputs
from tests.knowledge.conftest import sample_batch, student_model, teacher_model


def tiny_game(weights: dict[str, float] | None = None) -> tuple[Objective, Context, torch.Tensor]:
    generator = torch.Generator().manual_seed(7)
    student = torch.randn(4, 3, generator=generator).requires_grad_()
    teacher = torch.randn(4, 3, generator=generator)
    context = Context(Batch(torch.zeros(4, 1), torch.tensor([0, 2, 1, 2])), Outputs(student), Outputs(teacher))
    torch.manual_seed(0)
    objective = create("adversarial", hidden=2, **(weights or {}))
    objective.bind(context.student, context.teacher)
    return objective, context, student


def discriminator_parameters(objective: Objective) -> list[torch.nn.Parameter]:
    return list(objective.terms["discriminator"].game.discriminator.parameters())


def test_value_matches_a_hand_computed_reference() -> None:
    objective, context, student = tiny_game({"ce_weight": 0.5, "adversarial_weight": 2.0, "distance_weight": 0.25})
    first, _, second = objective.terms["discriminator"].game.discriminator
    w1, b1, w2, b2 = first.weight.tolist(), first.bias.tolist(), second.weight.tolist()[0], second.bias.item()

    def discriminate(x: list[float]) -> float:
        hidden = [sum(w * v for w, v in zip(row, x, strict=True)) + b for row, b in zip(w1, b1, strict=True)]
        hidden = [h if h > 0 else 0.2 * h for h in hidden]
        return sum(w * h for w, h in zip(w2, hidden, strict=True)) + b2

    def sigmoid(v: float) -> float:
        return 1 / (1 + math.exp(-v))

    s, t, y = student.detach().tolist(), context.teacher.logits.tolist(), context.batch.targets.tolist()
    ce = real = fake = fooled = l2 = 0.0
    for b in range(4):
        ce -= s[b][y[b]] - math.log(sum(math.exp(v) for v in s[b]))
        real -= math.log(sigmoid(discriminate(t[b])))
        fake -= math.log(1 - sigmoid(discriminate(s[b])))
        fooled -= math.log(sigmoid(discriminate(s[b])))
        l2 += sum((u - v) ** 2 for u, v in zip(s[b], t[b], strict=True))
    expected = {"ce": 0.5 * ce / 4, "discriminator": (real + fake) / 4, "generator": 2.0 * fooled / 4,
                "l2": 0.25 * l2 / 4}
    output = objective(context)
    for name, value in expected.items():
        assert float(output.parts[name]) == pytest.approx(value, rel=1e-5), name


def test_the_generator_term_never_reaches_the_discriminator() -> None:
    objective, context, student = tiny_game()
    objective.terms["generator"].loss(context).backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert all(p.grad is None for p in discriminator_parameters(objective))


def test_the_discriminator_term_never_reaches_the_student() -> None:
    objective, context, student = tiny_game()
    objective.terms["discriminator"].loss(context).backward()
    assert student.grad is None
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in discriminator_parameters(objective))


def test_one_backward_of_the_whole_objective_keeps_both_players_apart() -> None:
    objective, context, student = tiny_game({"discriminator_weight": 0.7, "adversarial_weight": 1.3})
    parameters = discriminator_parameters(objective)
    terms = objective.terms
    own = torch.autograd.grad(0.7 * terms["discriminator"].loss(context), parameters)
    student_only = sum(terms[name].weight * terms[name].loss(context) for name in ("ce", "generator", "l2"))
    (student_gradient,) = torch.autograd.grad(student_only, student)
    objective(context).total.backward()
    for parameter, gradient in zip(parameters, own, strict=True):
        assert torch.allclose(parameter.grad, gradient)
    assert torch.allclose(student.grad, student_gradient)


def test_pooled_features_of_another_width_go_through_a_trained_adapter_only_the_student_side_moves() -> None:
    scheme = Offline(student_model(), create("adversarial", feature="stage2", hidden=4), teacher_model())
    scheme.setup(sample_batch())
    game = scheme.objective.terms["generator"].game
    assert game.adapter[1].in_features == 8 and game.adapter[1].out_features == 16  # pooled (B, 8) -> (B, 16)
    scheme.train()
    batch = sample_batch()
    student = student_outputs(scheme.student, batch.inputs, scheme.objective.student_taps)
    scheme.objective.terms["discriminator"].loss(Context(batch, student, scheme.teacher_outputs(batch))).backward()
    assert all(p.grad is None for p in game.adapter.parameters())
    assert all(p.grad is None for p in scheme.student.parameters())
    scheme.zero_grad(set_to_none=True)
    scheme.loss(sample_batch(), 0.0, 1).total.backward()
    assert all(p.grad is not None for p in game.adapter.parameters())
    assert all(p.grad is None for p in scheme.teacher.parameters())


@pytest.mark.parametrize(
    ("params", "name"),
    [({"hidden": 0}, "hidden"), ({"discriminator_weight": 0}, "discriminator_weight"),
     ({"distance_weight": -1}, "distance_weight"), ({"featuer": "logits"}, "feature")],
)
def test_bad_parameters_raise(params: dict, name: str) -> None:
    with pytest.raises(MentorError, match=name):
        create("adversarial", **params)


def test_an_unknown_feature_path_fails_at_setup_with_the_nearest_paths() -> None:
    scheme = Offline(student_model(), create("adversarial", feature="stage9"), teacher_model())
    with pytest.raises(MentorError, match="stage9"):
        scheme.setup(sample_batch())
