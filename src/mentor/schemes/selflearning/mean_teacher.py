"""Mean teacher: a student taught by the temporal average of its own weights, on partly labelled data.

Tarvainen & Valpola (2017), "Mean teachers are better role models: Weight-averaged consistency targets
improve semi-supervised deep learning results", NeurIPS, arXiv:1703.01780.

Only ``labels`` training samples keep their label; the rest are unlabelled (target ``-1``). Without
``labels`` the training set itself says which samples are unlabelled: those whose target is already ``-1``
(a PATE student's unanswered queries, say); every other sample keeps its label. The teacher
θ' is the exponential moving average of the student's weights θ (:class:`mentor.teachers.EMATeacher`,
α_t = min(1 − 1/(t + 1), α), updated after every step, never stepped by the optimizer). Student and
teacher see the same batch under independent noise η, η' (the scheme's :meth:`augmentation`: a random
shift and Gaussian input noise), and the student is pulled toward the teacher on every sample:

    J = (1/B) Σ_b (1/K) Σ_k (p'_bk − p_bk)²          p = softmax f(x_b, θ, η), p' = softmax f(x_b, θ', η')
    L = (1/B) Σ_{b labelled} CE(y_b, f(x_b, θ, η)) + w(t) · c · J

Shapes: B samples per batch, K classes; logits and probabilities ``(B, K)``. p' is a target (no gradient).
w(t) = exp(−5(1 − t/T)²) is the paper's sigmoid ramp-up over T = ``rampup`` epochs (1 from T on).
``distance="kl"`` replaces J by the released code's scaled KL, (1/B) Σ_b KL(p'_b || p_b) · 2(1 − 1/K)/K²,
whose gradients match the MSE's near agreement, so the same ``consistency`` c fits both.

Defaults, from the released code (CuriousAI/mean-teacher) unless said otherwise:

* CE is summed over the labelled samples and divided by the whole batch B, J averaged over all samples,
  labelled ones included, and MSE between softmax outputs (the paper's choice over KL, its Fig. 4);
* ``consistency`` c = 100 (``max_consistency_cost``, SVHN and CIFAR-10), with J averaged over classes;
* ``rampup`` T: 40,000 of the 150,000 steps of the TensorFlow runs, the same 26.7 % of the run as
  :data:`~mentor.schemes.online.peers.REFERENCE_RAMPUP`, which is used when it is not given;
* ``labelled_share`` 0.25: the PyTorch CIFAR-10 runs put 62 labelled samples in every batch of 256. Here
  the loop draws uniform batches, so the labelled samples are repeated in the training set until they
  make up that share of it (at least once each): each batch holds about that share, not exactly;
  an epoch is one pass over the unlabelled samples, as in the released sampler;
* ``decay`` α = 0.99: the released TensorFlow code's α during its ramp-up (0.999 for the last 110,000 of
  its 150,000 steps). 0.999 spans 1/(1 − α) = 1,000 steps, made for such long runs; the runs here take a
  few hundred to a few thousand steps, and a span of a sizeable share of the run keeps the teacher on
  stale weights (digits, 100 labels, a small CNN, 10 epochs of 32 steps, c = 10, labelled share 0.5:
  α = 0.9926, a 4.2-epoch span as in the PyTorch CIFAR-10 runs, gave a teacher at 83.1 % beside its
  student's 87.3 %; α = 0.97 gave 88.4 % and 88.4 %);
* noise: a random shift by up to ``shift`` = 2 pixels (the released ``translate``, scale 2) and Gaussian
  noise of std ``noise`` = 0.15 on the standardized input (``input_noise``), no flips (SVHN's setting; a
  mirrored digit or letter is another symbol, or none). The paper's dropout noise is the model's own: the
  student runs in train mode, the teacher in eval mode (dropout off; see the EMA teacher's docstring).

The labelled samples are drawn class-balanced (each class keeps its share of the training split,
:func:`mentor.data.splits.stratified_split`) and depend on ``seed`` only. (``pseudo-labels`` hides labels
with a mask drawn at set-up from the dataset size alone: it cannot balance classes, so it is not shared.)

Predictors: the mean teacher first (the one selected on validation; the paper reports both, the teacher
usually ahead), then the student. The fair baseline (``compare.independent`` / ``baseline=True``) is the
same student trained alone on the labelled samples only (:meth:`alone_training_set`: repeated to the
length of the scheme's training set, so it takes as many steps per epoch), with the same shift and noise,
epochs, batch size and optimizer: it sees no label that the scheme does not.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from mentor.batch import Batch
from mentor.data import ArrayDataset
from mentor.data.batches import Transform
from mentor.data.splits import stratified_split
from mentor.errors import MentorError
from mentor.losses.objective import LossOutput
from mentor.schemes.base import Scheme
from mentor.schemes.online.peers import Distortion, check_count, online_scheme, ramped, rampup_weight
from mentor.teachers.ema import EMATeacher

UNLABELLED = -1
"""The target of a sample whose label is hidden."""
LABELS_STREAM = 0x3EA7
"""Added to ``seed`` for the draw of the labelled samples, so it differs from the validation split's."""


def consistency_cost(student_logits: torch.Tensor, teacher_logits: torch.Tensor, distance: str) -> torch.Tensor:
    """J of the module docstring for ``(B, K)`` logits: MSE of the softmax outputs, or the scaled KL.

    The teacher's logits are detached: it is a target, not a learner.
    """
    student = F.log_softmax(student_logits, dim=1)
    teacher = F.log_softmax(teacher_logits.detach(), dim=1)
    if distance == "mse":
        return (teacher.exp() - student.exp()).pow(2).mean()
    classes = student_logits.shape[1]
    kl = (teacher.exp() * (teacher - student)).sum(dim=1).mean()
    return kl * 2.0 * (1.0 - 1.0 / classes) / classes**2


def labelled_indices(targets: torch.Tensor, labels: int, seed: int) -> torch.Tensor:
    """Sorted indices ``(labels,)`` of the samples that keep their label: class-balanced, drawn from ``seed``."""
    size, classes = int(targets.shape[0]), int(torch.unique(targets).numel())
    if not classes <= labels <= size:
        raise MentorError(f"The 'labels' parameter of mean-teacher must be between the number of classes ({classes}) "
                          f"and the training samples ({size}); got {labels}; change labels or data.limit")
    if labels == size:
        return torch.arange(size)
    return stratified_split(targets.cpu(), labels / size, seed + LABELS_STREAM)[1]


def given_labels(targets: torch.Tensor) -> torch.Tensor:
    """Sorted indices of the samples whose target is a label (not −1), when the training set marks them itself."""
    labelled = torch.nonzero(targets != UNLABELLED).flatten()
    if not 0 < len(labelled) < len(targets):
        raise MentorError(f"mean-teacher without its 'labels' parameter reads the unlabelled samples from the training "
                          f"set (target -1), and needs some of each; got {len(targets) - len(labelled)} unlabelled "
                          f"of {len(targets)}; give labels=N to keep N labels, or mark the unlabelled samples -1")
    return labelled


class MeanTeacher(Scheme):
    """A student, its EMA teacher, and the labels of ``labels`` samples (see the module docstring)."""

    def __init__(self, student: nn.Module, labels: int | None, consistency: float, distance: str, decay: float,
                 rampup: float | None, labelled_share: float, distortion: Distortion, seed: int) -> None:
        super().__init__()
        self.student, self.labels, self.consistency, self.distance = student, labels, consistency, distance
        self.rampup, self.labelled_share, self.distortion = rampup, labelled_share, distortion
        self.mean_teacher = EMATeacher(student, decay)
        self.seed, self.generator = seed, torch.Generator().manual_seed(seed)

    def _split(self, train: ArrayDataset) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Indices of the labelled and unlabelled samples, and how often each labelled one is repeated."""
        labelled = (given_labels(train.targets) if self.labels is None else
                    labelled_indices(train.targets, self.labels, self.seed))
        hidden = torch.ones(len(train), dtype=torch.bool).index_fill_(0, labelled, False)
        unlabelled = torch.nonzero(hidden).flatten()
        share = self.labelled_share
        repeats = max(1, round(share * len(unlabelled) / ((1 - share) * len(labelled))))
        return labelled, unlabelled, repeats

    def training_set(self, train: ArrayDataset) -> ArrayDataset:
        """The unlabelled samples (target −1) and the labelled ones, each repeated to ``labelled_share``."""
        labelled, unlabelled, repeats = self._split(train)
        hidden = train.subset(unlabelled)
        shown = train.subset(labelled.repeat(repeats))
        targets = torch.full_like(hidden.targets, UNLABELLED)
        return ArrayDataset(torch.cat([hidden.inputs, shown.inputs]), torch.cat([targets, shown.targets]))

    def alone_training_set(self, train: ArrayDataset) -> ArrayDataset:
        """The labelled samples only, repeated to the length of :meth:`training_set` (as many steps per epoch)."""
        labelled, unlabelled, repeats = self._split(train)
        length = len(unlabelled) + repeats * len(labelled)
        return train.subset(labelled.repeat(math.ceil(length / len(labelled)))[:length])

    def trained(self) -> dict[str, nn.Module]:
        return {"student": self.student, "mean_teacher": self.mean_teacher}

    def predictors(self) -> dict[str, nn.Module]:
        return {"teacher": self.mean_teacher, "student": self.student}

    def loss(self, batch: Batch, epoch: float, epochs: int) -> LossOutput:
        student_view = self.distortion(batch.inputs, self.generator)
        teacher_view = self.distortion(batch.inputs, self.generator)  # η' drawn independently of η
        logits = self.student(student_view)
        if logits.ndim != 2:
            raise MentorError(f"mean-teacher needs a classifier with logits (B, K); the student gave "
                              f"{tuple(logits.shape)}")
        teacher_logits = self.mean_teacher(teacher_view)
        labelled = batch.targets >= 0
        per_sample = F.cross_entropy(logits, batch.targets.clamp(min=0), reduction="none")
        ce = (per_sample * labelled).sum() / len(batch)
        consistency = self.consistency * consistency_cost(logits, teacher_logits, self.distance)
        return ramped(rampup_weight(epoch, epochs, self.rampup), {"ce": ce}, {"consistency": consistency})

    def augmentation(self) -> Transform | None:
        return self.distortion if self.distortion.active else None

    def after_step(self) -> None:
        self.mean_teacher.update(self.student)


@online_scheme("mean-teacher", "Tarvainen & Valpola 2017, Mean teachers are better role models (NeurIPS): "
               "semi-supervised, an EMA teacher")
def mean_teacher(
    models: list[nn.Module],
    labels: Annotated[int, Field(ge=1)] | None = None,
    consistency: Annotated[float, Field(ge=0)] = 100.0,
    distance: Literal["mse", "kl"] = "mse",
    decay: Annotated[float, Field(ge=0, lt=1)] = 0.99,
    rampup: Annotated[float, Field(ge=0)] | None = None,
    labelled_share: Annotated[float, Field(gt=0, lt=1)] = 0.25,
    shift: Annotated[int, Field(ge=0)] = 2,
    noise: Annotated[float, Field(ge=0)] = 0.15,
    seed: int = 0,
) -> MeanTeacher:
    """``models`` = [the student]; ``labels``: how many training samples keep their label (the rest are
    unlabelled); without it, the training set's samples with target −1 are the unlabelled ones."""
    check_count(models, "mean-teacher", 1, 1)
    return MeanTeacher(models[0], labels, consistency, distance, decay, rampup, labelled_share,
                       Distortion(shift=shift, noise=noise), seed)
