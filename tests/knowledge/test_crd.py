"""CRD: NCE critic with its normalization constant, negative sampling, memory banks and batch requirements."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mentor.batch import Batch, Outputs
from mentor.data import ArrayDataset
from mentor.engine import FitSettings, OptimizerSettings, fit
from mentor.errors import MentorError
from mentor.knowledge import create
from mentor.knowledge.crd import ContrastiveRepresentation
from mentor.losses import Context
from mentor.schemes import Offline
from tests.knowledge.conftest import student_model, teacher_model

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


def literal_term(negatives: list[list[list[int]]]) -> ContrastiveRepresentation:
    """d = 2, K = 2, τ = 0.5, identity heads (inputs are unit vectors), known banks and negatives."""
    term = ContrastiveRepresentation("flatten", "flatten", 2, 2, 0.5, 0.5, 0, 1.0)
    term.student_bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.6, 0.8]], dtype=torch.float64)
    term.teacher_bank = torch.tensor([[0.0, 1.0], [0.8, 0.6], [-0.6, 0.8], [1.0, 0.0]], dtype=torch.float64)
    draws = iter(torch.tensor(rows) for rows in negatives)
    term.sample_negatives = lambda indices, size: next(draws)
    return term


def literal_context(student: torch.Tensor, teacher: torch.Tensor) -> Context:
    batch = Batch(torch.zeros(2, 1), torch.zeros(2, dtype=torch.long), torch.tensor([1, 3]), 4)
    return Context(batch, outputs(student), outputs(teacher))


def test_value_and_gradient_match_the_reference_code_with_its_normalization_constant() -> None:
    # the released code's formula, computed by hand: per direction Z = N · mean exp(s/τ) over the first batch,
    # P = exp(s/τ)/Z, h = P/(P + K/N); student anchors meet teacher memory rows (1 | 0, 2) and (3 | 0, 1),
    # teacher anchors meet student memory rows (1 | 3, 2) and (3 | 2, 0)
    term = literal_term([[[0, 2], [0, 1]], [[3, 2], [2, 0]]])
    student = torch.tensor([[0.6, 0.8], [1.0, 0.0]], dtype=torch.float64, requires_grad=True)
    teacher = torch.tensor([[0.0, 1.0], [0.8, -0.6]], dtype=torch.float64, requires_grad=True)
    value = term.loss(literal_context(student, teacher))
    assert term.log_normalizers.exp().tolist() == pytest.approx([17.911168, 12.998012], rel=1e-6)
    assert float(value.detach()) == pytest.approx(1.398647 + 1.976276, rel=1e-5)  # L_S + L_T
    value.backward()
    expected_student = torch.tensor([[-0.423670, 0.317753], [0.0, 0.314114]], dtype=torch.float64)
    expected_teacher = torch.tensor([[0.126150, 0.0], [-0.375135, -0.500180]], dtype=torch.float64)
    torch.testing.assert_close(student.grad, expected_student, atol=1e-5, rtol=0)
    torch.testing.assert_close(teacher.grad, expected_teacher, atol=1e-5, rtol=0)


def test_z_is_set_by_the_first_batch_then_fixed_and_banks_move_by_momentum() -> None:
    term = literal_term([[[0, 2], [0, 1]], [[3, 2], [2, 0]], [[0, 2], [0, 1]], [[3, 2], [2, 0]]])
    student = torch.tensor([[0.6, 0.8], [1.0, 0.0]], dtype=torch.float64)
    teacher = torch.tensor([[0.0, 1.0], [0.8, -0.6]], dtype=torch.float64)
    old_student_bank = term.student_bank.clone()
    term.loss(literal_context(student, teacher))
    first = term.log_normalizers.clone()
    for row, index in enumerate((1, 3)):
        moved = F.normalize(0.5 * old_student_bank[index] + 0.5 * student[row], dim=0)
        assert torch.allclose(term.student_bank[index], moved)
    assert torch.equal(term.student_bank[[0, 2]], old_student_bank[[0, 2]])
    term.loss(literal_context(-student, teacher))  # other scores: Z stays
    assert torch.equal(term.log_normalizers, first)


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
    assert torch.equal(fresh.log_normalizers, term.log_normalizers) and not fresh.log_normalizers.isnan().any()
    assert torch.equal(fresh.sample_negatives(torch.tensor([1]), N), term.sample_negatives(torch.tensor([1]), N))


@pytest.mark.parametrize("params", [{"negatives": 0}, {"temperature": 0.0}, {"momentum": 1.0}, {"feature_dim": 0},
                                    {"seed": -1}, {"crd_weight": -1.0}, {"kd_temperature": -2.0}])
def test_bad_parameters_raise(params: dict) -> None:
    with pytest.raises(MentorError):
        create("crd", **params)


def test_a_resumed_run_continues_with_the_same_banks_z_and_student(tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(3)
    data = ArrayDataset(torch.randn(32, 1, 8, 8, generator=generator), torch.randint(0, 5, (32,), generator=generator))

    def trained(epochs: int, resume: bool) -> Offline:
        torch.manual_seed(0)
        objective = create("crd", feature_dim=4, negatives=8)
        scheme = Offline(student_model(), objective, teacher_model())
        settings = FitSettings(epochs=epochs, batch_size=8, progress=False, resume=resume,
                               optimizer=OptimizerSettings("sgd", 0.05))
        fit(scheme, data, None, settings, checkpoints=tmp_path / "ckpt")
        return scheme

    whole = trained(3, False)
    for name in ("last.pt", "last.prev.pt"):
        (tmp_path / "ckpt" / name).unlink()
    trained(1, False)  # an interrupted run: one of three epochs done
    resumed = trained(3, True)
    for module in ("student", "objective"):
        before, after = getattr(whole, module).state_dict(), getattr(resumed, module).state_dict()
        for key in before:
            if isinstance(before[key], torch.Tensor):
                assert torch.equal(before[key], after[key]), key
    assert not resumed.objective.terms["crd"].log_normalizers.isnan().any()
