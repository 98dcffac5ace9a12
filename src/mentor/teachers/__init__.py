"""Teacher architectures (survey §4)."""

from mentor.teachers.bank import TeacherBank
from mentor.teachers.cache import TeacherCache
from mentor.teachers.ema import EMATeacher
from mentor.teachers.ensemble import Ensemble
from mentor.teachers.frozen import FrozenTeacher, freeze
from mentor.teachers.pate import ConfidentGNMax, GNMax, LNMax

__all__ = ["ConfidentGNMax", "EMATeacher", "Ensemble", "FrozenTeacher", "GNMax", "LNMax", "TeacherBank", "TeacherCache",
           "freeze", "train_student_friendly"]


def __getattr__(name: str) -> object:
    """``train_student_friendly`` on first use: its module trains through the engine, which imports this package."""
    if name == "train_student_friendly":
        from mentor.teachers.student_friendly import train_student_friendly

        return train_student_friendly
    raise AttributeError(f"module 'mentor.teachers' has no attribute {name!r}")
