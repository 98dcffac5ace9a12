"""Teacher architectures (survey §4)."""

from mentor.teachers.frozen import FrozenTeacher, freeze

__all__ = ["FrozenTeacher", "freeze"]
