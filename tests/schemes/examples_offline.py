"""Scheme contract examples for the offline scheme."""

from mentor.losses import CE, KL, Objective
from tests.schemes.conftest import SchemeExample, small_cnn

EXAMPLES = {
    "offline": SchemeExample(
        models=lambda: [small_cnn(1), small_cnn(2, (8, 16))],
        params={"objective": Objective(CE(weight=0.1), KL(4.0, weight=0.9))},
    ),
}
