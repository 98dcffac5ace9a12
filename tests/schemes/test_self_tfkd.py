"""Teacher-free KD (Yuan et al. 2020): tfkd-self and tfkd-virtual against hand-written references."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mentor.batch import Batch, Outputs
from mentor.engine import FitSettings, fit
from mentor.errors import MentorError
from mentor.losses.terms import Context
from mentor.schemes import SCHEMES, Offline
from mentor.schemes.selflearning.tfkd import virtual_teacher
from mentor.teachers import FrozenTeacher
from tests.schemes.conftest import small_cnn, tiny_data


def softmax_row(values: list[float]) -> list[float]:
    exps = [math.exp(v) for v in values]
    return [e / sum(exps) for e in exps]


def context_of(batch: Batch, logits: torch.Tensor) -> Context:
    return Context(batch, Outputs(logits, {}), None)


def linear_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 3))


def batch_of(size: int = 5, seed: int = 0) -> Batch:
    generator = torch.Generator().manual_seed(seed)
    return Batch(torch.randn(size, 4, generator=generator), torch.randint(0, 3, (size,), generator=generator))


def test_virtual_teacher_is_the_designed_distribution_softened_at_tau() -> None:
    targets = torch.tensor([2, 0])
    produced = virtual_teacher(targets, 4, 0.9, 2.0, form="paper")
    for row, label in enumerate(targets.tolist()):
        base = [0.9 if k == label else 0.1 / 3 for k in range(4)]
        powered = [p ** (1 / 2.0) for p in base]
        expected = [p / sum(powered) for p in powered]
        assert produced[row].tolist() == pytest.approx(expected, rel=1e-6)
    as_code = virtual_teacher(targets, 4, 0.9, 2.0)[0]
    assert as_code.tolist() == pytest.approx(softmax_row([0.1 / 6, 0.1 / 6, 0.45, 0.1 / 6]), rel=1e-6)


def test_tfkd_virtual_defaults_are_the_released_code_and_its_loss_scale() -> None:
    # Logits (1, 0, −1), label 0, K = 3, released defaults a = 0.99, τ = 20, α = 0.1:
    # p^d = (0.99, 0.005, 0.005), softmax(p^d / 20) = (0.344366, 0.327817, 0.327817), p = softmax(z) =
    # (0.665241, 0.244728, 0.090031); KL(p^d_τ || p) = 0.292717; CE = 0.407606; L = 0.9·CE + 0.1·KL = 0.396117.
    model = nn.Linear(3, 3, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(3))
    scheme = SCHEMES.get("tfkd-virtual")([model])
    batch = Batch(torch.tensor([[1.0, 0.0, -1.0]]), torch.tensor([0]))
    scheme.setup(batch)
    output = scheme.loss(batch, 0.0, 1)
    assert output.total.item() == pytest.approx(0.396117, abs=1e-6)
    assert output.parts["virtual-kl"].item() == pytest.approx(0.1 * 0.292717, abs=1e-6)
    # Its gradient on the logits is α (p − p^d_τ) = (0.032087, −0.008309, −0.023779), on the cross-entropy's
    # scale times α; softening the student too (the paper's reading) would shrink it by another 1/τ = 1/20.
    logits = torch.tensor([[1.0, 0.0, -1.0]], requires_grad=True)
    term = next(term for term in scheme.objective if term.name == "virtual-kl")
    (gradient,) = torch.autograd.grad(term.loss(context_of(batch, logits)) * term.weight, logits)
    assert gradient.tolist()[0] == pytest.approx([0.032087, -0.008309, -0.023779], abs=1e-6)


def reference_virtual_loss(logits: torch.Tensor, targets: torch.Tensor, a: float, tau: float, alpha: float) -> float:
    total = 0.0
    classes = logits.shape[1]
    for row, label in enumerate(targets.tolist()):
        z = logits[row].tolist()
        ce = -math.log(softmax_row(z)[label])
        powered = [(a if k == label else (1 - a) / (classes - 1)) ** (1 / tau) for k in range(classes)]
        teacher = [p / sum(powered) for p in powered]
        student = softmax_row([v / tau for v in z])
        kl = sum(t * (math.log(t) - math.log(s)) for t, s in zip(teacher, student, strict=True))
        total += (1 - alpha) * ce + alpha * kl  # eq. 9: no τ² factor
    return total / len(targets)


def test_tfkd_virtual_paper_form_matches_equation_9() -> None:
    model, batch = linear_model(), batch_of()
    scheme = SCHEMES.get("tfkd-virtual")([model], correct_probability=0.95, temperature=3.0, alpha=0.4, form="paper")
    scheme.setup(batch)
    value = scheme.loss(batch, 0.0, 1).total
    expected = reference_virtual_loss(model(batch.inputs).detach(), batch.targets, 0.95, 3.0, 0.4)
    assert value.item() == pytest.approx(expected, rel=1e-5)


def test_tfkd_virtual_at_tau_one_is_label_smoothing_up_to_a_constant() -> None:
    a, alpha, classes = 0.92, 0.6, 3
    epsilon = alpha * classes * (1 - a) / (classes - 1)
    teacher = [a] + [(1 - a) / (classes - 1)] * (classes - 1)
    constant = alpha * sum(p * math.log(p) for p in teacher)  # −α·H(p^d)
    scheme = SCHEMES.get("tfkd-virtual")([linear_model()], correct_probability=a, temperature=1.0, alpha=alpha,
                                         form="paper")
    for seed in (0, 1, 2):
        batch = batch_of(seed=seed)
        scheme.setup(batch)
        logits = scheme.student(batch.inputs).detach()
        smoothed = F.cross_entropy(logits, batch.targets, label_smoothing=epsilon)
        assert scheme.loss(batch, 0.0, 1).total.item() - float(smoothed) == pytest.approx(constant, abs=1e-5)


def test_tfkd_virtual_term_alone_trains_the_student() -> None:
    model, batch = linear_model(), batch_of()
    scheme = SCHEMES.get("tfkd-virtual")([model], alpha=1.0)
    scheme.setup(batch)
    output = scheme.loss(batch, 0.0, 1)
    assert float(output.parts["ce"]) == 0.0
    output.total.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_tfkd_self_pretrains_then_teaches_an_untrained_copy() -> None:
    model = small_cnn(1)
    initial = copy.deepcopy(model.state_dict())
    built = SCHEMES.get("tfkd-self")([model], temperature=2.0, alpha=0.7)
    phases = built.phases()
    pretrain = next(phases)
    assert pretrain.name == "pretrain" and isinstance(pretrain.scheme, Offline)
    assert [term.name for term in pretrain.scheme.objective] == ["ce"]
    fit(pretrain.scheme, tiny_data(), None, FitSettings(epochs=1, batch_size=8, progress=False))
    distill = next(phases)
    student = distill.scheme.student
    assert student is not model
    assert all(torch.equal(value, initial[key]) for key, value in student.state_dict().items())
    data = tiny_data()
    batch = Batch(data.inputs[:6], data.targets[:6], torch.arange(6), len(data))
    distill.scheme.setup(batch)
    assert isinstance(distill.scheme.teacher, FrozenTeacher) and distill.scheme.teacher.model is model
    assert not any(p.requires_grad for p in model.parameters())
    student.train()
    value = distill.scheme.loss(batch, 0.0, 1).total
    model.eval()
    teacher_logits, student_logits = model(batch.inputs).detach(), student(batch.inputs).detach()
    expected = 0.0
    for row, label in enumerate(batch.targets.tolist()):
        ce = -math.log(softmax_row(student_logits[row].tolist())[label])
        teacher = softmax_row([v / 2.0 for v in teacher_logits[row].tolist()])
        soft = softmax_row([v / 2.0 for v in student_logits[row].tolist()])
        kl = sum(t * (math.log(t) - math.log(s)) for t, s in zip(teacher, soft, strict=True))
        expected += (0.3 * ce + 0.7 * 4.0 * kl) / len(batch)
    assert value.item() == pytest.approx(expected, rel=1e-5)
    assert set(built.predictors()) == {"student", "pretrained"} and built.predictors()["student"] is student


def test_tfkd_self_defaults_weigh_soft_and_hard_targets_as_the_released_configuration() -> None:
    # Defaults α = 0.9, τ = 6. Student logits (1, 0), teacher (0, 1), label 0: CE = log(1 + e⁻¹) = 0.313262;
    # softmax((0, 1)/6) = (0.458430, 0.541570) against softmax((1, 0)/6), KL = 0.013857, τ²·KL = 0.498846;
    # L = 0.1·0.313262 + 0.9·0.498846 = 0.480287.
    built = SCHEMES.get("tfkd-self")([small_cnn(1)])
    phases = built.phases()
    next(phases)
    objective = next(phases).scheme.objective
    student = torch.tensor([[1.0, 0.0]], requires_grad=True)
    batch = Batch(torch.zeros(1, 1), torch.tensor([0]))
    output = objective(Context(batch, Outputs(student, {}), Outputs(torch.tensor([[0.0, 1.0]]), {})))
    assert output.total.item() == pytest.approx(0.480287, abs=1e-6)
    # Gradients on the student's logits: soft α·τ·(p_S^τ − p_T^τ) = ±0.448961 against hard 0.1·(p − y) =
    # ±0.026894, the 17:1 pull toward the teacher the released configuration also has.
    assert output.parts["ce"].item() == pytest.approx(0.1 * 0.313262, abs=1e-6)
    assert output.parts["kl"].item() == pytest.approx(0.9 * 0.498846, abs=1e-6)
    (gradient,) = torch.autograd.grad(output.total, student)
    assert gradient.tolist()[0] == pytest.approx([0.448961 - 0.026894, -0.448961 + 0.026894], abs=1e-6)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("tfkd-self", {"alpha": 1.5}),
        ("tfkd-self", {"temperature": 0.0}),
        ("tfkd-self", {"pretrain_epochs": 0}),
        ("tfkd-virtual", {"correct_probability": 0.5}),
        ("tfkd-virtual", {"form": "logits"}),
        ("tfkd-virtual", {"alpha": -0.1}),
    ],
)
def test_bad_parameters_raise(name: str, params: dict) -> None:
    with pytest.raises(MentorError, match=next(iter(params))):
        SCHEMES.create(name, [small_cnn(1)], **params)


def test_two_models_are_refused() -> None:
    with pytest.raises(MentorError, match="exactly 1"):
        SCHEMES.get("tfkd-self")([small_cnn(1), small_cnn(2)])
