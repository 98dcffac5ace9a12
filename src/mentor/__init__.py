"""Mentor: teacher-student knowledge learning on PyTorch.

The public API, re-exported explicitly::

    import mentor
    data = mentor.data.load("digits", validation=0.1, seed=0)
    objective = mentor.knowledge.create("kd", temperature=4.0, alpha=0.9)
    result = mentor.distill(teacher, student, data, objective, epochs=20)
    print(result.table())

In one's own training loop: :class:`Taps` record a model's layers, :class:`Objective` (bound once on a
sample batch with ``objective.bind``, before the optimizer is built) turns a :class:`Context` into the
loss, and :class:`FrozenTeacher` holds the teacher (``release()`` gives it back as it was). In three lines,
:func:`objective` does all of it: ``loss = mentor.objective("kd", student, teacher)(inputs, targets)``.
"""

from mentor import data, engine, knowledge, losses, models, recipes, schemes, teachers
from mentor import losses as terms
from mentor.batch import Batch, Outputs
from mentor.errors import MentorError
from mentor.integrations import BoundObjective, objective
from mentor.losses import Context, Objective
from mentor.pipelines import Result, collaborate, distill, train
from mentor.pipelines.pate import pate
from mentor.taps import Taps
from mentor.teachers import FrozenTeacher

__version__ = "0.1.0"

__all__ = [
    "Batch", "Context", "FrozenTeacher", "MentorError", "Objective", "Outputs", "Result", "Taps", "collaborate", "data",
    "distill", "engine", "knowledge", "losses", "models", "pate", "recipes", "schemes", "teachers", "terms", "train",
    "BoundObjective", "objective",
    "__version__",
]
