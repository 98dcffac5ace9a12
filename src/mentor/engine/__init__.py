"""The loop's mechanics: fit loop, evaluation, checkpoints, optimizers, seeding, metrics."""

from mentor.engine.evaluate import evaluate, evaluating, latency, predict
from mentor.engine.loop import fit
from mentor.engine.metrics import MetricsLog
from mentor.engine.optim import OptimizerSettings, SchedulerSettings
from mentor.engine.seed import seed_everything
from mentor.engine.settings import FitResult, FitSettings

__all__ = [
    "FitResult", "FitSettings", "MetricsLog", "OptimizerSettings", "SchedulerSettings",
    "evaluate", "evaluating", "fit", "latency", "predict", "seed_everything",
]
