"""The gradient-scale check: each term's gradient next to cross-entropy's, logged and warned about."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from mentor.batch import Batch, Outputs
from mentor.cli import main
from mentor.data import ArrayDataset
from mentor.engine import FitSettings, OptimizerSettings, fit
from mentor.engine.scales import Probe, ScaleWarning, measure, parameters, problem
from mentor.losses import CE, Distance, Objective
from mentor.losses.objective import LossOutput
from mentor.losses.terms import Context
from mentor.models import MLP
from mentor.schemes import Offline


def identity_layer() -> nn.Linear:
    layer = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(2))
    return layer


def test_ratio_is_the_weighted_term_gradient_over_the_cross_entropy_gradient() -> None:
    # z = W x with W = I and x = (1, 0): z = (1, 0).
    # CE with label 0: dCE/dz = softmax(z) - e_0 = (-1/(1+e), 1/(1+e)), dCE/dW = (dCE/dz) xᵀ, norm = √2/(1+e).
    # L = Σ z²: dL/dW = 2 z xᵀ, norm 2; at weight 3 the term's gradient norm is 6.
    layer = identity_layer()
    z = layer(torch.tensor([[1.0, 0.0]]))
    ce = nn.functional.cross_entropy(z, torch.tensor([0]))
    output = LossOutput.of({"ce": ce, "square": 3.0 * z.pow(2).sum()})
    ratios = measure(output, parameters([layer]))
    assert ratios["ce"] == pytest.approx(1.0)
    assert ratios["square"] == pytest.approx(6.0 / (math.sqrt(2) / (1 + math.e)), rel=1e-6)  # 15.7753...
    assert ratios["square"] == pytest.approx(15.7753, rel=1e-4)


def test_terms_that_do_not_reach_the_parameters_are_left_out() -> None:
    layer, other = identity_layer(), identity_layer()
    x = torch.tensor([[1.0, 0.0]])
    z = layer(x)
    output = LossOutput.of({"ce": nn.functional.cross_entropy(z, torch.tensor([0])), "elsewhere": other(x).sum(),
                            "constant": torch.zeros(())})
    assert set(measure(output, parameters([layer]))) == {"ce"}


def test_no_reference_means_no_ratios() -> None:
    layer = identity_layer()
    output = LossOutput.of({"square": layer(torch.ones(1, 2)).pow(2).sum()})
    assert output.reference_loss() is None and measure(output, parameters([layer])) == {}


def test_shared_parameters_are_counted_once() -> None:
    layer = identity_layer()
    assert len(parameters([layer, nn.Sequential(layer), layer.requires_grad_(True)])) == 1
    frozen = identity_layer().requires_grad_(False)
    assert parameters([frozen]) == []


def test_objective_reports_terms_at_full_weight_and_plain_cross_entropy_as_reference() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]], requires_grad=True)
    batch = Batch(torch.zeros(2, 1), torch.tensor([0, 0]))
    objective = Objective(CE(weight=0.25), Distance(weight=4.0, schedule=None))
    teacher = Outputs(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    output = objective(Context(batch, Outputs(logits), teacher))
    plain = nn.functional.cross_entropy(logits, batch.targets)
    assert callable(output.reference)  # computed only when the probe asks for it, not on every step
    reference = output.reference_loss()
    assert reference is not None and torch.allclose(reference, plain)
    assert torch.allclose(output.terms["ce"], 0.25 * plain)
    assert output.weights == {"ce": 0.25, "distance": 4.0}


def test_a_warming_up_term_is_measured_at_the_weight_it_will_reach() -> None:
    from mentor.losses.terms import Schedule

    logits = torch.tensor([[2.0, 0.0]], requires_grad=True)
    context = Context(Batch(torch.zeros(1, 1), torch.tensor([0])), Outputs(logits), Outputs(torch.zeros(1, 2)),
                      epoch=0.5, epochs=10)
    output = Objective(CE(), Distance(weight=2.0, schedule=Schedule(warmup=1.0)))(context)
    # mean squared error of (2, 0) against (0, 0): 2; in the total at half weight (1.0 · 2), measured at 2.0 · 2
    assert output.parts["distance"].item() == pytest.approx(2.0)
    assert output.terms["distance"].detach().item() == pytest.approx(4.0)


@pytest.mark.parametrize(("ratio", "expected"), [
    (231.0, "term 'crd' has 231× the gradient of cross-entropy: lower its weight (now 0.8)"),
    (0.0002, "term 'crd' has 1/5000 of the gradient of cross-entropy: raise its weight (now 0.8)"),
    (50.0, None), (0.001, None), (1.0, None),
])
def test_problem_names_the_term_its_ratio_and_the_fix(ratio: float, expected: str | None) -> None:
    assert problem("crd", ratio, 0.8) == expected


def test_probe_takes_medians_and_warns_for_terms_out_of_range_but_never_for_cross_entropy() -> None:
    probe = Probe(3)
    for scale in (100.0, 300.0, 200.0):
        layer = identity_layer()
        z = layer(torch.tensor([[1.0, 0.0]]))
        ce = nn.functional.cross_entropy(z, torch.tensor([0]))
        probe.take(LossOutput.of({"ce": 1000.0 * ce, "big": scale * ce}, reference=ce), parameters([layer]))
    assert not probe.active
    assert probe.ratios() == pytest.approx({"ce": 1000.0, "big": 200.0})
    with pytest.warns(ScaleWarning) as caught:
        probe.report("student train")
    assert [str(w.message) for w in caught] == [
        "student train: term 'big' has 200× the gradient of cross-entropy: lower its weight"]


def test_a_term_trained_alone_is_logged_but_not_warned_about() -> None:
    probe = Probe(1)
    layer = identity_layer()
    z = layer(torch.tensor([[1.0, 0.0]]))
    ce = nn.functional.cross_entropy(z, torch.tensor([0]))
    probe.take(LossOutput.of({"hint": 1000.0 * ce}, reference=ce), parameters([layer]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ScaleWarning)
        assert probe.report("student hint") == pytest.approx({"hint": 1000.0})


def _data(size: int = 64) -> ArrayDataset:
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(size, 4, generator=generator)
    return ArrayDataset(inputs, (inputs[:, 0] > 0).long())


def _fit(weight: float, probe_steps: int) -> tuple[nn.Module, list[dict]]:
    torch.manual_seed(0)
    teacher, student = MLP((4,), 2, hidden=(8,)), MLP((4,), 2, hidden=(8,))
    objective = Objective(CE(), Distance(weight=weight))
    settings = FitSettings(epochs=2, batch_size=16, progress=False, optimizer=OptimizerSettings("sgd", 1e-4),
                           scale_probe=probe_steps)
    result = fit(Offline(student, objective, teacher), _data(), _data(32), settings)
    return student, result.history


def test_fit_logs_ratios_in_the_first_record_and_warns_once_per_stage() -> None:
    with pytest.warns(ScaleWarning, match=r"term 'distance' has \d+× the gradient of cross-entropy: lower its "
                                          r"weight \(now 1000\)") as caught:
        _, history = _fit(1000.0, 3)
    assert len([w for w in caught if issubclass(w.category, ScaleWarning)]) == 1
    assert history[0]["scale/ce"] == pytest.approx(1.0) and history[0]["scale/distance"] > 50
    assert not any(key.startswith("scale/") for key in history[1])


def test_probing_does_not_change_training() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScaleWarning)
        probed, _ = _fit(1.0, 3)
        plain, history = _fit(1.0, 0)
    assert not any(key.startswith("scale/") for key in history[0])
    for (name, left), right in zip(probed.state_dict().items(), plain.state_dict().values(), strict=True):
        assert torch.equal(left, right), name


def test_peers_are_probed_after_their_first_epoch_when_their_targets_carry_knowledge() -> None:
    from mentor.schemes import SCHEMES

    torch.manual_seed(0)
    scheme = SCHEMES.create("dml", [MLP((4,), 2, hidden=(8,)), MLP((4,), 2, hidden=(8,))])
    settings = FitSettings(epochs=2, batch_size=16, progress=False, optimizer=OptimizerSettings("sgd", 0.01))
    history = fit(scheme, _data(), _data(32), settings).history
    assert not any(key.startswith("scale/") for key in history[0])
    assert {"scale/peer0/ce", "scale/peer0/kl", "scale/peer1/kl"} <= set(history[1])


def test_cli_prints_one_warning_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    knowledge = "knowledge={method: general, params: {distances: [{weight: 100000.0}]}}"
    args = ["run", "quickstart", "--out", str(tmp_path / "run"), "--set", "seeds=[0]", "--set", "data.limit=200",
            "--set", "train.epochs=1", "--set", "teacher.train.epochs=1", "--set", "compare.student_alone=false",
            "--set", knowledge, "--quiet"]
    assert main(args) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(lines) == 1 and lines[0].startswith("mentor: warning: student-distilled train: term 'distance1' has")
