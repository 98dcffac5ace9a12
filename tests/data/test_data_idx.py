"""The IDX reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mentor.data.idx import parse_idx, read_idx
from mentor.errors import MentorError


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_read_idx_roundtrip(tmp_path: Path, write_idx, name: str) -> None:
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = write_idx(tmp_path / name, array)
    loaded = read_idx(path)
    assert loaded.dtype == np.uint8
    np.testing.assert_array_equal(loaded, array)


def test_read_idx_labels_header_bytes(tmp_path: Path) -> None:
    # Written by hand: magic 00 00 08 01, one dimension of 3, then the labels.
    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 0, 9]))
    np.testing.assert_array_equal(read_idx(path), [7, 0, 9])


def test_parse_idx_big_endian_int32() -> None:
    data = bytes([0, 0, 0x0C, 1, 0, 0, 0, 2]) + (258).to_bytes(4, "big") + (1).to_bytes(4, "big")
    np.testing.assert_array_equal(parse_idx(data), [258, 1])


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"\x01\x02\x08\x01", "magic"),
        (b"", "magic"),
        (bytes([0, 0, 0x42, 1, 0, 0, 0, 1, 5]), "type code"),
        (bytes([0, 0, 8, 2, 0, 0]), "truncated"),
        (bytes([0, 0, 8, 1, 0, 0, 0, 4, 1, 2]), "size mismatch"),
    ],
)
def test_parse_idx_rejects_bad_files(data: bytes, words: str) -> None:
    with pytest.raises(MentorError, match=words) as info:
        parse_idx(data, "bad-file")
    assert "bad-file" in str(info.value)


def test_read_idx_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MentorError, match="not found"):
        read_idx(tmp_path / "nope-idx1-ubyte")


def test_read_idx_bad_gzip(tmp_path: Path) -> None:
    path = tmp_path / "x-idx1-ubyte.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(MentorError, match="cannot read"):
        read_idx(path)
