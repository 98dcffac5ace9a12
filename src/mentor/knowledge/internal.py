"""Knowledge distillation from internal representations, layer by layer.

Aguilar, Ling, Zhang, Yao, Fan & Guo (2020), "Knowledge Distillation from Internal Representations",
AAAI 34(05), arXiv:1910.03723.

For every mapped pair (student layer l, teacher layer m) the student matches the teacher's hidden
state with a cosine loss and its attention distribution with a KL divergence; the logits follow KD:

    L_hid,l = (1/B) Σ_b [1 − cos(r(h_S,l,b), h_T,m,b)]            h: (B, ...), r: adapter onto h_T's shape
    L_att,l = (1/B) Σ_b KL(a_T,m,b || a_S,l,b)                     a: (B, H·W)
    L_KD    = (1 − α) · CE(y, z_S) + α · τ² · KL(softmax(z_T/τ) || softmax(z_S/τ))

The paper matches the self-attention probabilities of BERT (no released code of the authors' was
found to follow). A CNN has no attention probabilities; for a feature map F ``(B, C, H, W)`` the
attention is here AT's spatial map (Zagoruyko & Komodakis 2017) normalized to a distribution over the
H·W positions,

    a_j = Q_j / Σ_i Q_i,   Q = Σ_c F_c²

so that it is independent of the layer's width and scale, as AT's normalized map is. (A softmax over
raw channel sums, softmax_j(Σ_c F_c,j), depends on both: its distributions are nearly one-hot, and on a
Fashion-MNIST CNN pair, stages 2 and 3 of an untrained student, its gradient was 27-29× that of the
plain cross-entropy; this map's was 0.5-1.6×, next to the KD term's 1.8×.) Student and teacher maps
must share H × W.

Defaults: hidden and attention weights 1 (an unweighted sum of the layer losses) and KD with α = 0.9,
τ = 4 as ``kd``; on that pair the hidden terms' gradients were 0.13-0.21× the plain cross-entropy's.

``progressive: false`` minimizes L_KD + Σ_l (w_hid L_hid,l + w_att L_att,l) at once. ``progressive:
true`` is the paper's bottom-up schedule: one stage per layer pair (in the order given, ``layer_epochs``
each) minimizing only that pair's losses (progressive internal distillation, PID), or that pair's
and all lower ones (``stacked: true``, stacked internal distillation, SID), then a final KD stage.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from mentor.batch import Outputs
from mentor.errors import MentorError
from mentor.knowledge.at import attention_map
from mentor.knowledge.base import Stage, register
from mentor.knowledge.kd import kd
from mentor.losses import CE, KL, Context, Cosine, Objective, Term
from mentor.losses.functional import kl_divergence


class LayerPair(BaseModel):
    """A student layer matched to a teacher layer, by module path."""

    model_config = ConfigDict(extra="forbid")
    student: str
    teacher: str


def spatial_attention(features: torch.Tensor) -> torch.Tensor:
    """AT's map Σ_c F_c² as a distribution over the H·W positions: ``(B, C, H, W)`` -> ``(B, H·W)``."""
    return F.normalize(attention_map(features).flatten(1), p=1, dim=1)


class HiddenCosine(Cosine):
    """1 − cos between the (adapted) student hidden state and the teacher's; adapter built once.

    ``adapter="auto"`` uses no adapter when shapes match, else ``conv1x1`` for feature maps and
    ``linear`` otherwise. Binding again (a later stacked stage) keeps the trained adapter.
    """

    def __init__(self, student: str, teacher: str, adapter: str, weight: float, name: str) -> None:
        super().__init__(student, teacher, None if adapter == "auto" else adapter, weight=weight, name=name)
        self.auto = adapter == "auto"
        self.bound = False

    def bind(self, student: Outputs, teacher: Outputs | None) -> None:
        if self.bound:
            return
        if self.auto and teacher is not None:
            left, right = student.get(self.student_path), teacher.get(self.teacher_path)
            same = left.shape[1:] == right.shape[1:]
            self.adapter_name = None if same else ("conv1x1" if left.ndim == right.ndim == 4 else "linear")
        super().bind(student, teacher)
        self.bound = True


class AttentionKL(Term):
    """KL(a_T || a_S) between spatial attention distributions of two feature maps, batch mean."""

    def __init__(self, student: str, teacher: str, weight: float, name: str) -> None:
        super().__init__(name, weight)
        self.student_path, self.teacher_path = student, teacher
        self.student_taps, self.teacher_taps = (student,), (teacher,)

    def bind(self, student: Outputs, teacher: Outputs | None) -> None:
        if teacher is None:
            raise MentorError(f"loss term {self.name!r} needs a teacher, but this scheme has none")
        left, right = student.get(self.student_path), teacher.get(self.teacher_path)
        if left.ndim != 4 or right.ndim != 4 or left.shape[2:] != right.shape[2:]:
            raise MentorError(
                f"term {self.name!r}: attention maps need feature maps (B, C, H, W) of the same H x W; got student "
                f"{self.student_path} {tuple(left.shape)} and teacher {self.teacher_path} {tuple(right.shape)}; "
                "map layers of equal spatial size or set attention_weight: 0"
            )

    def loss(self, context: Context) -> torch.Tensor:
        teacher = context.require_teacher(self.name)
        student = spatial_attention(context.student.get(self.student_path))
        teacher_probs = spatial_attention(teacher.get(self.teacher_path))
        return kl_divergence(student.clamp_min(torch.finfo(student.dtype).tiny).log(), teacher_probs)


def _layer_terms(index: int, pair: LayerPair, adapter: str, hidden_weight: float,
                 attention_weight: float) -> list[Term]:
    terms: list[Term] = [HiddenCosine(pair.student, pair.teacher, adapter, hidden_weight, f"hidden{index}")]
    if attention_weight > 0:
        terms.append(AttentionKL(pair.student, pair.teacher, attention_weight, f"attention{index}"))
    return terms


@register("internal", "Aguilar et al. 2020, Knowledge Distillation from Internal Representations (AAAI)")
def internal(
    layers: Annotated[list[LayerPair], Field(min_length=1)],
    hidden_weight: Annotated[float, Field(ge=0)] = 1.0,
    attention_weight: Annotated[float, Field(ge=0)] = 1.0,
    adapter: Literal["auto", "identity", "linear", "conv1x1", "conv3x3"] = "auto",
    temperature: Annotated[float, Field(gt=0)] = 4.0,
    alpha: Annotated[float, Field(ge=0, le=1)] = 0.9,
    progressive: bool = False,
    stacked: bool = False,
    layer_epochs: Annotated[int, Field(ge=1)] = 5,
) -> Objective | list[Stage]:
    """Hidden-state cosine and attention KL for each mapped layer, plus KD on the logits.

    Args:
        layers: ``[{student: path, teacher: path}, ...]``, bottom layer first.
        hidden_weight / attention_weight: weights of L_hid and L_att (``attention_weight: 0`` drops L_att).
        adapter: maps student hidden states onto the teacher's shape (``auto``: only when they differ).
        temperature / alpha: the KD term on logits, as in ``kd``.
        progressive: one stage per layer pair, then a KD stage; ``stacked`` keeps lower pairs' losses.
        layer_epochs: epochs of each layer stage.
    """
    if stacked and not progressive:
        raise MentorError("The 'stacked' parameter of internal applies to the progressive schedule; "
                          "set progressive: true or stacked: false")
    pairs = [pair if isinstance(pair, LayerPair) else LayerPair.model_validate(pair) for pair in layers]
    per_layer = [_layer_terms(i, pair, adapter, hidden_weight, attention_weight) for i, pair in enumerate(pairs, 1)]
    if not progressive:
        return Objective(CE(weight=1.0 - alpha), KL(temperature=temperature, weight=alpha),
                         *(term for terms in per_layer for term in terms))
    stages = []
    for index in range(len(per_layer)):
        active = per_layer[: index + 1] if stacked else [per_layer[index]]
        stages.append(Stage(f"layer{index + 1}", Objective(*(t for terms in active for t in terms)), layer_epochs))
    stages.append(Stage("distill", kd(temperature, alpha)))
    return stages
