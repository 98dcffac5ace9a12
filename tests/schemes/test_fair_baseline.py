"""A scheme and its peers trained alone see the same augmentation; flips are never a default."""

from __future__ import annotations

import importlib
from dataclasses import replace

import pytest
import torch

import mentor
from mentor.data import Jitter
from mentor.engine import FitResult, FitSettings
from mentor.pipelines.collaborate import PeersJob, alone_settings, run_peers
from mentor.schemes import SCHEMES
from mentor.schemes.online.peers import Distortion
from tests.schemes.conftest import small_cnn


def images(seed: int = 0) -> torch.Tensor:
    return torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(("name", "models", "params"), [
    ("kdcl", lambda: [small_cnn(1), small_cnn(2)], {}),
    ("pcl", lambda: [small_cnn(1)], {"split": "stage2"}),
])
def test_distorting_schemes_shift_by_default_and_never_flip(name: str, models, params: dict) -> None:  # noqa: ANN001
    scheme = SCHEMES.get(name)(models(), **params)
    assert scheme.augmentation() == Distortion(shift=2, flip=False, noise=0.0)
    plain = SCHEMES.get(name)(models(), **params, shift=0)
    assert plain.augmentation() is None


def test_the_peers_alone_get_the_loop_augmentation_then_the_schemes() -> None:
    scheme = SCHEMES.get("kdcl")([small_cnn(1), small_cnn(2)], shift=1, flip=True, noise=0.1)
    settings = FitSettings(augment=Jitter(2))
    fair = alone_settings(scheme, settings).augment
    generator = torch.Generator().manual_seed(5)
    expected = scheme.distortion(Jitter(2)(images(), generator), generator)  # one generator, jitter first
    assert torch.equal(fair(images(), torch.Generator().manual_seed(5)), expected)
    assert alone_settings(scheme, replace(settings, augment=None)).augment is scheme.distortion
    assert alone_settings(SCHEMES.get("dml")([small_cnn(1), small_cnn(2)]), settings) == settings


def test_run_peers_trains_the_peers_alone_with_the_schemes_augmentation(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list = []
    collaborate = importlib.import_module("mentor.pipelines.collaborate")  # the module, not the function

    def fit_plan(model: torch.nn.Module, data: object, settings: FitSettings, **_: object) -> list[FitResult]:
        seen.append(settings.augment)
        return [FitResult(history=[], best_epoch=0, best={})]

    monkeypatch.setattr(collaborate, "fit_plan", fit_plan)
    data = mentor.data.load("digits", validation=0.2, seed=0, limit=64)
    job = PeersJob(name="kdcl", scheme="kdcl", seeds=[0], load_data=lambda seed: data,
                   peers=[lambda: mentor.models.CNN((1, 8, 8), 10, channels=(4, 8))] * 2,
                   build=lambda models: SCHEMES.create("kdcl", models, shift=1, noise=0.05),
                   settings=FitSettings(epochs=1, batch_size=32, progress=False), latency_batch=1)
    run_peers(job, None, echo=lambda line: None)
    assert seen == [Distortion(shift=1, flip=False, noise=0.05)] * 2
