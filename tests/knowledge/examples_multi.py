"""Contract-test examples for the methods with several teachers: an Ensemble of two tiny CNNs as the teacher."""

import torch
from torch import nn

from mentor.models import CNN
from mentor.teachers import Ensemble
from tests.knowledge.conftest import CLASSES, INPUT_SHAPE, Example


def two_teachers() -> nn.Module:
    """Teacher 0: stage2 -> (16, 2, 2); teacher 1: stage2 -> (8, 2, 2); 5 classes each."""
    torch.manual_seed(1)
    return Ensemble([CNN(INPUT_SHAPE, CLASSES, channels=(8, 16)), CNN(INPUT_SHAPE, CLASSES, channels=(4, 8))])


EXAMPLES = {
    "multi-teacher": Example(
        {"teachers": 2, "weighting": "adaptive", "weighting_params": {
            "feature": "stage2", "hints": [{"student": "stage2", "teachers": ["stage2", "stage2"]}]}},
        teacher=two_teachers,
    ),
    "relative-similarity": Example(
        {"teachers": 2, "student": "stage2", "teacher_features": ["stage2", None]}, teacher=two_teachers,
    ),
}
