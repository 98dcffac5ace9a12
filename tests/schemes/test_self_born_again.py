"""Born-Again Neural Networks (Furlanello et al. 2018): generations, their loss and the BAN ensemble."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mentor.batch import Batch
from mentor.engine import FitSettings, fit
from mentor.errors import MentorError
from mentor.schemes import SCHEMES
from mentor.schemes.selflearning.born_again import reinitialized
from tests.schemes.conftest import small_cnn, tiny_data

SETTINGS = FitSettings(epochs=1, batch_size=8, progress=False)


def a_batch() -> Batch:
    data = tiny_data()
    return Batch(data.inputs[:6], data.targets[:6], torch.arange(6), len(data))


def test_reinitialized_is_a_fresh_seeded_draw_that_leaves_the_global_state_alone() -> None:
    template = small_cnn(1)
    state = torch.random.get_rng_state()
    first, again, other = reinitialized(template, 5), reinitialized(template, 5), reinitialized(template, 6)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(first.stage1[0].weight, again.stage1[0].weight)
    assert not torch.equal(first.stage1[0].weight, other.stage1[0].weight)
    assert not torch.equal(first.stage1[0].weight, template.stage1[0].weight)


def test_each_generation_learns_from_the_previous_one_frozen() -> None:
    built = SCHEMES.get("born-again")([small_cnn(1)], generations=2, temperature=2.0, ce_weight=0.5, kl_weight=1.5)
    phases = built.phases()
    first = next(phases)
    assert first.name == "generation0" and [term.name for term in first.scheme.objective] == ["ce"]
    fit(first.scheme, tiny_data(), None, SETTINGS)
    second = next(phases)
    assert second.name == "generation1"
    teacher, student, batch = first.scheme.student, second.scheme.student, a_batch()
    assert type(student) is type(teacher) and student is not teacher
    second.scheme.setup(batch)
    assert second.scheme.teacher.model is teacher and not any(p.requires_grad for p in teacher.parameters())
    student.train()
    output = second.scheme.loss(batch, 0.0, 1)
    teacher_logits, student_logits = teacher(batch.inputs), student(batch.inputs).detach()
    expected = 0.0
    for row, label in enumerate(batch.targets.tolist()):
        z_s, z_t = student_logits[row].tolist(), teacher_logits[row].tolist()
        ce = math.log(sum(math.exp(v) for v in z_s)) - z_s[label]
        p_t = [math.exp(v / 2) / sum(math.exp(u / 2) for u in z_t) for v in z_t]
        p_s = [math.exp(v / 2) / sum(math.exp(u / 2) for u in z_s) for v in z_s]
        expected += 0.5 * ce + 1.5 * 4.0 * sum(t * math.log(t / s) for t, s in zip(p_t, p_s, strict=True))
    assert output.total.item() == pytest.approx(expected / len(batch), rel=1e-5)
    output.total.backward()
    assert all(p.grad is not None for p in student.parameters()) and all(p.grad is None for p in teacher.parameters())
    before = {key: value.clone() for key, value in teacher.state_dict().items()}
    fit(second.scheme, tiny_data(), None, SETTINGS)
    assert all(torch.equal(value, before[key]) for key, value in teacher.state_dict().items())
    third = next(phases)
    assert third.name == "generation2"
    third.scheme.setup(batch)
    assert third.scheme.teacher.model is student
    assert next(phases, None) is None


def test_predictors_are_the_last_generation_and_the_softmax_average_of_all() -> None:
    built = SCHEMES.get("born-again")([small_cnn(1)], generations=2)
    for phase in built.phases():
        phase.scheme.setup(a_batch())  # training is not needed to check how the ensemble combines them
    predictors = built.predictors()
    assert list(predictors) == ["last", "ensemble"] and predictors["last"] is built.models[-1]
    inputs = a_batch().inputs
    with torch.no_grad():
        for model in built.models:
            model.eval()
        average = sum(F.softmax(model(inputs), dim=1) for model in built.models) / 3
        assert torch.allclose(predictors["ensemble"](inputs), average.log(), atol=1e-6)


@pytest.mark.parametrize(
    "params",
    [{"generations": 0}, {"generations": 1.5}, {"temperature": 0}, {"ce_weight": -1}, {"kl_weight": 0},
     {"seed": "a"}],
)
def test_bad_parameters_raise(params: dict) -> None:
    with pytest.raises(MentorError, match=next(iter(params))):
        SCHEMES.create("born-again", [small_cnn(1)], **params)
