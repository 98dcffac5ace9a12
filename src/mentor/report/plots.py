"""Plots of the run report, drawn with matplotlib (an optional extra) and returned as base64 PNG text.

Each function draws one figure and returns the PNG encoded in base64, ready for
``<img src="data:image/png;base64,...">``, so the report file needs nothing else.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from mentor.errors import MentorError
from mentor.report.calibration import Reliability

Series = Mapping[str, tuple[Sequence[float], Sequence[float]]]
"""Line label -> (x values, y values)."""


def figure_class() -> Any:
    """``matplotlib.figure.Figure``, or a MentorError saying how to install matplotlib.

    Figures are made without pyplot: no global state, no backend switch in the caller's session.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise MentorError("the report draws plots with matplotlib, which is not installed; "
                          "run: pip install 'mentor[report]'") from None
    return Figure


def _encode(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=90)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def lines(title: str, series: Series, xlabel: str, ylabel: str, boundaries: Sequence[float] = (),
          emphasized: str | None = None) -> str:
    """One line per entry of ``series`` (``emphasized`` dashed black); dashed grey lines at ``boundaries``."""
    from matplotlib.ticker import MaxNLocator

    figure = figure_class()(figsize=(6.4, 3.6))
    axes = figure.subplots()
    for label, (xs, ys) in series.items():
        style = {"color": "black", "linestyle": "--"} if label == emphasized else {}
        axes.plot(list(xs), list(ys), marker="o" if len(xs) < 20 else None, markersize=3, label=label, **style)
    for boundary in boundaries:
        axes.axvline(boundary, color="grey", linestyle="--", linewidth=0.8)
    axes.set(title=title, xlabel=xlabel, ylabel=ylabel)
    axes.grid(alpha=0.3)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    if series:
        axes.legend(fontsize=8)
    return _encode(figure)


def confusion(title: str, matrix: torch.Tensor) -> str:
    """A confusion matrix (rows: true class, columns: predicted class) with its counts written in."""
    classes = matrix.shape[0]
    figure = figure_class()(figsize=(4.2, 3.8))
    axes = figure.subplots()
    image = axes.imshow(matrix.numpy(), cmap="Blues")
    figure.colorbar(image, ax=axes, fraction=0.046)
    if classes <= 20:
        threshold = float(matrix.max()) / 2
        for row in range(classes):
            for column in range(classes):
                value = int(matrix[row, column])
                axes.text(column, row, str(value), ha="center", va="center", fontsize=7,
                          color="white" if value > threshold else "black")
    axes.set(title=title, xlabel="predicted class", ylabel="true class")
    return _encode(figure)


def reliability_diagrams(title: str, diagrams: Mapping[str, Reliability]) -> str:
    """One reliability diagram per entry: accuracy bars and mean confidence dots per bin, the diagonal, the ECE."""
    count = max(len(diagrams), 1)
    columns = min(count, 3)
    rows = math.ceil(count / columns)
    figure = figure_class()(figsize=(3.4 * columns, 3.2 * rows))
    grid = figure.subplots(rows, columns, squeeze=False)
    for axes, (label, diagram) in zip(grid.flat, diagrams.items(), strict=False):
        edges = diagram.edges.numpy()
        width = edges[1] - edges[0]
        accuracy = torch.nan_to_num(diagram.accuracy, nan=0.0).numpy()
        filled = diagram.counts > 0
        centres = (edges[:-1] + width / 2)[filled.numpy()]
        axes.bar(edges[:-1], accuracy, width=width, align="edge", edgecolor="black", label="accuracy")
        axes.plot(centres, diagram.confidence[filled].numpy(), "o", color="tab:red", markersize=4,
                  label="mean confidence")
        axes.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
        axes.set(title=f"{label}: ECE {diagram.ece:.4f}", xlabel="confidence", ylabel="accuracy",
                 xlim=(0, 1), ylim=(0, 1))
        axes.legend(fontsize=7, loc="best")
    for axes in list(grid.flat)[len(diagrams):]:
        axes.axis("off")
    figure.suptitle(title)
    return _encode(figure)


def scales(title: str, ratios: Mapping[str, float], low: float, high: float) -> str:
    """Horizontal bars of gradient ratios on a log axis, with the accepted range [low, high] marked."""
    labels = list(ratios)
    figure = figure_class()(figsize=(7.2, 0.9 + 0.28 * max(len(labels), 1)))
    axes = figure.subplots()
    values = [max(ratios[label], 1e-9) for label in labels]
    colors = ["tab:red" if not low <= value <= high else "tab:blue" for value in values]
    axes.barh(labels, values, color=colors)
    axes.set_xscale("log")
    for bound in (low, high):
        axes.axvline(bound, color="grey", linestyle="--", linewidth=0.8)
    axes.axvline(1.0, color="black", linewidth=0.6)
    axes.invert_yaxis()
    axes.tick_params(axis="y", labelsize=7)
    axes.set(title=title, xlabel="gradient norm ÷ cross-entropy's (log scale)")
    axes.grid(axis="x", alpha=0.3)
    return _encode(figure)


def size_and_latency(title: str, roles: Sequence[str], parameters: Sequence[float], latency: Sequence[float]) -> str:
    """Side-by-side bars: parameter count and inference latency (ms per batch) of each role."""
    figure = figure_class()(figsize=(8.4, 3.4))
    left, right = figure.subplots(1, 2)
    colors = [f"C{index % 10}" for index in range(len(roles))]
    left.bar_label(left.bar(list(roles), list(parameters), color=colors), labels=[f"{p:,.0f}" for p in parameters],
                   fontsize=7)
    left.set(title="parameters", ylabel="count")
    right.bar_label(right.bar(list(roles), list(latency), color=colors), labels=[f"{t:.3g}" for t in latency],
                    fontsize=7)
    right.set(title="latency", ylabel="ms per batch")
    for axes in (left, right):
        axes.tick_params(axis="x", labelrotation=20, labelsize=8)
        axes.grid(axis="y", alpha=0.3)
    figure.suptitle(title)
    return _encode(figure)
