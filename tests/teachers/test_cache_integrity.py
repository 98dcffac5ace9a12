"""The teacher-output cache is never stale and never serves a damaged entry; an unwritable cache is skipped."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from mentor.data import ArrayDataset
from mentor.errors import MentorWarning
from mentor.models import CNN
from mentor.teachers import FrozenTeacher, TeacherCache, freeze
from mentor.teachers.cache import cache_key
from tests.teachers.test_cache import dataset, teacher

SHIFT = 0.0  # read by Shifted.forward: no digest can see it, the probe batch does


class Scaled(nn.Module):
    """A wrapper with a normalisation constant in a plain attribute (outside the state_dict)."""

    def __init__(self, inner: nn.Module, scale: float) -> None:
        super().__init__()
        self.inner, self.scale = inner, scale

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.inner(inputs) * self.scale


class Shifted(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.inner(inputs) + SHIFT


def cnn() -> nn.Module:
    torch.manual_seed(0)
    return CNN((1, 8, 8), 5, channels=(4, 8)).eval()


def assert_serves_live_outputs(frozen: FrozenTeacher, data: ArrayDataset, root: Path) -> TeacherCache:
    cache = TeacherCache.build(frozen, data, root=root)
    assert cache is not None
    indices = torch.arange(len(data))
    assert torch.allclose(cache.outputs(indices, torch.device("cpu")).logits, frozen(data.inputs), atol=1e-5)
    return cache


def test_a_changed_plain_attribute_is_a_new_entry(tmp_path: Path) -> None:
    data, inner = dataset(), cnn()
    first, second = freeze(Scaled(inner, 1.0)), freeze(Scaled(inner, 2.0))
    assert cache_key(first, data, (), None) != cache_key(second, data, (), None)
    assert_serves_live_outputs(first, data, tmp_path)
    assert_serves_live_outputs(second, data, tmp_path)


def test_a_changed_forward_is_a_new_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data, frozen = dataset(), freeze(Scaled(cnn(), 1.0))
    before = cache_key(frozen, data, (), None)
    assert_serves_live_outputs(frozen, data, tmp_path)
    monkeypatch.setattr(Scaled, "forward", lambda self, inputs: self.inner(inputs).tanh() * self.scale)
    assert cache_key(frozen, data, (), None) != before
    assert_serves_live_outputs(frozen, data, tmp_path)


def test_a_new_hook_is_a_new_entry(tmp_path: Path) -> None:
    data, frozen = dataset(), freeze(cnn())
    before = cache_key(frozen, data, (), None)
    frozen.model.head.register_forward_hook(lambda module, inputs, output: output * 3)
    assert cache_key(frozen, data, (), None) != before
    assert_serves_live_outputs(frozen, data, tmp_path)


def test_what_no_digest_sees_is_caught_by_the_probe_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data, frozen = dataset(), freeze(Shifted(cnn()))
    assert_serves_live_outputs(frozen, data, tmp_path)
    monkeypatch.setattr(f"{__name__}.SHIFT", 1.5)
    with pytest.warns(MentorWarning, match="differs from the live teacher's outputs on a probe batch"):
        assert_serves_live_outputs(frozen, data, tmp_path)


def test_a_teacher_with_random_outputs_is_served_live(tmp_path: Path) -> None:
    class Noisy(nn.Module):
        def forward(self, inputs: torch.Tensor) -> torch.Tensor:
            return torch.randn(len(inputs), 5)

    with pytest.warns(MentorWarning) as warned:
        assert TeacherCache.build(freeze(Noisy()), dataset(), root=tmp_path) is None
    messages = [str(warning.message) for warning in warned]
    assert "rebuilding it" in messages[0] and "the live teacher serves instead" in messages[1]
    assert not any(tmp_path.iterdir())


def flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x10
    path.write_bytes(data)


@pytest.mark.parametrize("damage", [
    lambda folder: flip(folder / "logits.00000.npy"),
    lambda folder: (folder / "logits.00000.npy").write_bytes((folder / "logits.00000.npy").read_bytes()[:100]),
    lambda folder: (folder / "stage2.00000.npy").unlink(),
    lambda folder: (folder / "complete").write_text("{not json"),
    lambda folder: (folder / "complete").write_text('{"format": "teacher-outputs/3", "files": ["x"]}'),
], ids=["flipped-byte", "truncated", "missing", "bad-manifest", "wrong-manifest"])
def test_a_damaged_entry_is_rebuilt_with_a_warning(damage: object, tmp_path: Path) -> None:
    frozen, data = teacher(), dataset()
    TeacherCache.build(frozen, data, ("stage2",), root=tmp_path)
    (folder,) = tmp_path.iterdir()
    damage(folder)  # type: ignore[operator]
    with pytest.warns(MentorWarning, match="unusable .*; rebuilding it"):
        cache = TeacherCache.build(frozen, data, ("stage2",), root=tmp_path)
    assert cache is not None
    live = frozen.outputs(data.inputs, ("stage2",))
    cached = cache.outputs(torch.arange(len(data)), torch.device("cpu"))
    assert torch.allclose(cached.logits, live.logits, atol=1e-5)
    assert torch.allclose(cached.features["stage2"], live.features["stage2"], atol=1e-5)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_a_cache_that_cannot_be_written_is_skipped(code: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: Path, *args: object, **kwargs: object) -> None:
        raise OSError(code, "refused", str(path))

    monkeypatch.setattr(np.lib.format, "open_memmap", refuse)
    with pytest.warns(MentorWarning, match=r"cache is skipped, the live teacher serves: cannot access '.*': refused"):
        assert TeacherCache.build(teacher(), dataset(), root=tmp_path) is None
