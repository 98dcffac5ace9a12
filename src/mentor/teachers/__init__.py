"""Teacher architectures (survey §4)."""

from mentor.teachers.cache import TeacherCache
from mentor.teachers.ensemble import Ensemble
from mentor.teachers.frozen import FrozenTeacher, freeze

__all__ = ["Ensemble", "FrozenTeacher", "TeacherCache", "freeze"]
