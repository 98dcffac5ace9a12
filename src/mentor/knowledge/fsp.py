"""Flow of Solution Procedure (FSP) matrices.

Yim, Joo, Bae & Kim (2017), "A Gift from Knowledge Distillation: Fast Optimization, Network
Minimization and Transfer Learning", CVPR.

The "flow" between two feature maps F1 ``(B, m, h, w)`` and F2 ``(B, n, h, w)`` (typically the input
and the output of a block) is the FSP matrix ``(B, m, n)``:

    G_{i,j}(F1, F2) = (1 / (h·w)) Σ_{s,t} F1[:, i, s, t] · F2[:, j, s, t]

The student learns the teacher's flows between corresponding pairs of layers:

    L_FSP = λ Σ_i mean over samples and the m×n entries of (G_i^T(x) − G_i^S(x))²

so each student pair must give an FSP matrix of the teacher's size (m, n): the channel counts must
agree. When F1 and F2 differ in spatial size the larger map is adaptive-average-pooled to the smaller.
As in the paper, training has two stages: ``fsp`` (the student minimizes L_FSP only, an
initialization) then ``train`` (the main task, cross-entropy).

Scale: the paper writes λ/N Σ_x Σ_i ‖G_i^T − G_i^S‖²₂ (squared Frobenius norms), and its authors released
no code. RepDistiller's FSP stage, trained by SGD at the task's learning rate, averages the squared
differences over the m×n entries as well, with λ = 1; this implementation follows it. The Frobenius sum
is m·n times larger (2048 and 8192 for 32→64 and 64→128 channels): it gives the stage's gradient ~2000
times a cross-entropy gradient on a Fashion-MNIST CNN pair.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field

from mentor.batch import Outputs
from mentor.errors import MentorError
from mentor.knowledge.base import Stage, check_pairs, register
from mentor.losses import CE, Context, Objective, Term

Pair = tuple[str, str]


def fsp_matrix(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """G(F1, F2) ``(B, m, n)`` for F1 ``(B, m, h1, w1)`` and F2 ``(B, n, h2, w2)``, pooled to a common size."""
    size = (min(first.shape[2], second.shape[2]), min(first.shape[3], second.shape[3]))
    if tuple(first.shape[2:]) != size:
        first = F.adaptive_avg_pool2d(first, size)
    if tuple(second.shape[2:]) != size:
        second = F.adaptive_avg_pool2d(second, size)
    return torch.einsum("bihw,bjhw->bij", first, second) / (size[0] * size[1])


class FSPLoss(Term):
    """Σ_i mean (G_i^T − G_i^S)² over samples and matrix entries, over pairs of (input, output) layer paths."""

    def __init__(self, student: list[Pair], teacher: list[Pair], weight: float) -> None:
        super().__init__("fsp", weight)
        self.student_pairs, self.teacher_pairs = list(student), list(teacher)
        self.student_taps = tuple(dict.fromkeys(path for pair in self.student_pairs for path in pair))
        self.teacher_taps = tuple(dict.fromkeys(path for pair in self.teacher_pairs for path in pair))

    def bind(self, student: Outputs, teacher: Outputs | None) -> None:
        if teacher is None:
            raise MentorError("loss term 'fsp' needs a teacher, but this scheme has none")
        pairs = zip(self.student_pairs, self.teacher_pairs, strict=True)
        for index, (student_pair, teacher_pair) in enumerate(pairs, start=1):
            shapes = {}
            for role, outputs, pair in (("student", student, student_pair), ("teacher", teacher, teacher_pair)):
                tensors = [outputs.get(path) for path in pair]
                for path, tensor in zip(pair, tensors, strict=True):
                    if tensor.ndim != 4:
                        raise MentorError(
                            f"fsp pair {index}: {role} layer {path!r} gives shape {tuple(tensor.shape)}; FSP matrices "
                            "need feature maps (B, C, H, W): tap convolutional layers"
                        )
                shapes[role] = (tensors[0].shape[1], tensors[1].shape[1])
            if shapes["student"] != shapes["teacher"]:
                raise MentorError(
                    f"fsp pair {index}: the student FSP matrix {student_pair} is {shapes['student'][0]}x"
                    f"{shapes['student'][1]} but the teacher's {teacher_pair} is {shapes['teacher'][0]}x"
                    f"{shapes['teacher'][1]}; choose student and teacher layers with matching channel counts"
                )

    def loss(self, context: Context) -> torch.Tensor:
        teacher = context.require_teacher(self.name)
        total = context.student.logits.new_zeros(())
        for (s_in, s_out), (t_in, t_out) in zip(self.student_pairs, self.teacher_pairs, strict=True):
            student_flow = fsp_matrix(context.student.get(s_in), context.student.get(s_out))
            teacher_flow = fsp_matrix(teacher.get(t_in), teacher.get(t_out))
            total = total + (teacher_flow - student_flow).pow(2).mean()
        return total


@register("fsp", "Yim et al. 2017, A Gift from Knowledge Distillation: Fast Optimization, ... (CVPR)")
def fsp(
    student: Annotated[list[Pair], Field(min_length=1)],
    teacher: Annotated[list[Pair], Field(min_length=1)],
    weight: Annotated[float, Field(gt=0)] = 1.0,
    fsp_epochs: Annotated[int, Field(ge=1)] = 5,
) -> list[Stage]:
    """Stage ``fsp`` (λ · L_FSP only, ``fsp_epochs`` epochs), then stage ``train`` (cross-entropy).

    Args:
        student: (input path, output path) pairs of the student, e.g. ``[["stage1", "stage2"]]``.
        teacher: the corresponding pairs of the teacher, one per student pair.
        weight: λ.
        fsp_epochs: length of the FSP stage.
    """
    check_pairs("fsp", student, teacher, what="layer pairs")
    return [Stage("fsp", Objective(FSPLoss(student, teacher, weight)), fsp_epochs), Stage("train", Objective(CE()))]
