"""Learning schemes (survey §5): offline, online (peers trained together) and self-learning.

Every module of this package (and of its sub-packages) is imported here so that its ``@SCHEMES.register``
runs: adding a scheme is adding one file.
"""

import importlib
import pkgutil

from mentor.schemes.base import SCHEMES, Phase, Phased, Scheme
from mentor.schemes.offline import Offline, student_outputs

for _module in pkgutil.walk_packages(__path__, prefix=f"{__name__}."):
    importlib.import_module(_module.name)

__all__ = ["SCHEMES", "Offline", "Phase", "Phased", "Scheme", "student_outputs"]
