"""Schemes from the Python API: a name, peers and data in; trained predictors out."""

from __future__ import annotations

import pytest
import torch

import mentor
from mentor.errors import MentorError


def small_cnn(seed: int) -> mentor.models.CNN:
    torch.manual_seed(seed)
    return mentor.models.CNN((1, 8, 8), 10, channels=(4, 8))


def test_collaborate_trains_peers_with_a_named_scheme() -> None:
    data = mentor.data.load("digits", validation=0.2, seed=0, limit=160)
    result = mentor.collaborate("dml", [small_cnn(1), small_cnn(2)], data, params={"temperature": 2.0},
                                epochs=1, batch_size=32, progress=False)
    assert list(result.models) == ["peer0", "peer1", "ensemble"]
    logits = result.models["ensemble"](data.test.inputs[:4])
    assert logits.shape == (4, data.num_classes)


def test_collaborate_validates_scheme_parameters() -> None:
    data = mentor.data.load("digits", validation=0.2, seed=0, limit=64)
    with pytest.raises(MentorError, match="'temperature' parameter of dml"):
        mentor.collaborate("dml", [small_cnn(1), small_cnn(2)], data, params={"temperature": -1.0})
    with pytest.raises(MentorError, match="unknown scheme 'dmll'; nearest: dml"):
        mentor.collaborate("dmll", [small_cnn(1)], data)
