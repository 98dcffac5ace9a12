"""What a multi-task run gives back (:mod:`mentor.pipelines.multitask`): a row per model and task."""

from __future__ import annotations

import statistics

from mentor.pipelines.result import Result
from mentor.report import mean_std, render


class MultiTaskResult(Result):
    """A :class:`Result` whose table has one row per model and task (accuracy, or MSE and MAE)."""

    def table(self) -> str:
        header = ["model", "test accuracy % / MSE", "MAE", "parameters", "latency ms/batch"]
        rows = []
        for role, rows_of_role in self.by_role().items():
            regression = bool(rows_of_role[0].errors)
            result = mean_std([r.errors["mse"] for r in rows_of_role]) if regression else \
                mean_std([r.accuracy for r in rows_of_role], scale=100.0)
            mae = mean_std([r.errors["mae"] for r in rows_of_role]) if regression else ""
            rows.append([role, result, mae, f"{rows_of_role[0].parameters:,}",
                         f"{statistics.median(r.latency_ms for r in rows_of_role):.3f}"])
        ratio = self.parameter_ratio()
        seeds = len({r.seed for r in self.rows})
        lines = [render(header, rows), f"({seeds} seed{'s' if seeds > 1 else ''})"]
        if ratio is not None:
            lines.append(f"student parameters / sum of the specialists' = {ratio:.3f}")
        return "\n".join(lines)

    def parameter_ratio(self) -> float | None:
        """The multi-head student's parameters over the sum of all specialist teachers' (``None`` without both)."""
        teachers = [r.parameters for r in self.rows if r.role.endswith(" teacher") and r.seed == self.rows[0].seed]
        students = [r.parameters for r in self.rows if r.role.endswith(" student")]
        return students[0] / sum(teachers) if teachers and students else None
