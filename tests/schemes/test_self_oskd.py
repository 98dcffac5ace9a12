"""Online Subclass KD (Tzelepi et al. 2021): k-means subclasses and the subclass-similarity loss."""

from __future__ import annotations

import math

import pytest
import torch

from mentor.batch import Batch
from mentor.errors import MentorError
from mentor.schemes import SCHEMES
from mentor.schemes.selflearning.oskd import kmeans, subclass_similarity_loss
from tests.schemes.conftest import small_cnn, tiny_data


def test_kmeans_finds_well_separated_groups() -> None:
    generator = torch.Generator().manual_seed(0)
    near, far = torch.randn(10, 2, generator=generator) * 0.1, torch.randn(10, 2, generator=generator) * 0.1 + 5
    points = torch.cat([far, near])
    centroids = kmeans(points, 2, torch.Generator().manual_seed(1))
    found = sorted(centroids.tolist())
    assert found[0] == pytest.approx(points[10:].mean(0).tolist(), abs=1e-5)
    assert found[1] == pytest.approx(points[:10].mean(0).tolist(), abs=1e-5)


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def softmax_row(values: list[float]) -> list[float]:
    exps = [math.exp(v) for v in values]
    return [e / sum(exps) for e in exps]


def test_subclass_loss_matches_a_hand_computed_kl_between_similarity_distributions() -> None:
    features = torch.tensor([[1.0, 0.2], [0.1, 1.0], [-1.0, 0.5], [0.3, -0.4]])
    targets = torch.tensor([0, 0, 1, 2])  # class 2 has no subclass: skipped
    centroids = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [-0.5, -1.0]])
    classes = torch.tensor([0, 0, 1, 1])
    tau = 0.5
    total, counted = 0.0, 0
    for feature, label in zip(features.tolist(), targets.tolist(), strict=True):
        own = [j for j in range(4) if classes[j] == label]
        if not own:
            continue
        similarities = [cosine(feature, c) for c in centroids.tolist()]
        subclass = max(own, key=lambda j: similarities[j])
        soft = softmax_row([cosine(centroids[subclass].tolist(), c) / tau for c in centroids.tolist()])
        sample = softmax_row([s / tau for s in similarities])
        total += sum(t * math.log(t / q) for t, q in zip(soft, sample, strict=True))
        counted += 1
    value = subclass_similarity_loss(features, targets, centroids, classes, tau)
    assert value.item() == pytest.approx(total / counted, rel=1e-5)


def test_subclass_loss_pulls_a_sample_toward_its_own_centroid() -> None:
    centroids, classes = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1])
    feature = torch.tensor([[0.6, 0.8]], requires_grad=True)
    subclass_similarity_loss(feature, torch.tensor([0]), centroids, classes, 0.5).backward()
    step = feature.detach() - 0.1 * feature.grad
    assert step[0, 0] / step.norm() > 0.6  # cosine with its own centroid (1, 0) grew


def batches(data, size: int = 8):  # noqa: ANN001, ANN201
    for start in range(0, len(data), size):
        index = torch.arange(start, min(start + size, len(data)))
        yield Batch(data.inputs[index], data.targets[index], index, len(data))


def test_scheme_clusters_each_epoch_from_the_stored_features() -> None:
    scheme = SCHEMES.get("oskd")([small_cnn(1)], subclasses=2, weight=0.5, temperature=0.3)
    data = tiny_data()
    scheme.setup(next(batches(data)))
    assert set(scheme.trained()) == {"student", "memory"}
    scheme.train()
    for batch in batches(data):
        output = scheme.loss(batch, 0.0, 2)
        assert float(output.parts["subclass"]) == 0.0
    assert bool(scheme.memory.seen.all())
    first = next(batches(data))
    output = scheme.loss(first, 1.0, 2)
    centroids, classes = scheme.centroids
    labels = data.targets.unique()
    assert centroids.shape[0] == 2 * len(labels) and sorted(classes.unique().tolist()) == labels.tolist()
    logits = scheme.student(first.inputs)
    features = scheme.student.flatten(scheme.student.pool(scheme.student.stage2(scheme.student.stage1(first.inputs))))
    expected_subclass = 0.5 * subclass_similarity_loss(features, first.targets, centroids, classes, 0.3)
    expected = torch.nn.functional.cross_entropy(logits, first.targets) + expected_subclass
    assert output.total.item() == pytest.approx(expected.item(), rel=1e-5)
    output.total.backward()
    assert all(p.grad is not None for p in scheme.student.parameters())
    again = SCHEMES.get("oskd")([small_cnn(1)], subclasses=2)
    again.setup(first)
    again.memory.load_state_dict(scheme.memory.state_dict())
    again.cluster(1)
    previous = scheme.memory.features.clone()
    scheme.cluster(1)
    assert torch.equal(scheme.memory.features, previous) and torch.equal(again.centroids[0], scheme.centroids[0])


def test_missing_indices_raise() -> None:
    scheme = SCHEMES.get("oskd")([small_cnn(1)])
    data = tiny_data()
    with pytest.raises(MentorError, match="indices"):
        scheme.loss(Batch(data.inputs[:4], data.targets[:4], None, len(data)), 0.0, 1)


@pytest.mark.parametrize(
    "params", [{"subclasses": 0}, {"temperature": 0.0}, {"weight": -1.0}, {"seed": 1.5}, {"representation": ""}]
)
def test_bad_parameters_raise(params: dict) -> None:
    with pytest.raises(MentorError, match=next(iter(params))):
        SCHEMES.create("oskd", [small_cnn(1)], **params)
