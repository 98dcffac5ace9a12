"""mentor.objective: a method's objective in a plain loop, checked against losses worked out by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import mentor
from mentor.errors import MentorError


class Constant(nn.Module):
    """Returns the same trainable logits for every sample (so the loss is known by hand)."""

    def __init__(self, logits: list[float]) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.tensor(logits))
        self.calls = 0

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.logits.unsqueeze(0).expand(inputs.shape[0], -1)


def test_kd_matches_the_hand_computed_loss() -> None:
    # z_S = [1, 0], z_T = [0, 1], y = 0, tau = 1, alpha = 0.5:
    # CE = log(1 + e^-1) = 0.313262; p_T = [0.268941, 0.731059], p_S = [0.731059, 0.268941],
    # KL(p_T || p_S) = 0.268941 * (-1) + 0.731059 * (+1) = 0.462117; L = 0.5 * CE + 0.5 * KL = 0.387690
    objective = mentor.objective("kd", Constant([1.0, 0.0]), Constant([0.0, 1.0]), temperature=1.0, alpha=0.5)
    loss = objective(torch.zeros(3, 4), torch.tensor([0, 0, 0]))
    assert loss.item() == pytest.approx(0.387690, abs=1e-5)
    assert objective.last is not None
    assert objective.last.parts["ce"].item() == pytest.approx(0.5 * 0.313262, abs=1e-5)
    assert objective.last.parts["kl"].item() == pytest.approx(0.5 * 0.462117, abs=1e-5)


def test_temperature_scales_the_soft_term() -> None:
    # tau = 2: p_T = softmax([0, 0.5]) = [0.377541, 0.622459], p_S = softmax([0.5, 0]) = [0.622459, 0.377541];
    # KL = (0.622459 - 0.377541) * 0.5 = 0.122459; tau^2 * KL = 0.489836 (alpha = 1: no CE)
    objective = mentor.objective("kd", Constant([1.0, 0.0]), Constant([0.0, 1.0]), temperature=2.0, alpha=1.0)
    assert objective(torch.zeros(2, 4), torch.tensor([1, 1])).item() == pytest.approx(0.489836, abs=1e-5)


def _pair() -> tuple[nn.Sequential, nn.Sequential]:
    torch.manual_seed(0)
    return (nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)),
            nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2)))


def _hint() -> mentor.Objective:
    return mentor.Objective(mentor.terms.CE(), mentor.terms.Distance(student="0", teacher="0", adapter="linear"))


def test_gradients_reach_the_student_and_adapter_only() -> None:
    student, teacher = _pair()
    objective = mentor.objective(_hint(), student, teacher, sample=torch.randn(4, 4))
    adapters = list(objective.parameters())
    assert adapters, "bind on the sample built the linear adapter"
    assert not {id(p) for p in adapters} & {id(p) for p in [*student.parameters(), *teacher.parameters()]}
    objective(torch.randn(6, 4), torch.tensor([0, 1, 0, 1, 0, 1])).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in [*student.parameters(), *adapters])
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())


def test_release_gives_the_teacher_back() -> None:
    student, teacher = _pair()
    teacher.train()
    objective = mentor.objective("kd", student, teacher)
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    objective.release()
    assert teacher.training and all(p.requires_grad for p in teacher.parameters())


def test_adapters_built_after_the_optimizer_are_an_error() -> None:
    student, teacher = _pair()
    objective = mentor.objective(_hint(), student, teacher)
    with pytest.raises(MentorError, match="sample="):
        objective(torch.randn(2, 4), torch.tensor([0, 1]))


def test_mapping_inputs_and_model_outputs() -> None:
    class Keyword(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(10, 2)

        def forward(self, input_ids: torch.Tensor, scale: float = 1.0) -> dict[str, torch.Tensor]:
            return {"logits": self.embed(input_ids).mean(1) * scale}

    objective = mentor.objective("kd", Keyword(), Keyword())
    loss = objective({"input_ids": torch.tensor([[1, 2], [3, 4]]), "scale": 2.0}, torch.tensor([0, 1]))
    loss.backward()
    assert torch.isfinite(loss)


def test_teacher_cache_serves_seen_indices() -> None:
    teacher = Constant([0.0, 1.0])
    objective = mentor.objective("kd", Constant([1.0, 0.0]), teacher, cache_teacher=True)
    inputs, targets = torch.zeros(2, 4), torch.tensor([0, 1])
    first = objective(inputs, targets, indices=torch.tensor([3, 7]))
    again = objective(inputs, targets, indices=torch.tensor([7, 3]))
    assert teacher.calls == 1
    assert again.item() == pytest.approx(first.item())
    objective(inputs, targets, indices=torch.tensor([3, 8]))  # 8 never seen: the teacher runs
    assert teacher.calls == 2


@pytest.mark.parametrize(("call", "message"), [
    (lambda s, t: mentor.objective("kd", s, None), "'teacher' parameter is required"),
    (lambda s, t: mentor.objective("fitnet", s, t, hint="0", guided="0"), "trains in stages"),
    (lambda s, t: mentor.objective(3, s, t), "'method' parameter"),
    (lambda s, t: mentor.objective(mentor.Objective(mentor.terms.CE()), s, t, temperature=2.0), "'params'"),
    (lambda s, t: mentor.objective("kd", s, t, temprature=2.0), "unknown parameter"),
])
def test_bad_input_is_one_line(call, message: str) -> None:  # noqa: ANN001 - lambdas
    student, teacher = _pair()
    with pytest.raises(MentorError, match=message) as error:
        call(student, teacher)
    assert "\n" not in str(error.value)


def test_a_result_without_logits_is_named() -> None:
    class Words(nn.Module):
        def forward(self, inputs: torch.Tensor) -> str:
            return "no logits"

    with pytest.raises(MentorError, match="student returned str"):
        mentor.objective("kd", Words(), Constant([0.0, 1.0]))(torch.zeros(1, 2), torch.tensor([0]))


def test_a_short_distillation_on_digits_learns() -> None:
    data = mentor.data.load("digits", validation=0.2, seed=0, limit=300)
    torch.manual_seed(0)
    teacher = mentor.models.create("mlp", data.num_classes, data.input_shape)
    mentor.train(teacher, data, epochs=3, lr=3e-3)
    student = mentor.models.create("mlp", data.num_classes, data.input_shape)
    objective = mentor.objective("kd", student, teacher, temperature=4.0)
    optimizer = torch.optim.Adam([*student.parameters(), *objective.parameters()], lr=3e-3)
    before = mentor.engine.evaluate(student, data.validation)
    for epoch in range(3):
        for inputs, targets in mentor.data.BatchIterator(data.train, 32, shuffle=True, seed=epoch):
            loss = objective(inputs, targets, epoch=epoch, epochs=3)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    objective.release()
    after = mentor.engine.evaluate(student, data.validation)
    assert after["accuracy"] > before["accuracy"] + 0.2
