"""Learning objectives (survey §2) as multi-stage runs."""

from mentor.pipelines.adapt import adapt
from mentor.pipelines.collaborate import collaborate
from mentor.pipelines.distill import Job, check, distill, fit_plan, run, train
from mentor.pipelines.expand import expand
from mentor.pipelines.options import settings
from mentor.pipelines.result import Measured, Result

__all__ = ["adapt", "collaborate", "Job", "Measured", "Result", "check", "distill", "expand", "fit_plan", "run",
           "settings", "train"]
