"""Contract-test examples for the relation-based methods (rkd, darkrank, cc, sp, pkt, nst, vid, crd)."""

from tests.knowledge.conftest import Example

EXAMPLES = {
    "rkd": Example({"student_layer": "flatten", "teacher_layer": "flatten"}, zero_when_identical=True),
    "darkrank": Example({"variant": "soft", "list_size": 3}, zero_when_identical=True),
    "cc": Example({"gamma": 0.4, "order": 2}, zero_when_identical=True),
    "sp": Example({"student_layers": ["stage1", "stage2"], "teacher_layers": ["stage1", "stage2"]},
                  zero_when_identical=True),
    "pkt": Example({}, zero_when_identical=True),
    "nst": Example({"student_layer": "stage2", "teacher_layer": "stage2"}, zero_when_identical=True),
    "vid": Example({"student_layers": ["stage1", "stage2"], "teacher_layers": ["stage1", "stage2"]},
                   zero_when_identical=False),
    "crd": Example({"feature_dim": 8, "negatives": 16, "kd_weight": 0.9}, zero_when_identical=False),
}
