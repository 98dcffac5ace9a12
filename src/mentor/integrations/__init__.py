"""Mentor's objectives inside training code one already has.

- :func:`mentor.objective` (:mod:`mentor.integrations.loop`): a plain PyTorch loop, ``loss = objective(x, y)``.
- :mod:`mentor.integrations.hf`: ``DistillationTrainer``, a Hugging Face ``transformers.Trainer`` (extra ``hf``).
- :mod:`mentor.integrations.lightning`: ``DistillationCallback`` for PyTorch Lightning (extra ``lightning``).

The last two import their library when they are imported themselves, never with ``import mentor``.
"""

from mentor.integrations.loop import BoundObjective, objective

__all__ = ["BoundObjective", "objective"]
