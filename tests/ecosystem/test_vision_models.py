"""Real timm and torchvision models as Mentor teachers and students (small configurations, no weights)."""

from __future__ import annotations

import pytest
import torch

import mentor
from mentor.errors import MentorError
from mentor.models import create
from mentor.taps import run_with_taps


def images(size: int = 24, classes: int = 3) -> mentor.data.Splits:
    """``size`` random 3x32x32 images per split whose class shifts their mean."""
    generator = torch.Generator().manual_seed(0)

    def part(count: int) -> mentor.data.ArrayDataset:
        targets = torch.arange(count) % classes
        return mentor.data.ArrayDataset(torch.randn(count, 3, 32, 32, generator=generator) + targets.view(-1, 1, 1, 1),
                                        targets)

    return mentor.data.Splits("images", part(size), part(size // 2), part(size // 2), classes, (3, 32, 32))


def test_a_torchvision_resnet_is_built_for_the_runs_classes_and_tapped_by_path() -> None:
    pytest.importorskip("torchvision")
    model = create("torchvision:resnet18", num_classes=3, input_shape=(3, 32, 32)).eval()
    logits, features = run_with_taps(model, torch.randn(2, 3, 32, 32), ["layer2", "avgpool"])
    assert logits.shape == (2, 3)
    assert features["layer2"].shape == (2, 128, 4, 4) and features["avgpool"].shape == (2, 512, 1, 1)
    with pytest.raises(MentorError, match="layer5"):
        run_with_taps(model, torch.randn(1, 3, 32, 32), ["layer5"], role="teacher")


def test_torchvision_weights_are_refused_rather_than_downloaded() -> None:
    pytest.importorskip("torchvision")
    with pytest.raises(MentorError, match="weights would download"):
        create("torchvision:resnet18", num_classes=3, input_shape=(3, 32, 32), weights="DEFAULT")


def test_a_timm_teacher_distils_into_a_torchvision_student_with_a_feature_term() -> None:
    pytest.importorskip("timm")
    pytest.importorskip("torchvision")
    data = images()
    teacher = create("timm:resnet10t", num_classes=3, input_shape=(3, 32, 32))
    student = create("torchvision:mobilenet_v3_small", num_classes=3, input_shape=(3, 32, 32))
    objective = mentor.Objective(mentor.terms.CE(), mentor.terms.KL(temperature=4.0),
                                 mentor.terms.Distance(student="features.12", teacher="layer4", adapter="conv1x1"))
    before = [p.detach().clone() for p in teacher.parameters()]
    result = mentor.distill(teacher, student, data, objective, epochs=1, batch_size=12, progress=False,
                            latency_batch=4)
    assert {"teacher", "student distilled"} <= set(result.models)
    assert all(torch.equal(a, b) for a, b in zip(before, teacher.parameters(), strict=True))


def test_timm_in_channels_follow_the_data() -> None:
    pytest.importorskip("timm")
    model = create("timm:resnet10t", num_classes=4, input_shape=(1, 28, 28)).eval()
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 4)
    with pytest.raises(MentorError, match="pretrained weights would download"):
        create("timm:resnet10t", num_classes=4, input_shape=(1, 28, 28), pretrained=True)
