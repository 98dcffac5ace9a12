"""Scheme contract examples for the online schemes (survey §5.1): peers trained together."""

from tests.schemes.conftest import SchemeExample, small_cnn, two_peers


def one_network() -> list:
    return [small_cnn(1)]


def leader_and_two_peers() -> list:
    return [small_cnn(1), small_cnn(2), small_cnn(3)]


EXAMPLES = {
    "dml": SchemeExample(two_peers, {"temperature": 2.0}),
    "one": SchemeExample(one_network, {"split": "stage2", "branches": 2}),
    "ffl": SchemeExample(two_peers, {"tap": "stage2"}),
    "pcl": SchemeExample(one_network, {"split": "stage2", "branches": 2, "rampup": 1.0}),
    "okddip": SchemeExample(leader_and_two_peers, {"attention_dim": 4}),
    "kdcl": SchemeExample(two_peers, {"ensemble": "minlogit", "noise": 0.1}),
    "afd": SchemeExample(two_peers, {"tap": "stage2"}),
    "mcl": SchemeExample(two_peers, {"dim": 8}),
    "afi": SchemeExample(two_peers, {"tap": ["stage1", "stage2"]}),
}
