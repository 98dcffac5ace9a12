"""KDCL: the MinLogit and average soft targets, the loss reference, and the students' distorted views."""

from __future__ import annotations

import pytest
import torch

from mentor.batch import Batch
from mentor.errors import MentorError
from mentor.schemes import SCHEMES
from mentor.schemes.online.peers import Distortion
from tests.schemes.conftest import small_cnn, two_peers
from tests.schemes.references import reference_ce, reference_kl, sample_batch


def batch(size: int = 4) -> Batch:
    return sample_batch(17, size)


def reference_min_logit(logits: list[torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
    out = torch.zeros_like(logits[0])
    for i, y in enumerate(targets):
        for c in range(out.shape[1]):
            out[i, c] = min(float(z[i, c] - z[i, y]) for z in (t.detach() for t in logits))
    return out


def three_students() -> list[torch.nn.Module]:
    return [small_cnn(1), small_cnn(2, (6, 12)), small_cnn(3, (2, 4))]


@pytest.mark.parametrize("ensemble", ["minlogit", "average"])
def test_loss_matches_the_papers_formula(ensemble: str) -> None:
    students, data, tau = three_students(), batch(), 2.0
    scheme = SCHEMES.get("kdcl")(students, ensemble=ensemble, temperature=tau, weight=0.5, shift=0, flip=False)
    scheme.train()
    output = scheme.loss(data, 0.0, 1)
    logits = [student(data.inputs) for student in students]
    target = reference_min_logit(logits, data.targets) if ensemble == "minlogit" else sum(logits) / 3
    expected = torch.zeros(())
    for k, z in enumerate(logits):
        assert torch.allclose(output.parts[f"peer{k}/kl"], 0.5 * reference_kl(z, target, tau), atol=1e-5)
        expected = expected + reference_ce(z, data.targets) + 0.5 * reference_kl(z, target, tau)
    assert torch.allclose(output.total, expected, atol=1e-5)


def test_min_logit_keeps_the_target_class_at_zero_and_each_other_class_at_its_lowest() -> None:
    from mentor.schemes.online.kdcl import min_logit

    first, second = torch.tensor([[2.0, 1.0, -1.0]]), torch.tensor([[0.0, 3.0, 1.0]])
    # relative to class 0: first -> [0, -1, -3], second -> [0, 3, 1]; element-wise minimum: [0, -1, -3]
    assert torch.equal(min_logit([first, second], torch.tensor([0])), torch.tensor([[0.0, -1.0, -3.0]]))


def test_every_student_gets_gradients_and_its_own_distorted_view() -> None:
    students, seen = three_students(), []
    scheme = SCHEMES.get("kdcl")(students, shift=2, flip=True, noise=0.1, seed=4)
    hooks = [s.register_forward_pre_hook(lambda module, args: seen.append(args[0])) for s in students]
    scheme.train()
    scheme.loss(batch(8), 0.0, 1).total.backward()
    for hook in hooks:
        hook.remove()
    for name, module in scheme.trained().items():
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters()), name
    assert len(seen) == 3 and not torch.equal(seen[0], seen[1]) and not torch.equal(seen[1], seen[2])


def shifted(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    out = torch.zeros_like(image)
    height, width = image.shape[-2:]
    for y in range(height):
        for x in range(width):
            if 0 <= y - dy < height and 0 <= x - dx < width:
                out[:, y, x] = image[:, y - dy, x - dx]
    return out


def test_distortion_flips_and_shifts_each_image_within_range_and_repeats_under_a_seed() -> None:
    images = torch.randn(6, 1, 5, 5)
    views = Distortion(1, True)(images, torch.Generator().manual_seed(0))
    assert torch.equal(views, Distortion(1, True)(images, torch.Generator().manual_seed(0)))
    for image, view in zip(images, views, strict=True):
        candidates = [shifted(source, dy, dx) for source in (image, image.flip(-1))
                      for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
        assert any(torch.equal(view, candidate) for candidate in candidates)
    noisy = Distortion(noise=0.5)(images, torch.Generator().manual_seed(0))
    assert 0.3 < float((noisy - images).std()) < 0.7
    flat = torch.randn(4, 3)
    assert torch.equal(Distortion(2, True)(flat, torch.Generator().manual_seed(0)), flat)


@pytest.mark.parametrize("models, params", [
    (lambda: [small_cnn(1)], {}),
    (two_peers, {"ensemble": "max"}),
    (two_peers, {"shift": -1}),
    (two_peers, {"noise": -0.1}),
    (two_peers, {"weight": -1.0}),
])
def test_bad_parameters_raise_mentor_errors(models, params) -> None:  # noqa: ANN001
    with pytest.raises(MentorError):
        SCHEMES.get("kdcl")(models(), **params)
