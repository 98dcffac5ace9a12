"""DistillationCallback: a Mentor objective added to a LightningModule's loss."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

pl = pytest.importorskip("pytorch_lightning")

import mentor  # noqa: E402
from mentor.errors import MentorError  # noqa: E402
from mentor.integrations.lightning import DistillationCallback  # noqa: E402


class Classifier(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        inputs, targets = batch
        loss = F.cross_entropy(self.net(inputs), targets)
        self.log("train_loss", loss, batch_size=len(targets))
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def teacher_model() -> nn.Sequential:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))


def loader() -> torch.utils.data.DataLoader:
    generator = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(16, 8, generator=generator),
                                          torch.randint(0, 3, (16,), generator=generator))
    return torch.utils.data.DataLoader(data, batch_size=8)


def trainer(*callbacks: pl.Callback) -> pl.Trainer:
    return pl.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, callbacks=list(callbacks))


class Recorder(pl.Callback):
    """The step's loss, and the loss expected by hand on the parameters the step starts from.

    ``ce`` and ``kl`` weigh the cross-entropy with the labels and tau^2 KL(p_T^tau || p_S^tau) at tau = 2.
    """

    def __init__(self, teacher: nn.Module, ce: float, kl: float) -> None:
        self.teacher, self.weights, self.pairs = teacher, (ce, kl), []
        self.expected: torch.Tensor | None = None

    def on_train_batch_start(self, trainer: pl.Trainer, module: pl.LightningModule, batch: Any, index: int) -> None:
        inputs, targets = batch
        with torch.no_grad():
            s, t = module.net(inputs), self.teacher(inputs)
        # user's CE + tau^2 KL(p_T^tau || p_S^tau), tau = 2, KL summed over classes, mean over samples
        p_t = F.softmax(t / 2, dim=1)
        kl = (p_t * (p_t.log() - F.log_softmax(s / 2, dim=1))).sum(1).mean()
        self.expected = self.weights[0] * F.cross_entropy(s, targets) + self.weights[1] * 4 * kl

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, outputs: Any, batch: Any,
                           index: int) -> None:
        self.pairs.append((outputs["loss"].item(), self.expected.item()))


@pytest.mark.parametrize(("method", "params", "replace", "ce", "kl"), [
    (mentor.Objective(mentor.terms.KL(temperature=2.0)), None, False, 1.0, 1.0),  # the step's CE + the KL term
    ("kd", {"temperature": 2.0, "alpha": 0.75}, True, 0.25, 0.75),  # kd's own mix replaces the step's loss
])
def test_loss_is_the_step_loss_plus_the_objective(method: Any, params: Any, replace: bool, ce: float,
                                                  kl: float) -> None:
    module, teacher = Classifier(), teacher_model()
    recorder = Recorder(teacher, ce, kl)
    callback = DistillationCallback(teacher, method, params, student="net", replace_loss=replace)
    trainer(callback, recorder).fit(module, loader())
    assert len(recorder.pairs) == 2
    for loss, expected in recorder.pairs:
        assert loss == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("sample", [None, torch.randn(4, 8)])
def test_student_and_adapter_train_teacher_stays(sample: torch.Tensor | None) -> None:
    module, teacher = Classifier(), teacher_model()
    # taps are module paths inside the student network (module.net) and the teacher
    objective = mentor.Objective(mentor.terms.KL(), mentor.terms.Distance(student="0", teacher="0", adapter="linear"))
    callback = DistillationCallback(teacher, objective, student="net", sample=sample)
    teacher_before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student_before = {k: v.clone() for k, v in module.state_dict().items()}
    class AfterFirstStep(pl.Callback):
        def on_train_batch_end(self, *args: Any) -> None:
            if args[-1] == 0:
                self.adapter = [p.detach().clone() for p in objective.parameters()]

    first = AfterFirstStep()
    run = trainer(callback, first)
    run.fit(module, loader())
    adapter = list(objective.parameters())
    assert all(not torch.equal(before, after) for before, after in zip(first.adapter, adapter, strict=True))
    assert adapter and {id(p) for p in adapter} <= {id(p) for g in run.optimizers[0].param_groups for p in g["params"]}
    assert all(not torch.equal(student_before[k], v) for k, v in module.state_dict().items())
    assert all(torch.equal(teacher_before[k], v) for k, v in teacher.state_dict().items())
    assert "training_step" not in module.__dict__  # the module is given back as it was
    assert all(p.requires_grad for p in teacher.parameters())


def test_a_student_never_called_is_named() -> None:
    callback = DistillationCallback(teacher_model(), "kd")  # "": the module's forward, which training_step skips
    module = Classifier()
    with pytest.raises(MentorError, match="was not called in training_step"):
        trainer(callback).fit(module, loader())
    assert "training_step" not in module.__dict__


def test_unknown_student_path_is_named() -> None:
    with pytest.raises(MentorError, match="unknown module path 'nett'"):
        trainer(DistillationCallback(teacher_model(), "kd", student="nett")).fit(Classifier(), loader())


def test_resuming_restores_the_adapter(tmp_path) -> None:  # noqa: ANN001 - pytest's tmp_path
    def hint() -> mentor.Objective:
        return mentor.Objective(mentor.terms.Distance(student="0", teacher="0", adapter="linear"))

    sample, teacher = torch.randn(4, 8), teacher_model()
    first = DistillationCallback(teacher, hint(), student="net", sample=sample)
    run = trainer(first)
    run.fit(Classifier(), loader())
    run.save_checkpoint(tmp_path / "last.ckpt")
    saved = [p.detach().clone() for p in first.objective.parameters()]

    class AtStart(pl.Callback):
        def on_train_start(self, *args: Any) -> None:
            self.adapter = [p.detach().clone() for p in resumed.objective.parameters()]

    resumed, start = DistillationCallback(teacher, hint(), student="net", sample=sample), AtStart()
    pl.Trainer(max_steps=3, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False, callbacks=[resumed, start]).fit(Classifier(), loader(),
                                                                           ckpt_path=tmp_path / "last.ckpt")
    assert all(torch.equal(a, b) for a, b in zip(saved, start.adapter, strict=True))
    with pytest.raises(MentorError, match="'sample' parameter"):
        pl.Trainer(max_steps=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                   enable_progress_bar=False, callbacks=[DistillationCallback(teacher, hint(), student="net")]
                   ).fit(Classifier(), loader(), ckpt_path=tmp_path / "last.ckpt")
