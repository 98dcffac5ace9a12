"""Exporting a trained model to ONNX or TorchScript, checked against PyTorch on an example batch.

The exported model takes inputs standardized like the training data; the per-channel ``mean`` and
``std`` go into the file's metadata (ONNX ``metadata_props``, TorchScript extra file ``mentor.json``)
so that a deployment can reproduce the preprocessing.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mentor.errors import MentorError, unknown

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
METADATA_FILE = "mentor.json"


def _onnx_modules() -> tuple[Any, Any]:
    try:
        import onnx
        import onnxscript  # noqa: F401 - needed by torch.onnx's exporter
    except ImportError:
        raise MentorError("ONNX export needs onnx and onnxscript, which are not installed; "
                          "run: pip install 'mentor[onnx]'") from None
    try:
        import onnxruntime
    except ImportError:
        onnxruntime = None
    return onnx, onnxruntime


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' progress prints, log lines and deprecation warnings."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _difference(expected: torch.Tensor, actual: Any) -> float:
    return float((expected - torch.as_tensor(actual, dtype=expected.dtype)).abs().max())


def export_onnx(model: nn.Module, inputs: torch.Tensor, path: Path, metadata: dict[str, Any]) -> float | None:
    """Write ``model`` as one ONNX file with a dynamic batch axis (input ``inputs``, output ``logits``).

    Returns:
        The largest absolute difference between ONNX Runtime's and PyTorch's logits on ``inputs``, or
        ``None`` when onnxruntime is not installed.
    """
    onnx, onnxruntime = _onnx_modules()
    try:
        with _quiet():
            torch.onnx.export(model, (inputs,), str(path), dynamo=True, external_data=False,
                              input_names=["inputs"], output_names=["logits"],
                              dynamic_shapes=({0: torch.export.Dim("batch")},))
    except Exception as error:  # noqa: BLE001 - any tracing failure of a user's model
        raise MentorError(f"the model cannot be exported to ONNX: {type(error).__name__}: "
                          f"{str(error).splitlines()[0] if str(error) else ''}") from None
    document = onnx.load(str(path))
    for key, value in metadata.items():
        entry = document.metadata_props.add()
        entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)
    onnx.save(document, str(path))
    if onnxruntime is None:
        return None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    actual = session.run(None, {session.get_inputs()[0].name: inputs.numpy()})[0]
    with torch.inference_mode():
        return _difference(model(inputs), actual)


def export_torchscript(model: nn.Module, inputs: torch.Tensor, path: Path, metadata: dict[str, Any]) -> float:
    """Trace ``model`` on ``inputs`` and save it; returns the largest difference of the reloaded file's logits."""
    try:
        with _quiet():
            traced = torch.jit.trace(model, inputs, check_trace=False)
            torch.jit.save(traced, str(path), _extra_files={METADATA_FILE: json.dumps(metadata)})
            reloaded = torch.jit.load(str(path))
    except Exception as error:  # noqa: BLE001 - any tracing failure of a user's model
        raise MentorError(f"the model cannot be exported to TorchScript: {type(error).__name__}: {error}") from None
    with torch.inference_mode():
        return _difference(model(inputs), reloaded(inputs))


def export(model: nn.Module, inputs: torch.Tensor, format: str, path: str | Path,
           metadata: dict[str, Any] | None = None, tolerance: float = 1e-4) -> float | None:
    """Export ``model`` (put in eval mode) to ``path`` in ``format`` and check it on ``inputs``.

    Args:
        model: the trained model.
        inputs: an example batch ``(B, *input_shape)`` (tracing and the check).
        format: ``"onnx"`` or ``"torchscript"``.
        path: the output file (its folder is created).
        metadata: JSON-serializable values stored in the file (ONNX: one JSON text per key; TorchScript:
            one JSON object in the extra file ``mentor.json``).
        tolerance: largest allowed absolute difference of the exported model's logits.

    Returns:
        The largest absolute difference to PyTorch (``None`` when it could not be checked).

    Raises:
        MentorError: for an unknown format, a model that cannot be exported, or outputs that differ.
    """
    if format not in FORMATS:
        raise unknown("export format", format, FORMATS)
    if not isinstance(inputs, torch.Tensor):
        raise MentorError(f"export takes models of one input tensor; this one takes named tensors "
                          f"({', '.join(inputs)}): export a Hugging Face model with its own tools (e.g. optimum)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    inputs = inputs.detach().float().cpu()
    exporter = export_onnx if format == "onnx" else export_torchscript
    difference = exporter(model, inputs, path, metadata or {})
    if difference is not None and not difference <= tolerance:
        raise MentorError(f"the {format} export at {str(path)!r} differs from PyTorch by {difference:.2e} "
                          f"(> {tolerance:g}) on the example batch; the model has an operation the exporter "
                          "does not reproduce")
    return difference
