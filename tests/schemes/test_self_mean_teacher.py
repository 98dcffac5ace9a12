"""Mean teacher: hand-computed consistency, ramp-up and loss, gradients, hidden labels, the fair baseline, runs."""

from __future__ import annotations

import importlib
import math

import pytest
import torch
from torch import nn

import mentor
from mentor.batch import Batch
from mentor.cli import main
from mentor.data import ArrayDataset
from mentor.engine import FitResult, FitSettings, fit
from mentor.errors import MentorError
from mentor.pipelines.collaborate import PeersJob, alone_data, alone_settings, run_peers
from mentor.schemes import SCHEMES
from mentor.schemes.online.peers import Distortion, rampup_weight
from mentor.schemes.selflearning.mean_teacher import consistency_cost, labelled_indices
from tests.schemes.conftest import small_cnn, tiny_data

LN3 = math.log(3.0)


def test_consistency_cost_by_hand() -> None:
    # sample 1: p = [0.25, 0.75], p' = [0.75, 0.25]: squared differences 0.25, 0.25; sample 2 agrees: 0, 0
    student = torch.tensor([[0.0, LN3], [1.0, 2.0]])
    teacher = torch.tensor([[LN3, 0.0], [1.0, 2.0]])
    assert consistency_cost(student, teacher, "mse").item() == pytest.approx(0.125, abs=1e-6)
    # KL(p' || p) of sample 1: 0.75 ln 3 − 0.25 ln 3 = 0.5 ln 3; batch mean 0.25 ln 3; × 2(1 − 1/2)/2² = 0.25
    assert consistency_cost(student, teacher, "kl").item() == pytest.approx(0.0686633, abs=1e-6)


def test_rampup_value_by_hand() -> None:
    assert rampup_weight(1.0, 4, 2.0) == pytest.approx(math.exp(-1.25))  # exp(−5 (1 − 1/2)²) = 0.2865048
    assert rampup_weight(0.0, 4, 2.0) == pytest.approx(math.exp(-5.0))
    assert rampup_weight(3.0, 4, 2.0) == 1.0


def linear_scheme(**params: object):  # noqa: ANN201
    """A 2 -> 2 linear student (identity · ln 3) whose mean teacher is set to zero weights."""
    student = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        student.weight.copy_(torch.eye(2) * LN3)
    scheme = SCHEMES.create("mean-teacher", [student], labels=2, shift=0, noise=0.0, **params)
    with torch.no_grad():
        scheme.mean_teacher.model.weight.zero_()
    return scheme


def test_loss_by_hand_ce_on_labelled_samples_only_over_the_whole_batch() -> None:
    scheme = linear_scheme(consistency=4.0, rampup=2.0)
    batch = Batch(torch.eye(2), torch.tensor([0, -1]))  # the second sample is unlabelled
    output = scheme.loss(batch, 1.0, 4)
    # student p = [0.75, 0.25] and [0.25, 0.75], teacher p' = [0.5, 0.5]: J = 0.0625
    # CE: −ln 0.75 = 0.2876821 on the labelled sample, divided by B = 2
    ce, consistency = 0.2876821 / 2, math.exp(-1.25) * 4.0 * 0.0625
    assert output.parts["ce"].item() == pytest.approx(ce, abs=1e-6)
    assert output.parts["consistency"].item() == pytest.approx(consistency, abs=1e-6)  # 0.0716262
    assert output.total.item() == pytest.approx(0.2154672, abs=1e-6)
    assert output.terms["consistency"].item() == pytest.approx(4.0 * 0.0625, abs=1e-6)  # full weight, for the check


def test_gradients_reach_the_student_and_never_the_teacher() -> None:
    scheme = linear_scheme(consistency=4.0, rampup=0.0)
    scheme.loss(Batch(torch.eye(2), torch.tensor([-1, -1])), 1.0, 4).total.backward()  # consistency alone
    assert scheme.student.weight.grad is not None and scheme.student.weight.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in scheme.mean_teacher.parameters())
    optimized = {id(p) for group in scheme.optimized().values() for p in group}
    assert optimized == {id(scheme.student.weight)}


def test_the_teacher_follows_the_student_after_every_step() -> None:
    scheme = SCHEMES.create("mean-teacher", [small_cnn(1)], labels=10, decay=0.5)
    data = tiny_data()
    fit(scheme, data, None, FitSettings(epochs=1, batch_size=8, progress=False))
    steps = len(scheme.training_set(data)) // 8
    assert int(scheme.mean_teacher.updates) == steps
    student, teacher = scheme.student.head.weight, scheme.mean_teacher.model.head.weight
    assert not torch.equal(student, teacher) and teacher.requires_grad is False


def balanced(per_class: int = 10, classes: int = 3) -> ArrayDataset:
    targets = torch.arange(classes).repeat_interleave(per_class)
    return ArrayDataset(torch.arange(len(targets), dtype=torch.float32)[:, None], targets)


def test_labelled_samples_are_class_balanced_and_deterministic_per_seed() -> None:
    data = balanced()
    chosen = labelled_indices(data.targets, 6, seed=0)
    assert len(chosen) == 6 and len(set(chosen.tolist())) == 6
    assert torch.bincount(data.targets[chosen], minlength=3).tolist() == [2, 2, 2]
    assert torch.equal(chosen, labelled_indices(data.targets, 6, seed=0))
    assert any(not torch.equal(chosen, labelled_indices(data.targets, 6, seed=s)) for s in (1, 2, 3))


def test_the_training_set_hides_labels_and_the_baseline_sees_only_the_labelled_samples() -> None:
    data = balanced()
    scheme = SCHEMES.create("mean-teacher", [small_cnn(1)], labels=6, labelled_share=0.5)
    shown = scheme.training_set(data)
    # 24 unlabelled (target −1) + the 6 labelled repeated round(0.5·24 / (0.5·6)) = 4 times
    assert len(shown) == 48 and int((shown.targets == -1).sum()) == 24
    labelled = set(labelled_indices(data.targets, 6, seed=0).tolist())
    kept = shown.targets >= 0
    assert {int(x) for x in shown.inputs[kept, 0]} == labelled  # inputs are their own index here
    assert torch.equal(shown.targets[kept], data.targets[shown.inputs[kept, 0].long()])
    splits = mentor.data.Splits("toy", data, None, data, 3, (1,))
    alone = alone_data(scheme, splits).train
    assert len(alone) == 48 and {int(x) for x in alone.inputs[:, 0]} == labelled and bool((alone.targets >= 0).all())


def test_student_and_teacher_see_independent_noise_and_the_baseline_the_same_augmentation() -> None:
    scheme = SCHEMES.create("mean-teacher", [small_cnn(1)], labels=10, seed=3)
    assert scheme.augmentation() == Distortion(shift=2, flip=False, noise=0.15)
    assert alone_settings(scheme, FitSettings()).augment is scheme.distortion
    seen: list[torch.Tensor] = []
    hooks = [m.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
             for m in (scheme.student, scheme.mean_teacher.model)]
    scheme.loss(Batch(tiny_data().inputs[:8], tiny_data().targets[:8]), 0.0, 1)
    for hook in hooks:
        hook.remove()
    assert len(seen) == 2 and not torch.equal(seen[0], seen[1])
    plain = SCHEMES.create("mean-teacher", [small_cnn(1)], labels=10, shift=0, noise=0.0)
    assert plain.augmentation() is None


def test_without_labels_the_training_set_marks_its_unlabelled_samples() -> None:
    data = balanced()
    marked = ArrayDataset(data.inputs, data.targets.clone())
    marked.targets[6:] = -1  # the first 6 keep their label: a PATE student's answered queries, say
    scheme = SCHEMES.create("mean-teacher", [small_cnn(1)], labelled_share=0.5)
    shown = scheme.training_set(marked)
    # the 24 unlabelled once + the 6 labelled repeated round(0.5·24 / (0.5·6)) = 4 times, labels unchanged
    assert len(shown) == 48 and int((shown.targets == -1).sum()) == 24
    kept = shown.targets >= 0
    assert {int(x) for x in shown.inputs[kept, 0]} == set(range(6))
    assert torch.equal(shown.targets[kept], data.targets[shown.inputs[kept, 0].long()])
    alone = scheme.alone_training_set(marked)
    assert len(alone) == 48 and {int(x) for x in alone.inputs[:, 0]} == set(range(6))


@pytest.mark.parametrize("unlabelled", [0, 30])
def test_without_labels_a_training_set_without_both_kinds_is_refused(unlabelled: int) -> None:
    data = balanced()
    marked = ArrayDataset(data.inputs, data.targets.clone())
    marked.targets[:unlabelled] = -1
    scheme = SCHEMES.create("mean-teacher", [small_cnn(1)])
    with pytest.raises(MentorError, match=rf"without its 'labels' parameter .*got {unlabelled} unlabelled of 30"):
        scheme.training_set(marked)


@pytest.mark.parametrize(("labels", "message"), [(33, "got 33"), (4, "number of classes")])
def test_a_label_count_outside_classes_to_samples_is_refused(labels: int, message: str) -> None:
    scheme = SCHEMES.create("mean-teacher", [small_cnn(1)], labels=labels)
    with pytest.raises(MentorError, match=rf"'labels' parameter of mean-teacher .*{message}"):
        scheme.training_set(tiny_data(32))  # 32 samples of 5 classes


@pytest.mark.parametrize(("params", "key"), [
    ({"labels": 0}, "labels"), ({"labels": 10, "decay": 1.0}, "decay"),
    ({"labels": 10, "decay": -0.5}, "decay"), ({"labels": 10, "distance": "l1"}, "distance"),
    ({"labels": 10, "labelled_share": 1.0}, "labelled_share"),
])
def test_bad_parameters_name_the_parameter(params: dict, key: str) -> None:
    with pytest.raises(MentorError, match=f"'{key}' parameter of mean-teacher"):
        SCHEMES.create("mean-teacher", [small_cnn(1)], **params)


def test_python_api_end_to_end_with_the_labelled_only_baseline() -> None:
    data = mentor.data.load("digits", validation=0.2, seed=0, limit=200)
    torch.manual_seed(0)
    student = mentor.models.CNN((1, 8, 8), 10, channels=(4, 8))
    result = mentor.collaborate("mean-teacher", [student], data, params={"labels": 40, "consistency": 10.0},
                                baseline=True, epochs=2, batch_size=32, progress=False)
    assert list(result.models) == ["teacher", "student", "peer0 alone"]
    for accuracy in result.accuracies().values():
        assert 0.0 <= float(accuracy) <= 1.0
    with pytest.raises(MentorError, match="'labels' parameter of mean-teacher"):  # before anything trains
        mentor.collaborate("mean-teacher", [student], data, params={"labels": 5_000}, epochs=1, progress=False)


def test_the_builtin_recipe_runs(tmp_path, capsys: pytest.CaptureFixture) -> None:  # noqa: ANN001
    tiny = ["--set", "seeds=[0]", "--set", "data.limit=300", "--set", "train.epochs=2", "--quiet"]
    assert main(["run", "mean-teacher", "--out", str(tmp_path / "run"), *tiny]) == 0
    printed = capsys.readouterr().out
    assert all(role in printed for role in ("teacher", "student", "peer0 alone"))



def test_run_peers_hands_the_baseline_only_the_labelled_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    collaborate = importlib.import_module("mentor.pipelines.collaborate")  # the module, not the function
    seen: list[ArrayDataset] = []

    def fit_plan(model: nn.Module, data: mentor.data.Splits, settings: FitSettings, **_: object) -> list[FitResult]:
        seen.append(data.train)
        return [FitResult(history=[], best_epoch=0, best={})]

    monkeypatch.setattr(collaborate, "fit_plan", fit_plan)
    data = mentor.data.load("digits", validation=0.2, seed=0, limit=100)
    job = PeersJob(name="mt", scheme="mean-teacher", seeds=[0], load_data=lambda seed: data,
                   peers=[lambda: mentor.models.CNN((1, 8, 8), 10, channels=(4, 8))],
                   build=lambda models: SCHEMES.create("mean-teacher", models, labels=20),
                   settings=FitSettings(epochs=1, batch_size=16, progress=False), latency_batch=1)
    run_peers(job, None, echo=lambda line: None)
    chosen = set(labelled_indices(data.train.targets, 20, seed=0).tolist())
    rows = {tuple(data.train.inputs[i].flatten().tolist()) for i in chosen}
    assert len(seen) == 1 and {tuple(x.flatten().tolist()) for x in seen[0].inputs} <= rows
