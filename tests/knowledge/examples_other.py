"""Contract-test examples for general, sskd, internal and adversarial on the standard tiny pair."""

from tests.knowledge.conftest import Example

EXAMPLES = {
    "general": Example(
        {
            "ce": 0.1,
            "kl": {"temperature": 4.0, "weight": 0.9},
            "distances": [{"student": "stage2", "teacher": "stage2", "adapter": "conv1x1", "weight": 0.5,
                           "reduction": "batchmean", "name": "hint"}],
            "cosines": [{"student": "flatten", "teacher": "flatten", "adapter": "linear"}],
        },
        zero_when_identical=False,  # the adapters are random maps even when the student is the teacher
    ),
    "sskd": Example({"head_epochs": 1}, zero_when_identical=False),  # the student's SS head differs
    "internal": Example(
        {"layers": [{"student": "stage1", "teacher": "stage1"}, {"student": "stage2", "teacher": "stage2"}],
         "progressive": True, "stacked": True, "layer_epochs": 1},
        zero_when_identical=True,  # equal shapes need no adapter, so every term vanishes
    ),
    "adversarial": Example({"feature": "logits", "hidden": 8}, zero_when_identical=False),
}
