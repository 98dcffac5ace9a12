"""Contract-test examples for the core methods."""

from tests.knowledge.conftest import Example

EXAMPLES = {
    "kd": Example({"temperature": 4.0, "alpha": 0.9}, zero_when_identical=True),
    "fitnet": Example({"hint": "stage2", "guided": "stage2", "hint_epochs": 1}, zero_when_identical=False),
}
