"""A frozen teacher cannot change: a full distillation run leaves its weights and BN statistics intact."""

from __future__ import annotations

import copy

import numpy as np
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


def test_a_bf16_teacher_pass_runs_under_autocast_and_hands_on_float32() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
    teacher, inputs = freeze(model), torch.randn(8, 16)
    full = teacher.outputs(inputs, ["0"])
    teacher.precision = "bf16"
    half = teacher.outputs(inputs, ["0"])
    assert half.logits.dtype == torch.float32 and half.features["0"].dtype == torch.float32
    assert not half.logits.is_inference()
    rounded = model[0].weight.to(torch.bfloat16).float() @ inputs.to(torch.bfloat16).float().T  # bf16 operands
    assert not torch.equal(half.features["0"], full.features["0"])  # it did run in bfloat16
    assert torch.allclose(half.features["0"], (rounded.T + model[0].bias).to(torch.bfloat16).float(), atol=2e-2)
    assert torch.allclose(half.logits, full.logits, atol=5e-2)


def test_fit_sets_the_teachers_precision_before_the_cache_is_built() -> None:
    data = load("digits", validation=0.2, seed=0, limit=120)
    teacher = freeze(create_model("mlp", data.num_classes, data.input_shape, hidden=[16]))
    student = create_model("mlp", data.num_classes, data.input_shape, hidden=[8])
    scheme = Offline(student, create("kd"), teacher)
    fit(scheme, data.train, data.validation, FitSettings(epochs=1, batch_size=32, progress=False,
                                                          teacher_precision="bf16"))
    assert teacher.precision == "bf16" and scheme.cache is not None
    cached = scheme.cache.logits(np.arange(len(data.train)))
    assert torch.allclose(cached, teacher(data.train.inputs), atol=1e-6)  # the bf16 pass was cached
    teacher.precision = "fp32"
    assert not torch.allclose(cached, teacher(data.train.inputs), atol=1e-6)


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
