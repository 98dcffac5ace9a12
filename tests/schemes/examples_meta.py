"""Scheme contract examples for the learning-teacher schemes (survey §4)."""

from tests.schemes.conftest import SchemeExample

EXAMPLES = {
    "meta-distill": SchemeExample(params={"teacher_epochs": 1, "quiz_fraction": 0.25}),
}
