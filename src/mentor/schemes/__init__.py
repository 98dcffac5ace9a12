"""Learning schemes (survey §5): offline here; online and self-learning schemes plug into the same loop."""

from mentor.schemes.base import SCHEMES, Scheme
from mentor.schemes.offline import Offline, student_outputs

__all__ = ["SCHEMES", "Offline", "Scheme", "student_outputs"]
