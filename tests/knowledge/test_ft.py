"""Factor transfer (Kim et al. 2018) against hand-computed values, and the frozen shared paraphraser."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from mentor.batch import Batch, Outputs
from mentor.data import ArrayDataset
from mentor.engine import FitSettings, fit
from mentor.errors import MentorError
from mentor.knowledge import create
from mentor.losses import Context
from mentor.schemes import Offline
from tests.knowledge.conftest import sample_batch, student_model, teacher_model


def outputs(features: dict[str, torch.Tensor], batch: int = 2) -> Outputs:
    return Outputs(torch.zeros(batch, 5), features)


def test_two_stages_share_one_paraphraser_with_rate_k_factor_channels() -> None:
    paraphrase, train = create("ft", student="s", teacher="t", rate=0.5, beta=3.0, paraphraser_epochs=2)
    assert (paraphrase.name, paraphrase.epochs, train.name, train.epochs) == ("paraphraser", 2, "train", None)
    reconstruction, factor = paraphrase.objective.terms["reconstruction"], train.objective.terms["factor"]
    assert reconstruction.paraphraser is factor.paraphraser and factor.weight == 3.0
    assert set(train.objective.terms) == {"ce", "factor"}
    teacher = outputs({"t": torch.randn(2, 8, 4, 4)})
    paraphrase.objective.bind(outputs({"s": torch.randn(2, 4, 4, 4)}), teacher)
    assert reconstruction.paraphraser.encoder(teacher.get("t")).shape == (2, 4, 4, 4)  # k·m = 0.5 · 8
    assert reconstruction.paraphraser(teacher.get("t")).shape == (2, 8, 4, 4)


def test_reconstruction_is_the_mean_squared_error_of_the_autoencoder() -> None:
    paraphrase = create("ft", student="s", teacher="t")[0].objective
    features = torch.randn(2, 3, 2, 2, generator=torch.Generator().manual_seed(0))
    teacher = outputs({"t": features})
    paraphrase.bind(outputs({"s": features}), teacher)
    out = paraphrase(Context(Batch(torch.zeros(2, 1), torch.zeros(2, dtype=torch.long)), outputs({}), teacher))
    with torch.no_grad():
        rebuilt = paraphrase.terms["reconstruction"].paraphraser(features)
    expected = sum(float(rebuilt.flatten()[i] - features.flatten()[i]) ** 2 for i in range(24)) / 24
    assert out.parts["reconstruction"].item() == pytest.approx(expected, rel=1e-5)


def test_factor_loss_is_l1_distance_of_l2_normalized_factors() -> None:
    train = create("ft", student="s", teacher="t", beta=2.0)[1].objective
    generator = torch.Generator().manual_seed(1)
    s, t = torch.randn(2, 2, 2, 2, generator=generator), torch.randn(2, 2, 2, 2, generator=generator)
    train.bind(outputs({"s": s}), outputs({"t": t}))
    term = train.terms["factor"]
    term.translator, term.paraphraser.encoder = nn.Identity(), nn.Identity()  # the factors are then the features
    batch = Batch(torch.zeros(2, 1), torch.zeros(2, dtype=torch.long))
    out = train(Context(batch, outputs({"s": s}), outputs({"t": t})))
    expected = 0.0
    for b in range(2):
        s_values, t_values = s[b].flatten().tolist(), t[b].flatten().tolist()
        s_norm, t_norm = sum(v * v for v in s_values) ** 0.5, sum(v * v for v in t_values) ** 0.5
        expected += sum(abs(tv / t_norm - sv / s_norm) for sv, tv in zip(s_values, t_values, strict=True)) / 2 / 8
    assert out.parts["factor"].item() == pytest.approx(2.0 * expected, rel=1e-5)  # mean over batch and 8 elements


def test_value_and_gradient_match_the_authors_code_at_its_beta() -> None:
    # β · L1Loss(normalize(vec F_S), normalize(vec F_T)) with β = 500: the mean over the batch and the D = 8 elements,
    # by hand: ‖F_S‖ = 4.5 and √8.25, ‖F_T‖ = 3 and 3; Σ|F̂_T − F̂_S| = 2.888889 and 1.929676; 500 · 4.818565 / 16
    train = create("ft", student="s", teacher="t")[1].objective
    student = torch.tensor([[[[1.0, -2.0], [0.5, 0.0]], [[3.0, 1.0], [-1.0, 2.0]]],
                            [[[0.0, 1.0], [1.0, 1.0]], [[-1.0, 0.0], [2.0, 0.5]]]], dtype=torch.float64,
                           requires_grad=True)
    teacher = torch.tensor([[[[2.0, 0.0], [1.0, 1.0]], [[1.0, 1.0], [0.0, -1.0]]],
                            [[[1.0, 1.0], [1.0, 1.0]], [[0.0, 2.0], [1.0, 0.0]]]], dtype=torch.float64)
    train.bind(outputs({"s": student.detach()}), outputs({"t": teacher}))
    term = train.terms["factor"]
    term.translator, term.paraphraser.encoder = nn.Identity(), nn.Identity()  # the factors are then the features
    batch = Batch(torch.zeros(2, 1), torch.zeros(2, dtype=torch.long))
    value = term.weight * term.loss(Context(batch, outputs({"s": student}), outputs({"t": teacher})))
    assert float(value.detach()) == pytest.approx(150.580159, rel=1e-6)
    value.backward()
    expected = torch.tensor([[[[-8.830590, -3.172154], [-7.887517, -6.944444]], [[1.286008, -8.830590],
                                                                                   [-5.058299, 3.172154]]],
                             [[[-10.879853, 2.307848], [2.307848, 2.307848]], [[-2.307848, -10.879853],
                                                                                [-6.264158, 6.593851]]]],
                            dtype=torch.float64)
    torch.testing.assert_close(student.grad, expected, atol=1e-5, rtol=0)


def test_stage_one_trains_only_the_paraphraser_and_stage_two_never_changes_it() -> None:
    stages = create("ft", student="stage2", teacher="stage2", paraphraser_epochs=1)
    generator = torch.Generator().manual_seed(3)
    data = ArrayDataset(torch.randn(32, 1, 8, 8, generator=generator), torch.randint(0, 5, (32,), generator=generator))
    student, teacher = student_model(), teacher_model()
    weights = {name: value.clone() for name, value in student.named_parameters()}
    fit(Offline(student, stages[0].objective, teacher), data, None, FitSettings(epochs=1, batch_size=8, progress=False))
    assert all(torch.equal(weights[name], value) for name, value in student.named_parameters())
    paraphraser = stages[0].objective.terms["reconstruction"].paraphraser
    trained = copy.deepcopy(paraphraser.state_dict())
    scheme = Offline(student, stages[1].objective, teacher)
    scheme.setup(sample_batch())
    scheme.train()
    assert not paraphraser.training
    scheme.loss(sample_batch(), 0.5, 2).total.backward()
    assert all(p.grad is None for p in paraphraser.parameters())
    assert all(p.grad is not None for p in stages[1].objective.terms["factor"].translator.parameters())
    fit(scheme, data, None, FitSettings(epochs=1, batch_size=8, progress=False))
    after = paraphraser.state_dict()
    assert all(torch.equal(trained[key], after[key]) for key in trained)  # weights and BatchNorm statistics


def test_factor_gradient_matches_finite_differences() -> None:
    train = create("ft", student="s", teacher="t", norm=2.0)[1].objective
    generator = torch.Generator().manual_seed(2)
    s = torch.randn(1, 2, 2, 2, dtype=torch.float64, generator=generator).requires_grad_(True)
    t = torch.randn(1, 2, 2, 2, dtype=torch.float64, generator=generator)
    train.bind(outputs({"s": s.detach()}, 1), outputs({"t": t}, 1))
    term = train.terms["factor"]
    term.translator, term.paraphraser.encoder = nn.Identity(), nn.Identity()
    batch = Batch(torch.zeros(1, 1), torch.zeros(1, dtype=torch.long))

    def value(features: torch.Tensor) -> torch.Tensor:
        return term.loss(Context(batch, outputs({"s": features}, 1), outputs({"t": t}, 1)))

    assert torch.autograd.gradcheck(value, (s,))


def test_bad_parameters_and_shapes() -> None:
    with pytest.raises(MentorError, match="'rate' parameter of ft"):
        create("ft", student="s", teacher="t", rate=0)
    with pytest.raises(MentorError, match="'norm' parameter of ft"):
        create("ft", student="s", teacher="t", norm=0.5)
    with pytest.raises(MentorError, match="'paraphraser_epochs' parameter of ft"):
        create("ft", student="s", teacher="t", paraphraser_epochs=0)
    with pytest.raises(MentorError, match="'student' parameter of ft"):
        create("ft", teacher="t")
    paraphrase = create("ft", student="s", teacher="t")[0].objective
    with pytest.raises(MentorError, match="tap a feature map"):
        paraphrase.bind(outputs({"s": torch.zeros(2, 4)}), outputs({"t": torch.zeros(2, 4)}))
