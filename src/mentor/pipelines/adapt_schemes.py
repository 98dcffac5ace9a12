"""The training steps of knowledge adaptation (survey §2.3, :mod:`mentor.pipelines.adapt`): a labeled source
domain, an unlabeled target domain, and a student that must do well on the target.

Every scheme trains on the target's training inputs (their labels hidden: target −1), as the loop's batches;
schemes that also learn from the source draw a source batch of the same size ``B`` from the labeled source split
they hold (a seeded draw with replacement). Shapes: inputs ``(B, C, H, W)``, logits and probabilities ``(B, K)``.

* :class:`TeacherStudent` — Li, Seltzer, Wang, Zhao & Gong (2017), "Large-scale domain adaptation via
  teacher-student learning", Interspeech, arXiv:1708.05466, eq. (3): the student minimizes the KL divergence from
  the teacher's posteriors, here on the same target sample (unpaired: MNIST and digits share no samples)::

      L = (1/B) Σ_b KL(softmax(T(x_b)) || softmax(S(x_b)))

  The paper pairs a source view for the teacher with a target view for the student (clean/noisy speech); with
  unpaired data both see ``x_b``. Paired data is not supported: no registered dataset provides pairs.
  With a curriculum (:mod:`mentor.pipelines.adapt_curriculum`) the batch is drawn from the task its chooser picks.
* :class:`SelfEnsembling` — French, Mackiewicz & Fisher (2018), "Self-ensembling for visual domain adaptation",
  ICLR, arXiv:1706.05208, the domain-adaptation form of the mean teacher (Tarvainen & Valpola 2017)::

      p = softmax S(η(x^t)), p' = softmax S'(η'(x^t)),   m_b = [max_k p'_bk ≥ θ]
      L = CE(S(η(x^s)), y^s) + w · (1/B) Σ_b m_b Σ_k (p_bk − p'_bk)² + c · mean(m) · Σ_k BCE(mean_b p_bk, 1/K)

  S' is the EMA of S (:class:`mentor.teachers.EMATeacher`), η, η' independent augmentations (shift, noise).
* :class:`OutputAdversarial` — Tsai, Hung, Schulter, Sohn, Yang & Chandraker (2018), "Learning to adapt structured
  output space for semantic segmentation", CVPR, eq. (3)-(5), the segmentation map replaced by class scores::

      L_S = CE(S(x^s), y^s) + λ_adv · BCE(D(softmax S(x^t)), source)
      L_D = ½ BCE(D(softmax S(x^s)), source) + ½ BCE(D(softmax S(x^t)), target)     (source = 0, target = 1)

  D (:class:`Discriminator`) takes the student's softmax ``(B, K)`` to one logit ``(B,)``. L_D's inputs are
  detached, and D enters L_S with detached parameters, so each loss reaches only its own network; D steps with its
  own Adam (the paper's lr 1e-4, β = (0.9, 0.99)) after every student step. D's weights are checkpointed with the
  student's; its Adam moments are not, so a stage resumed in its middle restarts them.
* :class:`Mixture` — the teacher of Ruder, Ghaffari & Breslin (2017), "Knowledge adaptation: teaching to adapt",
  arXiv:1702.02052: source teachers T_m weighted by the similarity w_m of their domain to the target
  (:mod:`mentor.teachers.weighting.domain`), log Σ_m w_m softmax(T_m(x)); a :class:`TeacherStudent` distills it.

Defaults (the recipe's ``adapt`` keys): self-ensembling w = 3, θ = 0.968, c = 0.005 and α = 0.99 are French et
al.'s small-image settings; ``shift`` (2 pixels) and ``noise`` (std 0.1) are the translation and Gaussian noise
of their augmentation (its other transformations are not applied here). Tsai et al.'s λ_adv for output-space
adaptation is 0.001 over 250,000 iterations; runs of a few hundred steps here default to 0.1, the better of
{0.001, 0.1} on digits-28's labeled validation split (``mentor bench adapt``: 60.7 % against 59.3 %, two images
of 135: a weak preference). The discriminator's Adam (lr 1e-4, β = (0.9, 0.99)) is the paper's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from mentor.batch import Batch
from mentor.data import ArrayDataset
from mentor.errors import MentorError
from mentor.losses.objective import LossOutput
from mentor.pipelines.adapt_curriculum import OnlineCurriculum
from mentor.schemes.base import Scheme
from mentor.schemes.online.peers import Distortion
from mentor.teachers.ema import EMATeacher
from mentor.teachers.frozen import freeze

SOURCE, TARGET = 0.0, 1.0
"""The discriminator's domain labels (AdaptSegNet's ``source_label = 0``, ``target_label = 1``)."""


def logits_of(model: nn.Module, inputs: torch.Tensor, owner: str) -> torch.Tensor:
    """``model(inputs)``, which must be class scores ``(B, K)``."""
    logits = model(inputs)
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
        raise MentorError(f"{owner} needs a classifier returning logits (B, K); got {type(logits).__name__}")
    return logits


class DomainScheme(Scheme):
    """A student trained on target batches, with a labeled source split to draw source batches from."""

    def __init__(self, student: nn.Module, source: ArrayDataset | None, seed: int) -> None:
        super().__init__()
        self.student = student
        self.generator = torch.Generator().manual_seed(seed)
        if source is not None:
            self.register_buffer("source_inputs", source.inputs, persistent=False)
            self.register_buffer("source_targets", source.targets, persistent=False)

    def source_batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``size`` labeled source samples drawn with replacement: inputs ``(B, C, H, W)``, labels ``(B,)``."""
        drawn = torch.randint(len(self.source_targets), (size,), generator=self.generator)
        drawn = drawn.to(self.source_targets.device)
        return self.source_inputs[drawn], self.source_targets[drawn]

    def trained(self) -> dict[str, nn.Module]:
        return {"student": self.student}

    def predictors(self) -> dict[str, nn.Module]:
        return {"student": self.student}


class TeacherStudent(DomainScheme):
    """Li et al. 2017, unpaired: the student matches a frozen teacher's posteriors on target samples."""

    def __init__(self, student: nn.Module, teacher: nn.Module, seed: int,
                 curriculum: OnlineCurriculum | None = None, tasks: list[torch.Tensor] | None = None,
                 target: ArrayDataset | None = None, interval: int = 10, probe: int = 64) -> None:
        super().__init__(student, None, seed)
        self.teacher = freeze(teacher)
        self.curriculum, self.interval, self.probe = curriculum, interval, probe
        if curriculum is not None:
            if tasks is None or target is None:
                raise MentorError("a curriculum needs its tasks (index tensors) and the target training inputs")
            self.tasks = tasks
            self.register_buffer("target_inputs", target.inputs, persistent=False)
            self.steps = 0

    def trained(self) -> dict[str, nn.Module]:
        return {"student": self.student} | ({"curriculum": self.curriculum} if self.curriculum is not None else {})

    def task_score(self, task: int) -> float:
        """The student's agreement with the teacher's classes on the first ``probe`` samples of ``task``."""
        inputs = self.target_inputs[self.tasks[task][: self.probe].to(self.target_inputs.device)]
        was_training = self.student.training
        self.student.eval()
        with torch.no_grad():
            agree = (self.student(inputs).argmax(1) == self.teacher(inputs).argmax(1)).float().mean()
        self.student.train(was_training)
        return float(agree)

    def curriculum_inputs(self, size: int) -> torch.Tensor:
        """A batch from the task the curriculum chooses (a new choice every ``interval`` steps)."""
        chooser = self.curriculum
        if chooser is None:
            raise MentorError("curriculum_inputs needs a curriculum; give TeacherStudent curriculum=...")
        if not chooser.started:
            chooser.start([self.task_score(task) for task in range(len(self.tasks))])
        elif self.steps % self.interval == 0:
            chooser.observe(self.task_score(int(chooser.current)))
        if self.steps % self.interval == 0:
            chooser.choose()
        self.steps += 1
        members = self.tasks[int(chooser.current)]
        drawn = members[torch.randint(len(members), (size,), generator=self.generator)]
        return self.target_inputs[drawn.to(self.target_inputs.device)]

    def loss(self, batch: Batch, epoch: float, epochs: int) -> LossOutput:
        inputs = self.curriculum_inputs(len(batch)) if self.curriculum is not None else batch.inputs
        student = logits_of(self.student, inputs, "teacher-student adaptation")
        teacher = F.log_softmax(self.teacher(inputs), dim=1)
        kl = (teacher.exp() * (teacher - F.log_softmax(student, dim=1))).sum(dim=1).mean()
        return LossOutput(kl, {"kl": kl.detach()})


class SelfEnsembling(DomainScheme):
    """French et al. 2018: source CE plus confidence-masked consistency with an EMA teacher on target samples."""

    def __init__(self, student: nn.Module, source: ArrayDataset, seed: int, weight: float, threshold: float,
                 class_balance: float, decay: float, distortion: Distortion) -> None:
        super().__init__(student, source, seed)
        self.weight, self.threshold, self.class_balance, self.distortion = weight, threshold, class_balance, distortion
        self.mean_teacher = EMATeacher(student, decay)

    def trained(self) -> dict[str, nn.Module]:
        return {"student": self.student, "mean_teacher": self.mean_teacher}

    def predictors(self) -> dict[str, nn.Module]:
        return {"teacher": self.mean_teacher, "student": self.student}

    def loss(self, batch: Batch, epoch: float, epochs: int) -> LossOutput:
        source_inputs, labels = self.source_batch(len(batch))
        ce = F.cross_entropy(logits_of(self.student, self.distortion(source_inputs, self.generator),
                                       "self-ensembling"), labels)
        student = F.softmax(self.student(self.distortion(batch.inputs, self.generator)), dim=1)
        teacher = F.softmax(self.mean_teacher(self.distortion(batch.inputs, self.generator)), dim=1)
        consistency, balance = masked_consistency(student, teacher, self.threshold)
        parts = {"ce": ce, "consistency": self.weight * consistency, "class_balance": self.class_balance * balance}
        total = parts["ce"] + parts["consistency"] + parts["class_balance"]
        return LossOutput(total, {name: value.detach() for name, value in parts.items()})

    def after_step(self) -> None:
        self.mean_teacher.update(self.student)


def masked_consistency(student: torch.Tensor, teacher: torch.Tensor,
                       threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """French et al.'s two target terms from probabilities ``(B, K)`` (teacher's detached): the masked squared
    difference (1/B) Σ_b m_b Σ_k (p − p')², and the class-balance loss mean(m) · Σ_k BCE(mean_b p_k, 1/K)."""
    teacher = teacher.detach()
    mask = (teacher.max(dim=1).values >= threshold).to(student.dtype)
    consistency = (mask * (student - teacher).pow(2).sum(dim=1)).mean()
    average = student.mean(dim=0).clamp(1e-6, 1 - 1e-6)
    uniform = torch.full_like(average, 1.0 / student.shape[1])
    balance = mask.mean() * F.binary_cross_entropy(average, uniform, reduction="sum")
    return consistency, balance


class Discriminator(nn.Module):
    """Tsai et al.'s output-space discriminator for class scores: softmax ``(B, K)`` -> one domain logit ``(B,)``.

    The paper's fully convolutional D (4x4 convolutions of 64, 128, 256, 512 channels, leaky ReLU 0.2) reads a
    segmentation map; a vector of K scores has no spatial axes, so the same stack is fully connected, narrower
    (``hidden`` units, two hidden layers) for 10 classes.
    """

    def __init__(self, classes: int, hidden: int = 64) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(classes, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden),
                                    nn.LeakyReLU(0.2), nn.Linear(hidden, 1))

    def forward(self, probabilities: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.layers(probabilities).squeeze(1)


class OutputAdversarial(DomainScheme):
    """Tsai et al. 2018: source CE plus λ_adv times fooling an output-space discriminator on target samples."""

    def __init__(self, student: nn.Module, source: ArrayDataset, seed: int, classes: int, weight: float,
                 discriminator_lr: float) -> None:
        super().__init__(student, source, seed)
        self.weight, self.discriminator_lr = weight, discriminator_lr
        self.discriminator = Discriminator(classes)
        self.discriminator_optimizer: torch.optim.Optimizer | None = None

    def trained(self) -> dict[str, nn.Module]:
        return {"student": self.student, "discriminator": self.discriminator}

    def optimized(self) -> dict[str, list[nn.Parameter]]:
        return {"main": list(self.student.parameters())}  # D steps with its own optimizer (after_step)

    def loss(self, batch: Batch, epoch: float, epochs: int) -> LossOutput:
        source_inputs, labels = self.source_batch(len(batch))
        source = logits_of(self.student, source_inputs, "adversarial adaptation")
        target = F.softmax(self.student(batch.inputs), dim=1)
        ce = F.cross_entropy(source, labels)
        frozen = {name: value.detach() for name, value in self.discriminator.named_parameters()}
        fooled = functional_call(self.discriminator, frozen, (target,))
        adversarial = F.binary_cross_entropy_with_logits(fooled, torch.full_like(fooled, SOURCE))
        on_source = self.discriminator(F.softmax(source, dim=1).detach())
        on_target = self.discriminator(target.detach())
        discriminator = 0.5 * (F.binary_cross_entropy_with_logits(on_source, torch.full_like(on_source, SOURCE))
                               + F.binary_cross_entropy_with_logits(on_target, torch.full_like(on_target, TARGET)))
        total = ce + self.weight * adversarial + discriminator
        return LossOutput(total, {"ce": ce.detach(), "adversarial": (self.weight * adversarial).detach(),
                                  "discriminator": discriminator.detach()})

    def after_step(self) -> None:
        if self.discriminator_optimizer is None:
            self.discriminator_optimizer = torch.optim.Adam(self.discriminator.parameters(),
                                                            lr=self.discriminator_lr, betas=(0.9, 0.99))
        self.discriminator_optimizer.step()
        self.discriminator_optimizer.zero_grad(set_to_none=True)


class Mixture(nn.Module):
    """Teachers weighted by domain similarity: log Σ_m w_m softmax(T_m(x)), ``(B, K)`` (weights ``(M,)``)."""

    def __init__(self, members: list[nn.Module], weights: torch.Tensor) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.register_buffer("weights", weights.float())

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        probabilities = sum(w * torch.softmax(m(inputs), dim=1) for w, m in zip(self.weights, self.members,
                                                                                 strict=True))
        return torch.log(probabilities.clamp_min(1e-12))  # type: ignore[union-attr]
