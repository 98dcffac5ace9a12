"""Contract-test examples for logit regression, DKD and the feature-based methods (fsp, at, ft, ab)."""

from tests.knowledge.conftest import Example

EXAMPLES = {
    "logit_mse": Example({"alpha": 0.5}, zero_when_identical=True),
    "dkd": Example({"alpha": 1.0, "beta": 8.0, "temperature": 4.0, "warmup": 1.0}, zero_when_identical=True),
    # FSP matrices must agree in size: image (1 ch) -> 8-channel map, and an 8x8 flow inside a block
    "fsp": Example(
        {
            "student": [["stage1.conv1:input", "stage2"], ["stage2.relu1:input", "stage2"]],
            "teacher": [["stage1.conv1:input", "stage1"], ["stage1.relu1:input", "stage1"]],
            "fsp_epochs": 1,
        },
        zero_when_identical=False,
    ),
    "at": Example({"student": ["stage1", "stage2"], "teacher": ["stage1", "stage2"]}, zero_when_identical=True),
    "ft": Example({"student": "stage2", "teacher": "stage2", "paraphraser_epochs": 1}, zero_when_identical=False),
    "ab": Example(
        {
            "student": ["stage1.relu1:input", "stage2.relu1:input"],
            "teacher": ["stage1.relu1:input", "stage2.relu1:input"],
            "init_epochs": 1,
        },
        zero_when_identical=False,
    ),
}
