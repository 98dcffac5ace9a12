"""``train.compile``: models run through torch.compile train like eager ones, with unchanged checkpoints."""

from __future__ import annotations

import pytest
import torch

from mentor.data import ArrayDataset
from mentor.engine import FitSettings, OptimizerSettings, fit
from mentor.losses import CE, KL, Distance, Objective
from mentor.models import MLP
from mentor.schemes import Offline
from mentor.taps import _COMPILED


@pytest.mark.parametrize("tapped", [False, True], ids=["logits", "tapped-features"])
def test_compiled_models_train_like_eager_ones(tapped: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    compile_, called = torch.compile, []

    def spy(model: torch.nn.Module) -> object:
        compiled = compile_(model)
        return lambda inputs: called.append(model) or compiled(inputs)

    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(64, 6, generator=generator)
    train = ArrayDataset(inputs, (inputs[:, 0] > 0).long())

    def trained(compile: bool) -> tuple[list[float], dict[str, torch.Tensor], Offline]:
        torch.manual_seed(0)
        teacher, student = MLP((6,), 2, hidden=(12, 12)), MLP((6,), 2, hidden=(8, 8))
        terms = [CE(weight=0.5), KL(temperature=2.0, weight=0.5)]
        terms += [Distance(student="act1", teacher=None, adapter="linear", weight=0.1)] if tapped else []
        settings = FitSettings(epochs=2, batch_size=16, progress=False, compile=compile, teacher_cache=False,
                               optimizer=OptimizerSettings("adam", 0.01))
        scheme = Offline(student, Objective(*terms), teacher)
        result = fit(scheme, train, None, settings)
        parts = [value for key, value in result.history[-1].items() if key.startswith("train/")]
        return parts, student.state_dict(), scheme

    eager_parts, eager_weights, _ = trained(False)
    monkeypatch.setattr(torch, "compile", spy)
    compiled_parts, compiled_weights, scheme = trained(True)
    teacher = scheme.teacher.model  # type: ignore[union-attr]
    expected = [teacher] if tapped else [teacher, scheme.student]  # a tapped pass runs eagerly (hooks)
    assert {id(model) for model in called} == {id(model) for model in expected}
    assert torch.allclose(torch.tensor(compiled_parts), torch.tensor(eager_parts), atol=1e-4)
    assert compiled_weights.keys() == eager_weights.keys()  # no "_orig_mod." prefixes in checkpoints
    for key, value in eager_weights.items():
        assert torch.allclose(compiled_weights[key], value, atol=1e-4), key
    assert not any(_COMPILED in module.__dict__ for module in scheme.modules())  # dropped after the fit
