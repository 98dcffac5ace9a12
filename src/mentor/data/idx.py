"""Reader for the IDX format used by MNIST-style datasets.

An IDX file is: two zero bytes, a type code, the number of dimensions, one big-endian uint32 per
dimension, then the values in C order (big-endian). Files may be gzipped (``.gz`` suffix).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from mentor.errors import MentorError

# IDX type code -> big-endian NumPy dtype.
_TYPES: dict[int, str] = {
    0x08: "u1",
    0x09: "i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode the bytes of an (uncompressed) IDX file.

    Args:
        data: The whole file content.
        name: File name used in error messages.

    Returns:
        The array with the shape stored in the header and a native-endian dtype
        (``uint8`` for image and label files).

    Raises:
        MentorError: If the magic number, the type code or the length does not match.
    """
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise MentorError(f"{name}: not an IDX file (bad magic number {data[:4].hex() or 'empty'}); "
                          "expected 00 00 <type> <ndim>")
    code, ndim = data[2], data[3]
    if code not in _TYPES:
        raise MentorError(f"{name}: unknown IDX type code 0x{code:02x} (valid: "
                          f"{', '.join(f'0x{c:02x}' for c in _TYPES)})")
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise MentorError(f"{name}: truncated IDX header ({len(data)} bytes for {ndim} dimensions)")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_TYPES[code])
    expected = header + int(np.prod(dims)) * dtype.itemsize
    if len(data) != expected:
        raise MentorError(f"{name}: IDX size mismatch: header says shape {dims} ({expected} bytes) "
                          f"but the file has {len(data)} bytes; the file is truncated or corrupt")
    values = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return values.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file from disk, gunzipping it when its name ends in ``.gz``.

    Raises:
        MentorError: If the file is missing, unreadable or not valid IDX.
    """
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                data = f.read()
        else:
            data = path.read_bytes()
    except FileNotFoundError:
        raise MentorError(f"IDX file not found: {path}") from None
    except (OSError, EOFError) as exc:
        raise MentorError(f"{path}: cannot read IDX file ({exc})") from None
    return parse_idx(data, str(path))
