"""Factor transfer (FT): a paraphraser extracts teacher factors, a translator maps the student onto them.

Kim, Park & Kwak (2018), "Paraphrasing Complex Network: Network Compression via Factor Transfer",
NeurIPS, arXiv:1802.04977. The loss's scale follows the authors' released code
(Jangho-Kim/Factor-Transfer-pytorch, ``train_student.py``), for which β = 500 was tuned.

Stage ``paraphraser``: a convolutional autoencoder P (3 convolutions encode the teacher feature
x ``(B, m, H, W)`` into the factor F_T ``(B, k·m, H, W)``, 3 transposed convolutions decode it; k is the
paraphrase rate) is trained alone on the teacher feature; the student's weights get no gradient
(the scheme still runs its forward pass, so only its BatchNorm running statistics follow the data):

    L_rec = ‖x − P(x)‖²       (averaged over elements)

Stage ``train``: P is frozen; a translator (3 convolutions) maps the student feature ``(B, m_S, H', W')``
to the student factor F_S ``(B, k·m, H', W')``; with F̂ = vec(F)/‖vec(F)‖₂ ``(B, D)``, D = k·m·H·W,

    L = CE(y, z_S) + β · 1/(B·D) Σ_b Σ_d |F̂_T,bd − F̂_S,bd|^p          (p = 1)

The paper writes the per-sample norm ‖F̂_T − F̂_S‖_p; the released code takes the element mean
(``nn.L1Loss`` on the normalized factors), which is D times smaller per sample, and β = 500 is set for
that mean. Factors of different spatial sizes are adaptive-average-pooled to the smaller one. The two
stages share one paraphraser, built once by whichever term is bound first.

Defaults are the released code's: k = 0.5, β = 500, p = 1, the last group's output tapped on both sides,
5 paraphraser epochs. The code differs from this file in ways that leave the factor loss's scale alone
(the factors are normalized): its layers have no BatchNorm (commented out there), its decoder ends with a
leaky ReLU, and its paraphraser is trained with an L1 reconstruction loss; here each layer is the
paper's convolution, BatchNorm and leaky ReLU (0.1), the decoder ends linear, and L_rec is the squared
error.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from mentor.batch import Outputs
from mentor.errors import MentorError
from mentor.knowledge.at import normalized_distance
from mentor.knowledge.base import Stage, register
from mentor.losses import CE, Context, Objective, Term


def _block(in_channels: int, out_channels: int, transposed: bool = False) -> nn.Sequential:
    """3×3 (transposed) convolution, stride 1, then BatchNorm and leaky ReLU: the paper's layer."""
    conv = nn.ConvTranspose2d if transposed else nn.Conv2d
    return nn.Sequential(conv(in_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels), nn.LeakyReLU(0.1))


def _feature_map(tensor: torch.Tensor, role: str, path: str) -> torch.Tensor:
    """``tensor`` if it is a feature map ``(B, C, H, W)``; a :class:`MentorError` otherwise."""
    if tensor.ndim != 4:
        shape = tuple(tensor.shape)
        raise MentorError(f"ft: {role} layer {path!r} gives shape {shape}; tap a feature map (B, C, H, W)")
    return tensor


class Paraphraser(nn.Module):
    """Autoencoder on the teacher feature; :attr:`encoder` gives the teacher factor. Built by :meth:`build`."""

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = rate
        self.channels: int | None = None
        self.encoder: nn.Module = nn.Identity()
        self.decoder: nn.Module = nn.Identity()

    @property
    def factor_channels(self) -> int:
        return max(1, round(self.rate * (self.channels or 0)))

    def build(self, channels: int, device: torch.device) -> None:
        """Create the layers for a teacher feature of ``channels`` channels (once)."""
        if self.channels is not None:
            if self.channels != channels:
                raise MentorError(f"ft: the paraphraser was built for {self.channels} channels, got {channels}")
            return
        self.channels = channels
        factor = self.factor_channels
        self.encoder = nn.Sequential(_block(channels, channels), _block(channels, factor), _block(factor, factor))
        last = nn.ConvTranspose2d(channels, channels, 3, padding=1)  # linear output: features may be negative
        self.decoder = nn.Sequential(_block(factor, factor, True), _block(factor, channels, True), last)
        self.to(device)

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.decoder(self.encoder(features))


class Reconstruction(Term):
    """Stage 1: mean squared error of the paraphraser's reconstruction of the teacher feature."""

    def __init__(self, teacher: str, paraphraser: Paraphraser) -> None:
        super().__init__("reconstruction")
        self.teacher_path, self.teacher_taps, self.paraphraser = teacher, (teacher,), paraphraser

    def bind(self, student: Outputs, teacher: Outputs | None) -> None:
        if teacher is None:
            raise MentorError("loss term 'reconstruction' needs a teacher, but this scheme has none")
        features = _feature_map(teacher.get(self.teacher_path), "teacher", self.teacher_path)
        self.paraphraser.build(features.shape[1], features.device)
        self.paraphraser.requires_grad_(True)

    def loss(self, context: Context) -> torch.Tensor:
        features = context.require_teacher(self.name).get(self.teacher_path)
        return F.mse_loss(self.paraphraser(features), features)


class FactorTransfer(Term):
    """Stage 2: β · mean |F̂_T − F̂_S|^p with the paraphraser frozen (eval mode, no gradient) and a trained translator."""

    def __init__(self, student: str, teacher: str, paraphraser: Paraphraser, norm: float, weight: float) -> None:
        super().__init__("factor", weight)
        self.student_path, self.teacher_path, self.norm = student, teacher, norm
        self.student_taps, self.teacher_taps = (student,), (teacher,)
        self.paraphraser = paraphraser
        self.translator: nn.Module = nn.Identity()

    def bind(self, student: Outputs, teacher: Outputs | None) -> None:
        if teacher is None:
            raise MentorError("loss term 'factor' needs a teacher, but this scheme has none")
        target = _feature_map(teacher.get(self.teacher_path), "teacher", self.teacher_path)
        source = _feature_map(student.get(self.student_path), "student", self.student_path)
        self.paraphraser.build(target.shape[1], target.device)
        self.paraphraser.requires_grad_(False).eval().zero_grad(set_to_none=True)
        factor, channels = self.paraphraser.factor_channels, source.shape[1]
        self.translator = nn.Sequential(_block(channels, channels), _block(channels, factor), _block(factor, factor))
        self.translator.to(source.device)

    def train(self, mode: bool = True) -> FactorTransfer:
        """Train the translator; the paraphraser stays in eval mode so its BatchNorm statistics never change."""
        super().train(mode)
        self.paraphraser.eval()
        return self

    def loss(self, context: Context) -> torch.Tensor:
        teacher = context.require_teacher(self.name)
        with torch.no_grad():
            teacher_factor = self.paraphraser.encoder(teacher.get(self.teacher_path))
        student_factor = self.translator(context.student.get(self.student_path))
        size = tuple(min(a, b) for a, b in zip(student_factor.shape[2:], teacher_factor.shape[2:], strict=True))
        student_factor = F.adaptive_avg_pool2d(student_factor, size)
        teacher_factor = F.adaptive_avg_pool2d(teacher_factor, size)
        return normalized_distance(student_factor, teacher_factor, self.norm)


@register("ft", "Kim et al. 2018, Paraphrasing Complex Network: Network Compression via Factor Transfer (NeurIPS)")
def ft(
    student: str,
    teacher: str,
    rate: Annotated[float, Field(gt=0)] = 0.5,
    beta: Annotated[float, Field(ge=0)] = 500.0,
    norm: Annotated[float, Field(ge=1)] = 1.0,
    paraphraser_epochs: Annotated[int, Field(ge=1)] = 5,
) -> list[Stage]:
    """Stage ``paraphraser`` (autoencoder on the teacher feature), then ``train`` (CE + β · factor loss).

    Args:
        student / teacher: paths of the feature maps (the paper uses the last group of each network).
        rate: paraphrase rate k (factor channels = k × teacher channels).
        beta: β. norm: p of the factor distance, the mean of |F̂_T − F̂_S|^p (1 in the paper and code).
        paraphraser_epochs: length of the paraphraser stage.
    """
    paraphraser = Paraphraser(rate)
    return [
        Stage("paraphraser", Objective(Reconstruction(teacher, paraphraser)), paraphraser_epochs),
        Stage("train", Objective(CE(), FactorTransfer(student, teacher, paraphraser, norm, weight=beta))),
    ]
