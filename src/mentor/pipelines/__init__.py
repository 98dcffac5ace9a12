"""Learning objectives (survey §2) as multi-stage runs."""

from mentor.pipelines.adapt import adapt
from mentor.pipelines.collaborate import collaborate
from mentor.pipelines.distill import Job, check, distill, fit_plan, run, train
from mentor.pipelines.expand import expand
from mentor.pipelines.multitask import multitask
from mentor.pipelines.multitask_data import Task
from mentor.pipelines.multitask_steps import CrossTask
from mentor.pipelines.options import settings
from mentor.pipelines.result import Measured, Result

__all__ = ["CrossTask", "Job", "Measured", "Result", "Task", "adapt", "check", "collaborate", "distill", "expand",
           "fit_plan", "multitask", "run", "settings", "train"]
