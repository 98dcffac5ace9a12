"""Self-learning schemes (survey §5.2): the student teaches itself.

Teacher-free KD (``tfkd-self``, ``tfkd-virtual``), Be Your Own Teacher (``byot``), born-again
generations (``born-again``), Online Subclass KD (``oskd``) and iterative pseudo-label self-training
(``pseudo-labels``); one module per scheme, each registered in :data:`mentor.schemes.SCHEMES`.
"""
