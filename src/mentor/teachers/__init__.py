"""Teacher architectures (survey §4)."""

from mentor.teachers.bank import TeacherBank
from mentor.teachers.cache import TeacherCache
from mentor.teachers.ema import EMATeacher
from mentor.teachers.ensemble import Ensemble
from mentor.teachers.frozen import FrozenTeacher, freeze
from mentor.teachers.pate import ConfidentGNMax, GNMax, LNMax

__all__ = ["ConfidentGNMax", "EMATeacher", "Ensemble", "FrozenTeacher", "GNMax", "LNMax", "TeacherBank", "TeacherCache",
           "freeze"]
