"""Checks and conversions from raw NumPy arrays (files on disk) to model-ready tensors."""

from __future__ import annotations

import numpy as np
import torch

from mentor.errors import MentorError


def to_inputs(array: np.ndarray, name: str) -> torch.Tensor:
    """Convert stored samples to ``float32`` tensors in ``(N, C, H, W)`` or ``(N, D)`` layout.

    ``uint8`` values are scaled to ``[0, 1]``; floating values are kept. ``(N, H, W)`` images get a
    channel axis.

    Args:
        array: The samples as read from disk.
        name: The file (or file and key) the array came from, for error messages.

    Raises:
        MentorError: For an empty array, fewer than 2 dimensions, another dtype, or non-finite values.
    """
    if array.size == 0 or array.shape[0] == 0:
        raise MentorError(f"{name}: input array is empty (shape {array.shape})")
    if array.ndim < 2:
        raise MentorError(f"{name}: inputs need a sample axis and at least one feature axis; "
                          f"got shape {array.shape}")
    if array.dtype == np.uint8:
        tensor = torch.from_numpy(np.ascontiguousarray(array)).to(torch.float32).div_(255.0)
    elif np.issubdtype(array.dtype, np.floating):
        tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
        if not bool(torch.isfinite(tensor).all()):
            raise MentorError(f"{name}: inputs contain NaN or infinite values")
    else:
        raise MentorError(f"{name}: inputs must be uint8 (0..255) or floating point; got dtype {array.dtype}")
    return tensor.unsqueeze(1) if tensor.ndim == 3 else tensor


def to_targets(array: np.ndarray, name: str) -> torch.Tensor:
    """Convert stored class labels to a 1-D ``int64`` tensor.

    Raises:
        MentorError: For an empty array, a non-integer dtype, a shape other than ``(N,)`` or a
            negative label.
    """
    if array.size == 0:
        raise MentorError(f"{name}: label array is empty")
    if array.ndim != 1:
        raise MentorError(f"{name}: labels must be one integer per sample, shape (N,); got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise MentorError(f"{name}: labels must be integers 0..K-1; got dtype {array.dtype}")
    if int(array.min()) < 0:
        raise MentorError(f"{name}: labels must be in 0..K-1; found negative label {int(array.min())}")
    return torch.from_numpy(array.astype(np.int64))


def check_pair(inputs: torch.Tensor, targets: torch.Tensor, inputs_name: str, targets_name: str) -> None:
    """Raise a :class:`MentorError` naming both files when inputs and labels differ in length."""
    if inputs.shape[0] != targets.shape[0]:
        raise MentorError(f"{inputs_name} has {inputs.shape[0]} samples but {targets_name} has "
                          f"{targets.shape[0]} labels; they must match")


def check_labels(targets: torch.Tensor, num_classes: int, name: str) -> None:
    """Raise a :class:`MentorError` when a label is outside ``0..num_classes-1``."""
    bad = (targets < 0) | (targets >= num_classes)
    if bool(bad.any()):
        value = int(targets[bad][0])
        raise MentorError(f"{name}: label {value} is not in 0..{num_classes - 1} "
                          f"(the {num_classes} classes seen in the training labels)")
