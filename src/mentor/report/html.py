"""The run report: one self-contained HTML file (inline CSS, plots as base64 PNG, no external links).

For each run: the summary table, loss curves per term per role, the scale of every loss term's gradient
next to cross-entropy's at the start of each stage, validation accuracy curves, agreement of every role
with the teacher on the test set, confusion matrices against the labels, calibration (reliability
diagrams and ECE, 15 bins) and parameter / latency bars.
"""

from __future__ import annotations

import html
import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mentor.engine.scales import DOMINANT, VANISHING
from mentor.errors import MentorError
from mentor.report import plots
from mentor.report.calibration import BINS, agreement, confusion_matrix, reliability
from mentor.report.runs import SUMMARY_HEADER, Run, summary_rows

STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}img{max-width:100%;margin:.3em}
.note{color:#777;font-style:italic}h2{border-bottom:2px solid #444}"""


@dataclass
class Predictions:
    """Test-set logits of every role and seed of a run that could be rebuilt."""

    labels: torch.Tensor | None = None
    logits: dict[str, dict[int, torch.Tensor]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def predictions(run: Run) -> Predictions:
    """Rebuild every (role, seed) that has weights and predict the test split; missing ones become notes."""
    from mentor.engine import predict

    outputs = Predictions()
    for seed in run.seeds():
        try:
            data = run.load_data(seed)
        except MentorError as error:
            outputs.notes.append(f"test-set sections skipped: {error}")
            return outputs
        outputs.labels = data.test.targets
        for role in run.roles():
            try:
                run.available(role, seed)
            except MentorError as error:
                outputs.notes.append(f"{role}, seed {seed}: {error}")
                continue
            outputs.logits.setdefault(role, {})[seed] = predict(run.build_model(role, seed), data.test)
    return outputs


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(cell))}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(alt: str, png: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{png}">'


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _by_seed(records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    seeds: dict[Any, list[dict[str, Any]]] = {}
    for record in records:
        seeds.setdefault(record.get("seed"), []).append(record)
    return list(seeds.values())


def _mean_curve(runs: list[list[dict[str, Any]]], key: str) -> tuple[list[float], list[float]]:
    """Epoch index (stages concatenated) -> mean of ``key`` over the seeds that have it."""
    xs: list[float] = []
    ys: list[float] = []
    for position in range(max(len(records) for records in runs)):
        values = [r[position][key] for r in runs if position < len(r) and r[position].get(key) is not None]
        if values:
            xs.append(position + 1)
            ys.append(statistics.fmean(values))
    return xs, ys


def _boundaries(records: list[dict[str, Any]]) -> list[float]:
    return [i + 0.5 for i in range(1, len(records)) if records[i].get("stage") != records[i - 1].get("stage")]


def curves_section(run: Run) -> str:
    """Loss curves per term for each trained run, and one plot of validation accuracy for all models."""
    parts, accuracy, regression = [], {}, False
    for role in run.runs():
        seeds = _by_seed(run.history(role))
        if not seeds:
            continue
        keys = list(dict.fromkeys(key for records in seeds for r in records for key in r))
        # "train/loss" is the weighted total; the other "train/<term>" keys are the terms.
        losses = {"total" if key == "train/loss" else key.removeprefix("train/"): _mean_curve(seeds, key)
                  for key in keys if key.startswith("train/")}
        parts.append(_img(f"loss curves of {role}", plots.lines(
            f"{run.name}: {role} training loss (mean of {len(seeds)} seed(s))", losses, "epoch", "loss",
            _boundaries(seeds[0]), emphasized="total")))
        predictors = [key for key in keys if key.startswith("val/") and key.endswith("/accuracy")]
        regression = regression or any(key.startswith("val/") and key.endswith("/mse") for key in keys)
        for key in predictors:
            label = role if len(predictors) == 1 else f"{role} ({key.split('/')[1]})"
            accuracy[label] = _mean_curve(seeds, key)
    loss_html = "".join(parts) or _note("no training records in metrics.jsonl")
    if accuracy:
        accuracy_html = _img("validation accuracy", plots.lines(f"{run.name}: validation accuracy", accuracy,
                                                                 "epoch", "accuracy"))
    elif regression:
        accuracy_html = _note("a regression run: each model's validation MSE is in metrics.jsonl (val/MODEL/mse)")
    else:
        accuracy_html = _note("no validation records (the run had no validation split)")
    return _section("Loss curves", loss_html) + _section("Validation accuracy", accuracy_html)


def scales_section(run: Run) -> str:
    """The gradient ratio of every term (median over seeds) at the start of each role's stages."""
    ratios: dict[str, list[float]] = {}
    for role in run.roles():
        for record in run.history(role):
            for key, value in record.items():
                if key.startswith("scale/") and isinstance(value, (int, float)):
                    label = f"{role} · {record.get('stage', 'train')} · {key.removeprefix('scale/')}"
                    ratios.setdefault(label, []).append(float(value))
    if not ratios:
        return _section("Loss-term scales", _note("no gradient-scale records (scale_probe was off)"))
    medians = {label: statistics.median(values) for label, values in ratios.items()}
    rows = [[label, f"{value:.3g}", "dominates" if value > DOMINANT else "vanishes" if value < VANISHING else ""]
            for label, value in medians.items()]
    note = _note(f"gradient norm of each weighted term on the trained model ÷ that of plain cross-entropy, in the "
                 f"first steps of each stage (median over seeds); outside [{VANISHING:g}, {DOMINANT:g}] a term "
                 "dominates the others or does nothing")
    png = plots.scales(f"{run.name}: loss-term scales", medians, VANISHING, DOMINANT)
    table = _table(["model · stage · term", "ratio", ""], rows)
    return _section("Loss-term scales", note + table + _img("loss-term scales", png))


def _pairs(roles: list[str]) -> list[tuple[str, str]]:
    if "teacher" in roles:
        return [("teacher", role) for role in roles if role != "teacher"]
    return list(itertools.combinations(roles, 2))


def evaluation_sections(run: Run, outputs: Predictions) -> str:
    """Agreement with the teacher, confusion matrices and calibration from the test-set outputs."""
    notes = "".join(_note(text) for text in outputs.notes)
    roles = list(outputs.logits)
    if outputs.labels is not None and outputs.labels.is_floating_point():
        text = _note("a regression run: agreement, confusion matrices and calibration are for classifiers")
        return _section("Agreement, confusion matrices, calibration", text + notes)
    if outputs.labels is None or not roles:
        return "".join(_section(title, notes or _note("no model could be rebuilt"))
                       for title in ("Agreement", "Confusion matrices", "Calibration"))
    seeds = sorted({seed for by_seed in outputs.logits.values() for seed in by_seed})
    rows = []
    for first, second in _pairs(roles):
        both = [s for s in seeds if s in outputs.logits[first] and s in outputs.logits[second]]
        values = {s: agreement(outputs.logits[first][s], outputs.logits[second][s]) for s in both}
        if values:
            cells = [f"{100 * values[s]:.2f}" if s in values else "-" for s in seeds]
            rows.append([first, second, *cells, f"{100 * statistics.fmean(values.values()):.2f}"])
    header = ["model", "compared with", *(f"seed {s} %" for s in seeds), "mean %"]
    agreement_html = (_table(header, rows) if rows else _note("needs at least two models")) + notes
    students = [role for role in roles if role != "teacher"] or roles
    matrices = ""
    for role in students:
        labels = outputs.labels
        summed = torch.stack([confusion_matrix(logits, labels) for logits in outputs.logits[role].values()]).sum(0)
        title = f"{role} (test, {len(outputs.logits[role])} seed(s))"
        matrices += _img(f"confusion matrix of {role}", plots.confusion(title, summed))
    diagrams = {role: reliability(torch.cat([logits.softmax(dim=1) for logits in by_seed.values()]),
                                  outputs.labels.repeat(len(by_seed)), BINS)
                for role, by_seed in outputs.logits.items()}
    ece_rows = [[role, len(outputs.logits[role]), f"{diagram.ece:.4f}"] for role, diagram in diagrams.items()]
    diagram_png = plots.reliability_diagrams(f"{run.name}: calibration", diagrams)
    ece_table = _table(["model", "seeds", f"ECE ({BINS} bins)"], ece_rows)
    calibration_html = ece_table + _img("reliability diagrams", diagram_png)
    return (_section("Agreement", agreement_html) + _section("Confusion matrices", matrices)
            + _section("Calibration", calibration_html))


def size_section(run: Run) -> str:
    """Bars of parameter count and latency per role, from summary.json."""
    models = run.models_summary()
    roles = [role for role, entry in models.items() if "parameters" in entry and "latency_ms" in entry]
    if not roles:
        return _section("Size and latency", _note("summary.json has no parameter counts or latencies"))
    png = plots.size_and_latency(f"{run.name}: size and latency", roles,
                                 [models[r]["parameters"] for r in roles], [models[r]["latency_ms"] for r in roles])
    return _section("Size and latency", _img("parameters and latency", png))


def _section(title: str, body: str) -> str:
    return f'<section><h3>{html.escape(title)}</h3>{body}</section>'


def run_section(run: Run) -> str:
    """Every section of one run."""
    rows = summary_rows([run])
    summary = _table(SUMMARY_HEADER, rows) if rows else _note("no summary.json (the run did not finish)")
    return (f"<h2>{html.escape(run.name)} <small>({html.escape(str(run.path))})</small></h2>"
            + _section("Summary", summary) + curves_section(run) + scales_section(run)
            + evaluation_sections(run, predictions(run))
            + size_section(run))


def build_report(runs: list[Run]) -> str:
    """The whole HTML document for ``runs``."""
    if not runs:
        raise MentorError("the report needs at least one run directory")
    plots.figure_class()  # fail early with the install hint
    overview = _section("All runs", _table(SUMMARY_HEADER, summary_rows(runs))) if len(runs) > 1 else ""
    title = "Mentor report: " + ", ".join(run.name for run in runs)
    body = overview + "".join(run_section(run) for run in runs)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n")


def write_report(paths: Sequence[str | Path], out: str | Path, trust_code: bool = False) -> Path:
    """Read the run directories at ``paths`` and write their report to ``out`` (``trust_code``: see
    :meth:`Run.open`)."""
    runs = [Run.open(path, trust_code) for path in paths]
    document = build_report(runs)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(document, encoding="utf-8")
    return out
