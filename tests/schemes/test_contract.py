"""Contract tests run over every registered scheme: the one loop trains each of them unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from mentor.engine import FitSettings, checkpoint, fit
from mentor.schemes import SCHEMES, Phased, Scheme
from mentor.teachers import FrozenTeacher
from tests.schemes.conftest import all_examples, tiny_data

NAMES = SCHEMES.names()
EXAMPLES = all_examples()
SETTINGS = FitSettings(epochs=1, batch_size=8, progress=False)


def build(name: str) -> Scheme | Phased:
    example = EXAMPLES[name]
    return SCHEMES.get(name)(example.models(), **example.params)


def schemes_of(built: Scheme | Phased, tmp: Path | None = None) -> list[Scheme]:
    """Train every phase with the loop (phases may depend on earlier ones) and return the schemes trained.

    Checks on the way that no frozen teacher changes while a phase trains.
    """
    phases = [built] if isinstance(built, Scheme) else (phase.scheme for phase in built.phases())
    trained = []
    for index, scheme in enumerate(phases):
        before = [{k: v.clone() for k, v in t.state_dict().items()} for t in frozen_parts(scheme)]
        folder = (tmp if isinstance(built, Scheme) else tmp / f"phase{index}") if tmp else None
        fit(scheme, tiny_data(), tiny_data(16, 4), SETTINGS, checkpoints=folder)
        # teachers a phase builds in setup (from an earlier phase's model) are not in `before`; they are
        # checked by the offline scheme's own contract
        for teacher, state in zip(frozen_parts(scheme), before, strict=False):
            for key, value in teacher.state_dict().items():
                assert torch.equal(state[key], value), key
        trained.append(scheme)
    return trained


def frozen_parts(scheme: nn.Module) -> list[FrozenTeacher]:
    return [module for module in scheme.modules() if isinstance(module, FrozenTeacher)]


@pytest.mark.parametrize("name", NAMES)
def test_every_scheme_has_an_example_and_a_paper(name: str) -> None:
    assert name in EXAMPLES, f"add a SchemeExample for {name!r} to tests/schemes/examples_*.py"
    assert next(entry for entry in SCHEMES if entry.name == name).summary


@pytest.mark.parametrize("name", NAMES)
def test_every_trained_model_receives_gradients_and_frozen_ones_never(name: str) -> None:
    built = build(name)
    phases = [built] if isinstance(built, Scheme) else (phase.scheme for phase in built.phases())
    for scheme in phases:
        scheme.setup(next(iter(_batches())))
        scheme.train()
        output = scheme.loss(next(iter(_batches())), 0.5, 2)
        assert output.total.ndim == 0 and torch.isfinite(output.total)
        output.total.backward()
        for model_name, module in scheme.trained().items():
            parameters = [p for p in module.parameters() if p.requires_grad]
            if parameters:
                assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in parameters), model_name
        for teacher in frozen_parts(scheme):
            assert all(p.grad is None for p in teacher.parameters())
        if isinstance(built, Phased):
            fit(scheme, tiny_data(), None, SETTINGS)  # later phases may need this one trained


def _batches():  # noqa: ANN202
    from mentor.batch import Batch

    data = tiny_data()
    yield Batch(data.inputs[:8], data.targets[:8], torch.arange(8), len(data))


@pytest.mark.parametrize("name", NAMES)
def test_frozen_teachers_are_unchanged_and_checkpoints_hold_every_trained_model(name: str, tmp_path: Path) -> None:
    built = build(name)
    for index, scheme in enumerate(schemes_of(built, tmp_path)):
        folder = tmp_path if isinstance(built, Scheme) else tmp_path / f"phase{index}"
        saved = checkpoint.load(folder / "last.pt")
        assert set(saved["models"]) == set(scheme.trained())


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_under_a_seed(name: str) -> None:
    def once() -> list[float]:
        torch.manual_seed(0)
        return [float(p.detach().sum()) for scheme in schemes_of(build(name)) for p in scheme.parameters()]

    assert once() == once()
