"""ECE, reliability bins, agreement and confusion against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from mentor.errors import MentorError
from mentor.report.calibration import agreement, confusion_matrix, expected_calibration_error, reliability


def loop_ece(probabilities: torch.Tensor, labels: torch.Tensor, bins: int) -> float:
    """ECE written out: bin m holds confidences in ((m-1)/M, m/M]."""
    members: list[list[tuple[float, bool]]] = [[] for _ in range(bins)]
    for row, label in zip(probabilities.tolist(), labels.tolist(), strict=True):
        confidence = max(row)
        predicted = row.index(confidence)
        index = min(max(math.ceil(confidence * bins) - 1, 0), bins - 1)
        members[index].append((confidence, predicted == label))
    total = 0.0
    for content in members:
        if content:
            accuracy = sum(correct for _, correct in content) / len(content)
            confidence = sum(c for c, _ in content) / len(content)
            total += len(content) / len(labels) * abs(accuracy - confidence)
    return total


def test_ece_of_a_hand_made_case() -> None:
    # confidences 0.9 (right), 0.9 (wrong), 0.62 (right), 0.35 (right); 15 bins put them in bins 13, 13, 9, 5:
    # ECE = 2/4·|0.5 − 0.9| + 1/4·|1 − 0.62| + 1/4·|1 − 0.35| = 0.2 + 0.095 + 0.1625 = 0.4575
    probabilities = torch.tensor([[0.9, 0.05, 0.05], [0.9, 0.1, 0.0], [0.2, 0.62, 0.18], [0.35, 0.33, 0.32]],
                                 dtype=torch.float64)
    labels = torch.tensor([0, 1, 1, 0])
    assert expected_calibration_error(probabilities, labels) == pytest.approx(0.4575, abs=1e-9)
    diagram = reliability(probabilities, labels)
    assert diagram.counts.tolist() == [0] * 5 + [1] + [0] * 3 + [1] + [0] * 3 + [2, 0]
    assert diagram.accuracy[13].item() == pytest.approx(0.5)
    assert diagram.confidence[13].item() == pytest.approx(0.9)
    assert diagram.confidence[9].item() == pytest.approx(0.62)
    assert math.isnan(diagram.accuracy[0].item())
    assert diagram.edges.tolist() == pytest.approx([m / 15 for m in range(16)])


def test_ece_matches_the_written_out_definition_on_random_outputs() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(200, 5, generator=generator)
    labels = torch.randint(0, 5, (200,), generator=generator)
    probabilities = logits.softmax(dim=1)
    for bins in (1, 10, 15):
        assert expected_calibration_error(probabilities, labels, bins) == pytest.approx(
            loop_ece(probabilities, labels, bins), abs=1e-9)


def test_confident_and_right_is_calibrated_and_lands_in_the_last_bin() -> None:
    probabilities = torch.eye(3)[[0, 1, 2, 1]]
    labels = torch.tensor([0, 1, 2, 1])
    diagram = reliability(probabilities, labels)
    assert diagram.ece == 0.0
    assert diagram.counts[-1].item() == 4


def test_one_bin_ece_is_the_gap_between_mean_confidence_and_accuracy() -> None:
    probabilities = torch.tensor([[0.8, 0.2], [0.7, 0.3], [0.4, 0.6]])
    labels = torch.tensor([0, 1, 1])
    # accuracy 2/3, mean confidence (0.8 + 0.7 + 0.6) / 3 = 0.7
    assert expected_calibration_error(probabilities, labels, bins=1) == pytest.approx(abs(2 / 3 - 0.7))


def test_agreement_counts_equal_argmax() -> None:
    first = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.5], [0.2, 0.1]])
    second = torch.tensor([[5.0, 1.0], [4.0, 3.0], [9.0, 0.5], [0.0, 0.1]])
    assert agreement(first, second) == pytest.approx(0.5)
    assert agreement(first, first) == 1.0


def test_confusion_matrix_rows_are_true_classes() -> None:
    logits = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    labels = torch.tensor([0, 1, 2, 2, 2])
    expected = torch.tensor([[1, 0, 0], [0, 1, 0], [1, 1, 1]])
    assert torch.equal(confusion_matrix(logits, labels), expected)


@pytest.mark.parametrize("call", [
    lambda: expected_calibration_error(torch.rand(4, 3), torch.zeros(5, dtype=torch.long)),
    lambda: expected_calibration_error(torch.rand(4, 3), torch.zeros(4, dtype=torch.long), bins=0),
    lambda: expected_calibration_error(torch.rand(0, 3), torch.zeros(0, dtype=torch.long)),
    lambda: agreement(torch.rand(4, 3), torch.rand(4, 2)),
    lambda: confusion_matrix(torch.rand(2, 3), torch.tensor([0, 3])),
])
def test_bad_inputs_raise_mentor_error(call) -> None:  # noqa: ANN001 - a lambda
    with pytest.raises(MentorError):
        call()
