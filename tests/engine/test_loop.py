"""The training loop: checkpoints, divergence guard, stages, model selection."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mentor.batch import Batch
from mentor.data import ArrayDataset, BatchIterator
from mentor.engine import FitSettings, OptimizerSettings, checkpoint, fit
from mentor.errors import MentorError
from mentor.knowledge import Stage, create
from mentor.losses import CE, Objective, Term
from mentor.losses.terms import Context
from mentor.models import CNN, MLP
from mentor.pipelines.distill import stage_epochs
from mentor.schemes import Offline


def data(size: int = 40, seed: int = 0) -> ArrayDataset:
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(size, 4, generator=generator)
    return ArrayDataset(inputs, (inputs[:, 0] > 0).long())


def test_fit_learns_writes_checkpoints_and_keeps_best(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = MLP((4,), 2, hidden=(8,))
    settings = FitSettings(epochs=5, batch_size=8, progress=False, optimizer=OptimizerSettings("adam", 0.05))
    result = fit(Offline(model, Objective(CE())), data(), data(20, 1), settings, checkpoints=tmp_path)
    assert len(result.history) == 5 and 1 <= result.best_epoch <= 5
    assert result.best["val/student/accuracy"] == max(r["val/student/accuracy"] for r in result.history)
    best = checkpoint.load(tmp_path / "best.pt")
    assert best["epoch"] == result.best_epoch
    for key, value in model.state_dict().items():  # the model holds the best weights at the end
        assert torch.equal(best["models"]["student"][key], value)
    last = checkpoint.load(tmp_path / "last.pt")
    assert last["epoch"] == 5 and "main" in last["optimizers"]
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


class Exploding(Term):
    needs_teacher = False

    def __init__(self) -> None:
        super().__init__("exploding")

    def loss(self, context: Context) -> torch.Tensor:
        return context.student.logits.sum() * float("inf")


def test_divergence_names_the_term_and_keeps_last_good_checkpoint(tmp_path: Path) -> None:
    model = MLP((4,), 2, hidden=(8,))
    fit(Offline(model, Objective(CE())), data(), None, FitSettings(epochs=1, batch_size=8, progress=False),
        checkpoints=tmp_path)
    good = checkpoint.load(tmp_path / "last.pt")
    with pytest.raises(MentorError, match=r"loss diverged \(exploding is not finite\)"):
        fit(Offline(model, Objective(CE(), Exploding())), data(), None,
            FitSettings(epochs=1, batch_size=8, progress=False), checkpoints=tmp_path)
    assert checkpoint.load(tmp_path / "last.pt")["epoch"] == good["epoch"]


def test_corrupt_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(MentorError, match="cannot be read"):
        checkpoint.load(path)
    with pytest.raises(MentorError, match="does not exist"):
        checkpoint.load(tmp_path / "missing.pt")


def test_checkpoints_refuse_pickled_code(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"models": {}, "payload": Batch}, path)  # a class object needs unpickling of code
    with pytest.raises(MentorError, match="cannot be read"):
        checkpoint.load(path)


def test_stage_epochs_share_what_fixed_stages_leave() -> None:
    stages = [Stage("hint", Objective(CE()), 3), Stage("a", Objective(CE())), Stage("b", Objective(CE()))]
    assert stage_epochs(stages, 10) == [3, 4, 3]
    with pytest.raises(MentorError, match="raise train.epochs"):
        stage_epochs(stages, 4)


def test_empty_training_set_is_refused() -> None:
    empty = ArrayDataset(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))
    with pytest.raises(MentorError, match="training set is empty"):
        fit(Offline(MLP((4,), 2), Objective(CE())), empty, None, FitSettings(progress=False))


def test_damaged_newest_checkpoint_falls_back_to_the_previous_one(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    checkpoint.save({"epoch": 1}, path, rotate=True)
    checkpoint.save({"epoch": 2}, path, rotate=True)
    assert checkpoint.load_latest(path) == ({"epoch": 2}, path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # flip bits in the middle of the payload
    path.write_bytes(bytes(data))
    with pytest.raises(MentorError, match="corrupt|cannot be read"):
        checkpoint.load(path)
    state, source = checkpoint.load_latest(path)
    assert state == {"epoch": 1} and source.name == "last.prev.pt"
    path.write_bytes(b"")  # a truncated file
    assert checkpoint.load_latest(path)[0] == {"epoch": 1}


def test_resume_continues_from_last_checkpoint_bit_for_bit(tmp_path: Path) -> None:
    def trained(epochs: int, resume: bool) -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        model = MLP((4,), 2, hidden=(8,), dropout=0.2)
        settings = FitSettings(epochs=epochs, batch_size=8, progress=False, resume=resume,
                               optimizer=OptimizerSettings("sgd", 0.1))
        fit(Offline(model, Objective(CE())), data(), None, settings, checkpoints=tmp_path / "ckpt")
        return model.state_dict()

    whole = trained(4, False)
    (tmp_path / "ckpt" / "last.pt").unlink()
    (tmp_path / "ckpt" / "last.prev.pt").unlink()
    trained(2, False)  # an interrupted run: two of four epochs done (constant learning rate)
    resumed = trained(4, True)
    for key in whole:
        assert torch.equal(whole[key], resumed[key]), key


@pytest.mark.parametrize(("precision", "channels_last"), [("bf16", False), ("fp32", True), ("bf16", True)])
def test_bf16_autocast_and_channels_last_train_and_match_fp32_closely(precision: str, channels_last: bool) -> None:
    from mentor.models import CNN

    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(64, 1, 8, 8, generator=generator)
    images = ArrayDataset(inputs, torch.randint(0, 3, (64,), generator=generator))

    def trained(precision: str, channels_last: bool) -> tuple[float, torch.Tensor]:
        torch.manual_seed(0)
        model = CNN((1, 8, 8), 3, channels=(4, 8))
        settings = FitSettings(epochs=2, batch_size=16, progress=False, precision=precision,  # type: ignore[arg-type]
                               channels_last=channels_last)
        result = fit(Offline(model, Objective(CE())), images, None, settings)
        return result.history[-1]["train/loss"], model.head.weight.detach()

    reference_loss, reference = trained("fp32", False)
    loss, weights = trained(precision, channels_last)
    assert math.isfinite(loss) and abs(loss - reference_loss) < 0.05
    assert torch.allclose(weights, reference, atol=0.05)


def test_cuda_device_without_cuda_is_a_clear_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(MentorError, match="no CUDA device is available"):
        fit(Offline(MLP((4,), 2), Objective(CE())), data(), None, FitSettings(progress=False, device="cuda"))


@pytest.mark.parametrize("cache", [False, True])
def test_offline_kd_is_a_hand_written_kd_loop_on_the_same_batches(cache: bool) -> None:
    """Nothing in the loop changes the math: the same batches, loss, backward and Adam step as a loop written out."""
    generator = torch.Generator().manual_seed(0)
    data = ArrayDataset(torch.randn(80, 1, 8, 8, generator=generator), torch.randint(0, 3, (80,), generator=generator))
    torch.manual_seed(0)
    teacher, initial = CNN((1, 8, 8), 3, channels=(8, 16)).eval(), CNN((1, 8, 8), 3, channels=(4, 8))
    library = copy.deepcopy(initial)
    settings = FitSettings(epochs=2, batch_size=16, progress=False, seed=5, teacher_cache=cache, scale_probe=3,
                           optimizer=OptimizerSettings("adam", 1e-2))
    fit(Offline(library, create("kd", temperature=4.0, alpha=0.9), teacher), data, None, settings)

    by_hand = copy.deepcopy(initial).train()
    optimizer = torch.optim.Adam(by_hand.parameters(), lr=1e-2)
    batches = BatchIterator(data, 16, shuffle=True, seed=5)
    for epoch in range(2):
        batches.set_epoch(epoch)
        for inputs, targets, _ in batches.indexed():
            with torch.no_grad():
                soft_targets = F.log_softmax(teacher(inputs) / 4.0, dim=1)
            logits = by_hand(inputs)
            kl = F.kl_div(F.log_softmax(logits / 4.0, dim=1), soft_targets, reduction="batchmean", log_target=True)
            loss = 0.1 * F.cross_entropy(logits, targets) + 0.9 * 16.0 * kl
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    for (name, expected), got in zip(by_hand.state_dict().items(), library.state_dict().values(), strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-7, msg=name)
