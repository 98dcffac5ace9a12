"""Contract tests run over every registered knowledge method (a new method is covered by adding it)."""

from __future__ import annotations

import copy

import pytest
import torch

from mentor.data import ArrayDataset
from mentor.engine import FitSettings, fit
from mentor.knowledge import KNOWLEDGE, Stage, as_stages, create
from mentor.schemes import Offline
from tests.knowledge.conftest import all_examples, sample_batch, student_model, teacher_model

METHODS = KNOWLEDGE.names()
EXAMPLES = all_examples()


def teacher_for(name: str) -> torch.nn.Module:
    example = EXAMPLES[name]
    return example.teacher() if example.teacher is not None else teacher_model(example.regression)


def stages(name: str) -> list[Stage]:
    return as_stages(create(name, **EXAMPLES[name].params))


def regression(name: str) -> bool:
    return EXAMPLES[name].regression


def scheme_for(stage: Stage, student: torch.nn.Module | None = None, teacher: torch.nn.Module | None = None,
               floats: bool = False) -> Offline:
    scheme = Offline(student or student_model(floats), stage.objective, teacher or teacher_model(floats))
    scheme.setup(sample_batch(regression=floats))
    return scheme


@pytest.mark.parametrize("name", METHODS)
def test_every_method_has_an_example_and_a_paper(name: str) -> None:
    assert name in EXAMPLES, f"add an Example for {name!r} to tests/knowledge/examples_*.py"
    assert next(entry for entry in KNOWLEDGE if entry.name == name).summary


@pytest.mark.parametrize("name", METHODS)
def test_finite_scalar_loss_and_gradients_reach_student_and_adapters_only(name: str) -> None:
    """Each stage trains something; the last stage trains the student; the teacher never gets a gradient."""
    plan = stages(name)
    for index, stage in enumerate(plan):
        torch.manual_seed(0)
        scheme = scheme_for(stage, teacher=teacher_for(name), floats=regression(name))
        scheme.train()
        output = scheme.loss(sample_batch(regression=regression(name)), 0.5, 2)
        assert output.total.ndim == 0 and torch.isfinite(output.total)
        assert all(torch.isfinite(part) for part in output.parts.values())
        output.total.backward()
        student_learns = any(p.grad is not None and p.grad.abs().sum() > 0 for p in scheme.student.parameters())
        adapters = [p for p in scheme.objective.parameters() if p.requires_grad]
        adapters_learn = any(p.grad is not None for p in adapters)
        assert student_learns or adapters_learn, f"stage {stage.name!r} trains nothing"
        if index == len(plan) - 1:
            assert student_learns, "the last stage must train the student"
        if adapters and student_learns:
            assert adapters_learn, "adapters receive no gradient"
        assert all(p.grad is None for p in scheme.teacher.parameters())


@pytest.mark.parametrize("name", METHODS)
def test_teacher_weights_and_batchnorm_statistics_unchanged_by_training(name: str) -> None:
    teacher = teacher_for(name)
    before = copy.deepcopy(teacher.state_dict())
    generator = torch.Generator().manual_seed(3)
    targets = torch.randn(32, 1, generator=generator) if regression(name) else torch.randint(0, 5, (32,),
                                                                                              generator=generator)
    data = ArrayDataset(torch.randn(32, 1, 8, 8, generator=generator), targets)
    for stage in stages(name):
        settings = FitSettings(epochs=1, batch_size=8, progress=False)
        fit(Offline(student_model(regression(name)), stage.objective, teacher), data, None, settings)
    after = teacher.state_dict()
    assert before.keys() == after.keys()
    for key in before:
        assert torch.equal(before[key], after[key]), key


@pytest.mark.parametrize("name", METHODS)
def test_deterministic_under_a_seed(name: str) -> None:
    def once() -> list[float]:
        values = []
        for stage in stages(name):
            torch.manual_seed(0)
            scheme = scheme_for(stage, teacher=teacher_for(name), floats=regression(name))
            scheme.train()
            values.append(float(scheme.loss(sample_batch(regression=regression(name)), 0.5, 2).total.detach()))
        return values

    assert once() == once()


@pytest.mark.parametrize("name", [n for n in METHODS if n in EXAMPLES and EXAMPLES[n].zero_when_identical])
def test_distillation_terms_vanish_when_student_equals_teacher(name: str) -> None:
    teacher = teacher_model(regression(name))
    for stage in stages(name):
        student = copy.deepcopy(teacher)
        scheme = scheme_for(stage, student, teacher, regression(name))
        student.eval()
        output = scheme.loss(sample_batch(regression=regression(name)), 0.5, 2)
        for part, value in output.parts.items():
            if part not in ("ce", "mse"):  # the ground-truth terms
                assert abs(float(value)) < 1e-5, (part, float(value))
