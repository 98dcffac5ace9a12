"""Contract-test examples for the regression methods (float targets, one output)."""

from tests.knowledge.conftest import Example

EXAMPLES = {
    "outlier-rejection": Example({"threshold": 2.0}, zero_when_identical=True, regression=True),
}
