"""FSP matrices (Yim et al. 2017) against hand-computed values."""

from __future__ import annotations

import pytest
import torch

from mentor.batch import Batch, Outputs
from mentor.data import ArrayDataset
from mentor.engine import FitSettings, fit
from mentor.errors import MentorError
from mentor.knowledge import create
from mentor.knowledge.fsp import fsp_matrix
from mentor.losses import Context
from mentor.schemes import Offline
from tests.knowledge.conftest import student_model, teacher_model


def loop_fsp(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """G[b, i, j] = Σ_{s,t} F1[b,i,s,t]·F2[b,j,s,t] / (h·w), by loops (same spatial size)."""
    batch, m, h, w = first.shape
    n = second.shape[1]
    out = torch.zeros(batch, m, n)
    for b in range(batch):
        for i in range(m):
            for j in range(n):
                out[b, i, j] = sum(first[b, i, s, t] * second[b, j, s, t] for s in range(h) for t in range(w)) / (h * w)
    return out


def test_fsp_matrix_matches_loops() -> None:
    generator = torch.Generator().manual_seed(0)
    first, second = torch.randn(2, 3, 2, 3, generator=generator), torch.randn(2, 4, 2, 3, generator=generator)
    assert torch.allclose(fsp_matrix(first, second), loop_fsp(first, second), atol=1e-6)


def test_fsp_matrix_pools_the_larger_map_to_the_smaller() -> None:
    first = torch.arange(16.0).view(1, 1, 4, 4)
    second = torch.tensor([[[[1.0, 0.0], [0.0, 2.0]]]])
    # 2x2 average pooling of first, by hand: blocks (0,1,4,5) (2,3,6,7) (8,9,12,13) (10,11,14,15)
    pooled = torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]])
    assert torch.allclose(fsp_matrix(first, second), torch.tensor([[[(2.5 * 1 + 12.5 * 2) / 4]]]))
    assert torch.allclose(fsp_matrix(second, first), loop_fsp(second, pooled))


def test_loss_is_the_mean_squared_difference_summed_over_pairs() -> None:
    stages = create("fsp", student=[("a", "b"), ("b", "b")], teacher=[("x", "y"), ("y", "y")], weight=0.5, fsp_epochs=2)
    assert [(s.name, s.epochs) for s in stages] == [("fsp", 2), ("train", None)]
    assert set(stages[1].objective.terms) == {"ce"}
    generator = torch.Generator().manual_seed(1)
    a, b = torch.randn(3, 2, 2, 2, generator=generator), torch.randn(3, 2, 2, 2, generator=generator)
    x, y = torch.randn(3, 2, 2, 2, generator=generator), torch.randn(3, 2, 2, 2, generator=generator)
    student, teacher = Outputs(torch.zeros(3, 5), {"a": a, "b": b}), Outputs(torch.zeros(3, 5), {"x": x, "y": y})
    objective = stages[0].objective
    objective.bind(student, teacher)
    out = objective(Context(Batch(torch.zeros(3, 1), torch.zeros(3, dtype=torch.long)), student, teacher))
    expected = 0.0
    for s_pair, t_pair in (((a, b), (x, y)), ((b, b), (y, y))):
        difference = loop_fsp(*t_pair) - loop_fsp(*s_pair)
        expected += sum(float(difference[k].pow(2).sum()) for k in range(3)) / (3 * 2 * 2)  # samples, 2x2 entries
    assert out.parts["fsp"].item() == pytest.approx(0.5 * expected, rel=1e-5)


def test_default_scale_in_value_and_gradient() -> None:
    # one sample, h·w = 2 positions; F1: 1 channel, F2: 2 channels -> G is 1x2
    # teacher F1 = (1, 1), F2 = ((2, 0), (1, 1)) -> G_T = (1, 1); student F1 = (1, 0), F2 = ((1, 1), (0, 2))
    # -> G_S = (½, 0); λ = 1: L = ((½)² + 1²) / 2 entries = 0.625 (the Frobenius sum would be 1.25)
    # dL/dG_S = −2 (G_T − G_S) / 2 = (−½, −1); G_j = Σ_p F1_p F2_jp / 2, so
    # dL/dF1 = (−½ · (1, 1) − 1 · (0, 2)) / 2 = (−¼, −1¼) and dL/dF2 = (−½, −1)ᵀ (1, 0) / 2 = ((−¼, 0), (−½, 0))
    first = torch.tensor([[[[1.0, 0.0]]]], requires_grad=True)
    second = torch.tensor([[[[1.0, 1.0]], [[0.0, 2.0]]]], requires_grad=True)
    teacher = Outputs(torch.zeros(1, 5), {"x": torch.tensor([[[[1.0, 1.0]]]]),
                                         "y": torch.tensor([[[[2.0, 0.0]], [[1.0, 1.0]]]])})
    student = Outputs(torch.zeros(1, 5), {"a": first, "b": second})
    objective = create("fsp", student=[("a", "b")], teacher=[("x", "y")])[0].objective
    objective.bind(student, teacher)
    value = objective(Context(Batch(torch.zeros(1, 1), torch.zeros(1, dtype=torch.long)), student, teacher)).total
    assert value.item() == pytest.approx(0.625, rel=1e-6)
    value.backward()
    assert torch.allclose(first.grad.flatten(), torch.tensor([-0.25, -1.25]))
    assert torch.allclose(second.grad.flatten(), torch.tensor([-0.25, 0.0, -0.5, 0.0]))


def test_gradient_of_fsp_matrix() -> None:
    generator = torch.Generator().manual_seed(2)
    first = torch.randn(1, 2, 3, 3, dtype=torch.float64, generator=generator).requires_grad_(True)
    second = torch.randn(1, 3, 3, 3, dtype=torch.float64, generator=generator).requires_grad_(True)
    assert torch.autograd.gradcheck(fsp_matrix, (first, second))


def test_fsp_stage_lowers_the_fsp_loss_on_the_tiny_pair() -> None:
    params = {"student": [["stage2.relu1:input", "stage2"]], "teacher": [["stage1.relu1:input", "stage1"]]}
    stage = create("fsp", **params, fsp_epochs=4)[0]
    generator = torch.Generator().manual_seed(3)
    data = ArrayDataset(torch.randn(32, 1, 8, 8, generator=generator), torch.randint(0, 5, (32,), generator=generator))
    scheme = Offline(student_model(), stage.objective, teacher_model())
    history = fit(scheme, data, None, FitSettings(epochs=4, batch_size=8, progress=False)).history
    assert history[-1]["train/fsp"] < 0.8 * history[0]["train/fsp"]


def test_bad_parameters_and_mismatched_channels() -> None:
    with pytest.raises(MentorError, match="must pair up one to one. Got .* layer pairs"):
        create("fsp", student=[("a", "b")], teacher=[("x", "y"), ("y", "y")])
    with pytest.raises(MentorError, match="'student' parameter of fsp"):
        create("fsp", student=[], teacher=[])
    with pytest.raises(MentorError, match="'fsp_epochs' parameter of fsp"):
        create("fsp", student=[("a", "b")], teacher=[("x", "y")], fsp_epochs=0)
    with pytest.raises(MentorError, match="'weight' parameter of fsp"):
        create("fsp", student=[("a", "b")], teacher=[("x", "y")], weight=-1)
    objective = create("fsp", student=[("a", "b")], teacher=[("x", "y")])[0].objective
    student = Outputs(torch.zeros(1, 5), {"a": torch.zeros(1, 4, 2, 2), "b": torch.zeros(1, 8, 2, 2)})
    teacher = Outputs(torch.zeros(1, 5), {"x": torch.zeros(1, 8, 2, 2), "y": torch.zeros(1, 16, 2, 2)})
    with pytest.raises(MentorError, match="4x8 but the teacher's .* is 8x16; choose .* matching channel counts"):
        objective.bind(student, teacher)
    flat = Outputs(torch.zeros(1, 5), {"x": torch.zeros(1, 8), "y": torch.zeros(1, 16, 2, 2)})
    with pytest.raises(MentorError, match="need feature maps"):
        objective.bind(student, flat)
