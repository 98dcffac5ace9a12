"""Result tables and run reports."""

from mentor.report.table import mean_std, render

__all__ = ["mean_std", "render"]
