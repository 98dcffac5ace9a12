"""Weightings of several teachers (survey §4.2), one file each, registered by name.

``uniform``, ``fixed`` (user weights), ``adaptive`` (AMTML-KD), ``reinforced`` (Yuan et al.) and ``domain``
(Ruder et al.); :func:`create` builds one by name.
"""

from mentor.teachers.weighting import adaptive, domain, fixed, reinforced, uniform  # noqa: F401 - registers
from mentor.teachers.weighting.base import WEIGHTINGS, Weighting, create, member_logits, member_path

__all__ = ["WEIGHTINGS", "Weighting", "create", "member_logits", "member_path"]
