"""Learning objectives (survey §2) as multi-stage runs."""

from mentor.pipelines.collaborate import collaborate
from mentor.pipelines.distill import Job, Measured, Result, check, distill, fit_plan, run, settings, train

__all__ = ["collaborate", "Job", "Measured", "Result", "check", "distill", "fit_plan", "run", "settings", "train"]
