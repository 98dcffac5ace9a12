"""CRD: NCE critic, negative sampling, memory banks and batch requirements."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from mentor.batch import Batch, Outputs
from mentor.errors import MentorError
from mentor.knowledge import create
from mentor.knowledge.crd import ContrastiveRepresentation
from mentor.losses import Context

N, DIM, K, TAU = 10, 3, 4, 0.5


def outputs(features: torch.Tensor) -> Outputs:
    return Outputs(torch.zeros(len(features), 3), {"flatten": features})


def bound_term(seed: int = 0, momentum: float = 0.5) -> tuple[ContrastiveRepresentation, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(7)
    student, teacher = torch.randn(3, 5, generator=generator), torch.randn(3, 6, generator=generator)
    objective = create("crd", feature_dim=DIM, negatives=K, temperature=TAU, momentum=momentum, seed=seed,
                       crd_weight=1.0, ce_weight=0.0)
    objective.bind(outputs(student), outputs(teacher))
    return objective.terms["crd"], student, teacher


def context(student: torch.Tensor, teacher: torch.Tensor, indices: tuple[int, ...] | None = (2, 5, 9)) -> Context:
    batch = Batch(torch.zeros(len(student), 1), torch.zeros(len(student), dtype=torch.long),
                  None if indices is None else torch.tensor(indices), None if indices is None else N)
    return Context(batch, outputs(student), outputs(teacher))


def h(anchor: list[float], other: list[float]) -> float:
    score = math.exp(sum(a * b for a, b in zip(anchor, other, strict=True)) / TAU)
    return score / (score + K / N)


def test_value_matches_the_nce_bound_written_out_and_banks_move_by_momentum() -> None:
    term, student, teacher = bound_term()
    fixed = torch.tensor([[0, 1, 3, 4], [6, 7, 8, 0], [1, 2, 3, 4]])
    term.sample_negatives = lambda indices, size: fixed  # known negatives instead of random draws
    banks = F.normalize(torch.randn(2, N, DIM, generator=torch.Generator().manual_seed(3)), dim=2)
    term.student_bank, term.teacher_bank = banks[0].clone(), banks[1].clone()
    value = term.loss(context(student, teacher))
    with torch.no_grad():
        s = F.normalize(term.student_head(student), dim=1).tolist()
        t = F.normalize(term.teacher_head(teacher), dim=1).tolist()
    expected = 0.0
    for i in range(3):
        expected -= 2 * math.log(h(s[i], t[i]))  # the positive pair, once per anchor direction
        for j in fixed[i].tolist():
            expected -= math.log(1 - h(s[i], banks[1, j].tolist()))  # student anchor vs teacher memory
            expected -= math.log(1 - h(t[i], banks[0, j].tolist()))  # teacher anchor vs student memory
    assert float(value.detach()) == pytest.approx(expected / 3, rel=1e-5)
    for row, index in enumerate((2, 5, 9)):
        moved = F.normalize(0.5 * banks[0, index] + 0.5 * torch.tensor(s[row]), dim=0)
        assert torch.allclose(term.student_bank[index], moved, atol=1e-6)
    untouched = [0, 1, 3, 4, 6, 7, 8]
    assert torch.equal(term.teacher_bank[untouched], banks[1, untouched])


def test_gradients_reach_both_embedding_heads_and_the_student() -> None:
    term, student, teacher = bound_term()
    student.requires_grad_(True)
    term.loss(context(student, teacher)).backward()
    for parameter in (*term.student_head.parameters(), *term.teacher_head.parameters(), student):
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0


def test_negatives_never_include_the_sample_itself_and_cover_the_others() -> None:
    term, _, _ = bound_term()
    indices = torch.tensor([0, 4, 9])
    drawn = torch.cat([term.sample_negatives(indices, N) for _ in range(50)], dim=1)
    assert drawn.min() >= 0 and drawn.max() < N
    assert not (drawn == indices[:, None]).any()
    for row, own in enumerate(indices.tolist()):
        assert set(drawn[row].tolist()) == set(range(N)) - {own}


def test_seed_fixes_the_banks_and_negatives() -> None:
    def value(seed: int) -> float:
        torch.manual_seed(0)
        term, student, teacher = bound_term(seed)
        return float(term.loss(context(student, teacher)).detach())

    assert value(1) == value(1) and value(1) != value(2)


def test_missing_indices_or_a_changed_dataset_size_raise() -> None:
    term, student, teacher = bound_term()
    with pytest.raises(MentorError, match="indices"):
        term.loss(context(student, teacher, indices=None))
    with pytest.raises(MentorError, match="indices"):
        term.loss(context(student, teacher, indices=(0, 1, N)))
    term.loss(context(student, teacher))
    other = context(student, teacher)
    other.batch.dataset_size = N + 1
    with pytest.raises(MentorError, match="memory banks"):
        term.loss(other)


def test_banks_survive_a_state_dict_round_trip_into_a_fresh_term() -> None:
    term, student, teacher = bound_term()
    term.loss(context(student, teacher))
    fresh, _, _ = bound_term()
    fresh.load_state_dict(copy.deepcopy(term.state_dict()))
    assert torch.equal(fresh.student_bank, term.student_bank) and torch.equal(fresh.teacher_bank, term.teacher_bank)
    assert torch.equal(fresh.sample_negatives(torch.tensor([1]), N), term.sample_negatives(torch.tensor([1]), N))


@pytest.mark.parametrize("params", [{"negatives": 0}, {"temperature": 0.0}, {"momentum": 1.0}, {"feature_dim": 0},
                                    {"seed": -1}, {"crd_weight": -1.0}, {"kd_temperature": -2.0}])
def test_bad_parameters_raise(params: dict) -> None:
    with pytest.raises(MentorError):
        create("crd", **params)
