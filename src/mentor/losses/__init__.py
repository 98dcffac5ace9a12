"""Knowledge optimization (survey §3.2): pure loss functions, weighted terms and the objective."""

from mentor.losses import functional
from mentor.losses.objective import LossOutput, Objective
from mentor.losses.terms import CE, KL, Context, Cosine, Distance, Schedule, Term

__all__ = ["CE", "KL", "Context", "Cosine", "Distance", "LossOutput", "Objective", "Schedule", "Term", "functional"]
