"""The model factory: names, user factories by import path, modules; clear errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mentor.errors import MentorError
from mentor.models import MODELS, count_parameters, create


def user_factory(num_classes: int, width: int = 3) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, width), nn.ReLU(), nn.Linear(width, num_classes))


def not_a_model(num_classes: int) -> int:
    return num_classes


MULTI_HEAD = ("cnn-multi-head", "mlp-multi-head")  # one output per task: tests/pipelines/test_multitask.py


@pytest.mark.parametrize("name", [n for n in MODELS.names() if n not in ("mlp", "cnn", *MULTI_HEAD)])
def test_every_named_model_maps_images_to_logits(name: str) -> None:
    model = create(name, num_classes=7, input_shape=(1, 8, 8))
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 7)


def test_sizes_grow_with_their_names() -> None:
    sizes = [count_parameters(create(f"cnn-{s}", 10, (1, 28, 28))) for s in ("tiny", "small", "medium", "large")]
    assert sizes == sorted(sizes)


def test_import_path_factory_and_module_passthrough() -> None:
    model = create("tests.models.test_factory:user_factory", num_classes=4, input_shape=(1, 8, 8), width=5,
                   trust_code=True)
    assert model(torch.randn(3, 1, 8, 8)).shape == (3, 4)
    mine = nn.Linear(2, 2)
    assert create(mine) is mine


@pytest.mark.parametrize(
    ("spec", "options", "message"),
    [
        ("cnn-smal", {}, "unknown model 'cnn-smal'; nearest: cnn-small"),
        ("mlp", {"hiden": [3]}, "unknown option 'hiden' of model 'mlp'"),
        ("tests.models.test_factory:user_fact", {}, "has no callable 'user_fact'; nearest: user_factory"),
        ("no_such_module:f", {}, "cannot import model factory module 'no_such_module'"),
        ("tests.models.test_factory:pytest", {}, "is not callable"),
        ("tests.models.test_factory:not_a_model", {}, "returned int, not an nn.Module"),
        ("tests.models.test_factory:user_factory", {"width": "x"}, "could not be built .* TypeError"),
    ],
)
def test_factory_errors(spec: str, options: dict, message: str) -> None:
    with pytest.raises(MentorError, match=message):
        create(spec, 10, (1, 8, 8), trust_code=True, **options)
