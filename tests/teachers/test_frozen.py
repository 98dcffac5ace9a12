"""A frozen teacher cannot change: a full distillation run leaves its weights and BN statistics intact."""

from __future__ import annotations

import copy

import pytest
import torch

from mentor.data import load
from mentor.engine import FitSettings, fit
from mentor.errors import MentorError
from mentor.knowledge import create
from mentor.models import create as create_model
from mentor.pipelines import distill
from mentor.schemes import Offline
from mentor.teachers import FrozenTeacher, freeze


def test_full_distillation_run_leaves_teacher_weights_and_batchnorm_statistics_unchanged() -> None:
    data = load("digits", validation=0.2, seed=0, limit=200)
    teacher = create_model("cnn", data.num_classes, data.input_shape, channels=[8, 16], dropout=0.3)
    teacher.train()
    with torch.no_grad():  # give BatchNorm non-trivial running statistics first
        teacher(data.train.inputs)
    before = copy.deepcopy(teacher.state_dict())
    student = create_model("cnn-tiny", data.num_classes, data.input_shape)
    plan = create("fitnet", hint="stage2", guided="stage2", hint_epochs=1)
    distill(teacher, student, data, plan, epochs=2, batch_size=32, progress=False, baseline=True)
    for key, value in teacher.state_dict().items():
        assert torch.equal(before[key], value), key
    assert all(p.grad is None for p in teacher.parameters())


def test_frozen_teacher_stays_in_eval_mode_and_returns_plain_tensors() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Dropout(0.5))
    teacher = freeze(model)
    assert freeze(teacher) is teacher
    teacher.train()
    assert not model.training and not teacher.training
    inputs = torch.randn(5, 3)
    outputs = teacher.outputs(inputs, ["0", "1:input"])
    assert torch.equal(outputs.logits, teacher(inputs))  # deterministic: dropout off, BN frozen
    assert not outputs.logits.requires_grad and not outputs.logits.is_inference()
    assert set(outputs.features) == {"0", "1:input"}
    assert isinstance(teacher, FrozenTeacher) and not any(p.requires_grad for p in model.parameters())


def test_the_callers_teacher_gets_its_mode_and_requires_grad_back() -> None:
    data = load("digits", validation=0.2, seed=0, limit=120)
    teacher = create_model("cnn-tiny", data.num_classes, data.input_shape)
    teacher.train()
    teacher.stage1.eval()  # a mixed mode, as a caller may leave it
    teacher.head.weight.requires_grad_(False)  # and a parameter the caller froze
    modes = [m.training for m in teacher.modules()]
    flags = [p.requires_grad for p in teacher.parameters()]
    student = create_model("mlp-tiny", data.num_classes, data.input_shape)
    plan = create("fitnet", hint="stage2", guided="fc1", adapter="linear", hint_epochs=1)
    distill(teacher, student, data, plan, epochs=2, batch_size=32, progress=False, baseline=True)
    assert [m.training for m in teacher.modules()] == modes
    assert [p.requires_grad for p in teacher.parameters()] == flags


def test_the_teacher_is_given_back_when_the_fit_fails() -> None:
    data = load("digits", validation=0.2, seed=0, limit=120)
    teacher = create_model("cnn-tiny", data.num_classes, data.input_shape).train()
    student = create_model("mlp-tiny", data.num_classes, data.input_shape)
    scheme = Offline(student, create("kd"), teacher)
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())  # held while in use
    settings = FitSettings(epochs=1, batch_size=32, progress=False, device="cuda")
    with pytest.raises(MentorError):  # no CUDA here, or (on a CUDA machine) the data is not there
        if torch.cuda.is_available():
            raise MentorError("skipped: CUDA is available")
        fit(scheme, data.train, data.validation, settings)
    assert teacher.training and all(p.requires_grad for p in teacher.parameters())
    teacher_copy = freeze(teacher)
    teacher_copy.release()
    teacher_copy.release()  # releasing twice changes nothing
    assert teacher.training
