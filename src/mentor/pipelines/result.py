"""What a run gives back: the test results of its models, the models themselves, and every epoch's record."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from mentor.data import Splits
from mentor.data.streamed import first_samples
from mentor.engine import evaluate, latency
from mentor.errors import unknown
from mentor.models import count_parameters
from mentor.report import mean_std, render
from mentor.report.runs import role_name


@dataclass
class Measured:
    """Test metrics of one trained model."""

    role: str
    seed: int
    accuracy: float
    parameters: int
    latency_ms: float
    best_epoch: int
    errors: dict[str, float] = field(default_factory=dict)
    """Regression models: test ``mse`` and ``mae`` (their ``accuracy`` is NaN)."""

    @property
    def headline(self) -> str:
        """The test result in a few characters: ``97.50%``, or ``MSE 2900.1`` for regression."""
        return f"MSE {self.errors['mse']:.1f}" if self.errors else f"{self.accuracy:.2%}"


def measure(role: str, seed: int, model: nn.Module, data: Splits, latency_batch: int, best_epoch: int = 0) -> Measured:
    """Evaluate ``model`` on the test set and time one inference batch."""
    batch = first_samples(data.test, latency_batch)[0]
    metrics = evaluate(model, data.test)
    errors = {name: metrics[name] for name in ("mse", "mae") if name in metrics}
    return Measured(role, seed, metrics.get("accuracy", math.nan), count_parameters(model),
                    latency(model, batch), best_epoch, errors)


@dataclass
class Result:
    """The models of a run: test results over one or several seeds, the trained models, the training records.

    Attributes:
        rows: one :class:`Measured` per model and seed.
        models: the trained models of the last seed, by name (``result.models["student distilled"]``).
        records: every epoch's record (``run``, ``seed``, ``stage``, ``epoch``, ``lr``, ``train/<term>``,
            ``val/<model>/<metric>``), as written to a run directory's ``metrics.jsonl``.
    """

    rows: list[Measured] = field(default_factory=list)
    models: dict[str, nn.Module] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)

    def add(self, measured: Measured, model: nn.Module) -> Measured:
        """Record one model's test results and keep the model under its name."""
        self.rows.append(measured)
        self.models[measured.role] = model
        return measured

    def by_role(self) -> dict[str, list[Measured]]:
        roles: dict[str, list[Measured]] = {}
        for row in self.rows:
            roles.setdefault(row.role, []).append(row)
        return roles

    def accuracies(self) -> dict[str, float]:
        """Mean test accuracy (0 to 1) over the seeds, by model name."""
        return {role: statistics.fmean(r.accuracy for r in rows) for role, rows in self.by_role().items()}

    def history(self, run: str) -> list[dict[str, Any]]:
        """The per-epoch records of one trained run (``"student distilled"``, ``"teacher"``, a scheme's name,
        ``"peer0 alone"``): each loss term as ``train/<term>`` and each validation metric."""
        runs = {str(record.get("run")) for record in self.records}
        if role_name(run) not in runs:
            raise unknown("run", run, sorted(runs))
        return [record for record in self.records if record.get("run") == role_name(run)]

    def summary(self) -> dict[str, Any]:
        """Per role: accuracies (regression: ``mse`` and ``mae``) by seed, mean, std, parameters and median
        latency."""
        out: dict[str, Any] = {}
        for role, rows in self.by_role().items():
            accuracies = [r.accuracy for r in rows]
            out[role] = {
                "seeds": [r.seed for r in rows],
                "accuracy": accuracies,
                "accuracy_mean": statistics.fmean(accuracies),
                "accuracy_std": statistics.stdev(accuracies) if len(rows) > 1 else 0.0,
            } if not rows[0].errors else {"seeds": [r.seed for r in rows]}
            out[role] |= {
                "parameters": rows[0].parameters,
                "latency_ms": statistics.median(r.latency_ms for r in rows),
                "best_epochs": [r.best_epoch for r in rows],
            }
            for name in rows[0].errors:  # regression: test errors, the mean and std over the seeds
                values = [r.errors[name] for r in rows]
                out[role] |= {name: values, f"{name}_mean": statistics.fmean(values),
                              f"{name}_std": statistics.stdev(values) if len(rows) > 1 else 0.0}
        return out

    def table(self) -> str:
        """Accuracy (regression: MSE and MAE) as mean ± std over seeds, parameter count and inference latency
        per batch."""
        rows = []
        regression = any(r.errors for r in self.rows)
        for role, rows_of_role in self.by_role().items():
            results = ([mean_std([r.errors[name] for r in rows_of_role]) for name in ("mse", "mae")] if regression
                       else [mean_std([r.accuracy for r in rows_of_role], scale=100.0)])
            rows.append([
                role,
                *results,
                f"{rows_of_role[0].parameters:,}",
                f"{statistics.median(r.latency_ms for r in rows_of_role):.3f}",
            ])
        seeds = len({r.seed for r in self.rows})
        over = f"({seeds} seed{'s' if seeds > 1 else ''})"
        results = [f"test MSE {over}", "test MAE"] if regression else [f"test accuracy % {over}"]
        header = ["model", *results, "parameters", "latency ms/batch"]
        return render(header, rows)
