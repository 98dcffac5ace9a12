"""Learning objectives (survey §2) as multi-stage runs."""

from mentor.pipelines.distill import Job, Measured, Result, check, distill, run, train

__all__ = ["Job", "Measured", "Result", "check", "distill", "run", "train"]
