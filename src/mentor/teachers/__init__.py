"""Teacher architectures (survey §4)."""

from mentor.teachers.cache import TeacherCache
from mentor.teachers.ema import EMATeacher
from mentor.teachers.ensemble import Ensemble
from mentor.teachers.frozen import FrozenTeacher, freeze

__all__ = ["EMATeacher", "Ensemble", "FrozenTeacher", "TeacherCache", "freeze"]
