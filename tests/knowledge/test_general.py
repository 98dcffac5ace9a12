"""The survey's generalized objective: values by hand, equality with kd and FitNet's hint, bad declarations."""

from __future__ import annotations

import math

import pytest
import torch

from mentor.batch import Batch, Outputs
from mentor.errors import MentorError
from mentor.knowledge import as_stages, create
from mentor.knowledge.general import general
from mentor.losses import Context
from mentor.schemes import Offline
from tests.knowledge.conftest import sample_batch, student_model, teacher_model


def logits_context(dtype: torch.dtype = torch.float32) -> tuple[Context, torch.Tensor]:
    generator = torch.Generator().manual_seed(5)
    student = torch.randn(3, 4, generator=generator, dtype=dtype).requires_grad_()
    teacher = torch.randn(3, 4, generator=generator, dtype=dtype)
    batch = Batch(torch.zeros(3, 1), torch.tensor([0, 3, 1]))
    return Context(batch, Outputs(student), Outputs(teacher)), student


def test_general_declared_as_kd_gives_exactly_the_kd_loss_and_gradient() -> None:
    context, student = logits_context()
    kd = create("kd", temperature=3.0, alpha=0.7)
    declared = create("general", ce=1.0 - 0.7, kl={"temperature": 3.0, "weight": 0.7})
    expected, actual = kd(context), declared(context)
    assert torch.equal(actual.total, expected.total)
    assert actual.parts.keys() == expected.parts.keys()
    assert all(torch.equal(actual.parts[name], expected.parts[name]) for name in expected.parts)
    (kd_gradient,) = torch.autograd.grad(expected.total, student)
    (general_gradient,) = torch.autograd.grad(actual.total, student)
    assert torch.equal(general_gradient, kd_gradient)


def test_value_matches_a_hand_computed_reference() -> None:
    context, student = logits_context()
    teacher, targets = context.teacher.logits, context.batch.targets
    objective = create(
        "general", ce=0.3, kl={"temperature": 2.0, "weight": 0.5},
        distances=[{"norm": 1, "power": 3, "reduction": "sum", "weight": 2.0}], cosines=[{"weight": 1.5}],
    )
    s, t = student.detach().tolist(), teacher.tolist()
    ce = kl = distance = cosine = 0.0
    for b in range(3):
        ce -= s[b][targets[b]] - math.log(sum(math.exp(v) for v in s[b]))
        p_t = [math.exp(v / 2) / sum(math.exp(u / 2) for u in t[b]) for v in t[b]]
        p_s = [math.exp(v / 2) / sum(math.exp(u / 2) for u in s[b]) for v in s[b]]
        kl += sum(p * (math.log(p) - math.log(q)) for p, q in zip(p_t, p_s, strict=True))
        distance += sum(abs(x - y) for x, y in zip(s[b], t[b], strict=True)) ** 3
        dot = sum(x * y for x, y in zip(s[b], t[b], strict=True))
        cosine += 1 - dot / (math.sqrt(sum(x * x for x in s[b])) * math.sqrt(sum(y * y for y in t[b])))
    expected = {"ce": 0.3 * ce / 3, "kl": 0.5 * 4 * kl / 3, "distance1": 2.0 * distance, "cosine1": 1.5 * cosine / 3}
    output = objective(context)
    for name, value in expected.items():
        assert float(output.parts[name]) == pytest.approx(value, rel=1e-5)
    assert float(output.total.detach()) == pytest.approx(sum(expected.values()), rel=1e-5)


def test_gradients_of_every_term_are_correct() -> None:
    context, student = logits_context(torch.float64)
    objective = general(ce=0.3, kl={"temperature": 2.0, "weight": 0.5},
                        distances=[{"norm": 3, "power": 1.5, "weight": 2.0}], cosines=[{"weight": 1.5}])

    def total(logits: torch.Tensor) -> torch.Tensor:
        return objective(Context(context.batch, Outputs(logits), context.teacher)).total

    assert torch.autograd.gradcheck(total, (student,))


def test_fitnet_hint_is_an_instance_of_general() -> None:
    hint = as_stages(create("fitnet", hint="stage2", guided="stage2", hint_epochs=1))[0].objective
    declared = create("general", ce=0.0, distances=[{"student": "stage2", "teacher": "stage2", "adapter": "conv1x1",
                                                     "weight": 100.0, "reduction": "mean", "name": "hint"}])
    fitnet_scheme = Offline(student_model(), hint, teacher_model())
    general_scheme = Offline(student_model(), declared, teacher_model())
    fitnet_scheme.setup(sample_batch())
    general_scheme.setup(sample_batch())
    general_scheme.objective.terms["hint"].load_state_dict(fitnet_scheme.objective.terms["hint"].state_dict())
    batch = sample_batch(seed=4)
    expected = fitnet_scheme.loss(batch, 0.0, 1).parts["hint"]
    assert torch.allclose(general_scheme.loss(batch, 0.0, 1).parts["hint"], expected)


def test_distillation_terms_vanish_for_an_identical_student() -> None:
    context, _ = logits_context()
    same = Context(context.batch, Outputs(context.teacher.logits.clone()), context.teacher)
    output = general(ce=1.0, kl={"temperature": 4.0}, distances=[{"norm": 2, "power": 2}], cosines=[{}])(same)
    assert all(abs(float(value)) < 1e-6 for name, value in output.parts.items() if name != "ce")
    assert float(output.parts["ce"]) > 0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"distances": [{"nrom": 2}]}, "distances.0.nrom"),
        ({"distances": [{"norm": 0.5}]}, "distances.0.norm"),
        ({"distances": [{"power": 0}]}, "distances.0.power"),
        ({"distances": [{"reduction": "none"}]}, "distances.0.reduction"),
        ({"cosines": [{"norm": 2}]}, "cosines.0.norm"),
        ({"kl": {"temperature": -1}}, "kl.temperature"),
        ({"kl": {"temperature": 2, "wieght": 1}}, "kl.wieght"),
        ({"ce": -0.1}, "ce"),
        ({"distances": [{"adapter": "conv5x5"}]}, "distances.0.adapter"),
    ],
)
def test_bad_declarations_name_the_faulty_entry(params: dict, message: str) -> None:
    with pytest.raises(MentorError, match=message.replace(".", r"\.")):
        create("general", **params)


def test_direct_calls_validate_plain_dicts_and_duplicate_names_are_refused() -> None:
    with pytest.raises(MentorError, match="distances.0.nrom"):
        general(distances=[{"nrom": 2}])
    with pytest.raises(MentorError, match="named 'x'"):
        general(distances=[{"name": "x"}], cosines=[{"name": "x"}])
    with pytest.raises(MentorError, match="nearest: distances"):
        create("general", distance=[{}])
