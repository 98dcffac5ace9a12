"""Teacher weightings and the multi-teacher losses against hand-computed values (survey §4.2).

Shared numbers: two teachers with logits z_0 = [2 ln 3, 0] and z_1 = [0, 0], τ = 2, so their tempered
distributions are p_0 = [3/4, 1/4] and p_1 = [1/2, 1/2]; the student's logits [0, 0] give p_S = [1/2, 1/2].
"""

from __future__ import annotations

import math

import pytest
import torch

from mentor.batch import Batch, Outputs
from mentor.errors import MentorError
from mentor.knowledge import create
from mentor.knowledge.multi_teacher import averaged_kl, voted_kl
from mentor.losses import Context
from mentor.teachers import Ensemble
from mentor.teachers.weighting import create as weighting
from mentor.teachers.weighting import member_logits
from mentor.teachers.weighting.adaptive import instance_weights
from mentor.teachers.weighting.domain import jensen_shannon, similarities

LN3 = math.log(3.0)
TEACHERS = torch.tensor([[[2 * LN3, 0.0], [0.0, 0.0]]])  # (B=1, M=2, K=2)
STUDENT = torch.zeros(1, 2)


def context(batch: int = 1) -> Context:
    return Context(Batch(torch.zeros(batch, 1), torch.zeros(batch, dtype=torch.long)), Outputs(STUDENT), None)


def test_uniform_averages_the_tempered_distributions() -> None:
    weights = weighting("uniform", 2)(context(), TEACHERS, 2.0)
    assert weights.tolist() == [[0.5, 0.5]]
    # target [5/8, 3/8] against [1/2, 1/2]: 5/8 ln(5/4) + 3/8 ln(3/4) = 0.03158394, times τ² = 4
    assert float(averaged_kl(STUDENT, TEACHERS, weights, 2.0)) == pytest.approx(4 * 0.03158394, rel=1e-5)
    # not softmax(log(τ=1 mixture)/τ): the τ = 1 mixture [0.7, 0.3] tempered is [0.60434, 0.39566] (KL 0.02130)
    assert float(averaged_kl(STUDENT, TEACHERS, weights, 2.0)) != pytest.approx(4 * 0.0213, rel=1e-2)


def test_fixed_weights_are_normalised() -> None:
    weights = weighting("fixed", 2, weights=[3.0, 1.0])(context(), TEACHERS, 2.0)
    assert weights.tolist() == [[0.75, 0.25]]
    # target 3/4 [3/4, 1/4] + 1/4 [1/2, 1/2] = [11/16, 5/16]: 11/16 ln(11/8) + 5/16 ln(5/8) = 0.07206081
    assert float(averaged_kl(STUDENT, TEACHERS, weights, 2.0)) == pytest.approx(4 * 0.07206081, rel=1e-5)


@pytest.mark.parametrize("weights", [[1.0, -1.0], [1.0], [0.0, 0.0], [1.0, 2.0, 3.0]])
def test_fixed_weights_that_are_no_distribution_are_refused(weights: list[float]) -> None:
    with pytest.raises(MentorError, match=r"The 'weights' parameter of weighting 'fixed' must be 2 non-negative"):
        weighting("fixed", 2, weights=weights)


def test_vote_sums_the_weighted_per_teacher_losses() -> None:
    weights = torch.tensor([[0.5, 0.5]])
    # 1/2 KL([3/4, 1/4] || [1/2, 1/2]) + 1/2 · 0 = 1/2 (3/4 ln 1.5 + 1/4 ln 0.5) = 0.06540602, times τ² = 4
    assert float(voted_kl(STUDENT, TEACHERS, weights, 2.0)) == pytest.approx(4 * 0.06540602, rel=1e-5)


def test_adaptive_weights_are_a_softmax_of_latent_vectors_times_student_features() -> None:
    latent = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    feature = torch.tensor([[LN3, 0.0]])  # scores [ln 3, 0] -> softmax [3/4, 1/4]
    assert instance_weights(latent, feature)[0].tolist() == pytest.approx([0.75, 0.25])


def test_adaptive_learns_its_latent_vectors_and_the_hint_regressors_with_the_student() -> None:
    hints = [{"student": "s", "teachers": ["h", "h"]}]
    objective = create("multi-teacher", teachers=2, weighting="adaptive", alpha=0.5,
                       weighting_params={"feature": "s", "hints": hints})
    student_feature = torch.tensor([[1.0, 2.0, 3.0, 4.0]], requires_grad=True)
    teacher = Outputs(torch.zeros(1, 2), {"members.0": TEACHERS[:, 0], "members.1": TEACHERS[:, 1],
                                          "members.0.h": torch.tensor([[1.0, 0.0]]),
                                          "members.1.h": torch.tensor([[0.0, 4.0]])})
    student_logits = torch.tensor([[1.0, 0.0]], requires_grad=True)  # not uniform: the teachers differ for it
    student = Outputs(student_logits, {"s": student_feature})
    objective.bind(student, teacher)
    hint = objective.terms["hints"]
    for regressors in hint.regressors:
        for regressor in regressors:  # identity maps: each half of the student feature against one teacher
            torch.nn.init.eye_(regressor[1].weight)
            torch.nn.init.zeros_(regressor[1].bias)
    out = objective(Context(Batch(torch.zeros(1, 1), torch.tensor([0])), student, teacher))
    # halves [1, 2] vs [1, 0]: mean 4/2 = 2; [3, 4] vs [0, 4]: 9/2 = 4.5; averaged over the 2 teachers: 3.25
    assert float(out.parts["hints"]) == pytest.approx(3.25)
    out.total.backward()
    latent = objective.terms["kl"].weighting.latent
    assert latent.grad is not None and latent.grad.abs().sum() > 0
    assert student_logits.grad is not None and student_feature.grad is not None


def test_adaptive_penalises_its_latent_vectors_and_leaves_the_student_feature_out_of_the_weights() -> None:
    objective = create("multi-teacher", teachers=2, weighting="adaptive", alpha=0.0,  # the penalty's gradient alone
                       weighting_params={"feature": "s", "regularization": 0.1, "learn": "distillation"})
    student_feature = torch.tensor([[1.0, 2.0]], requires_grad=True)
    teacher = Outputs(torch.zeros(1, 2), {"members.0": TEACHERS[:, 0], "members.1": TEACHERS[:, 1]})
    student = Outputs(torch.tensor([[1.0, 0.0]], requires_grad=True), {"s": student_feature})
    objective.bind(student, teacher)
    weighting = objective.terms["kl"].weighting
    with torch.no_grad():
        weighting.latent.copy_(torch.tensor([[1.0, -1.0], [0.5, 2.0]]))
    out = objective(Context(Batch(torch.zeros(1, 1), torch.tensor([0])), student, teacher))
    assert float(out.parts["latent-l2"]) == pytest.approx(0.1 * (1 + 1 + 0.25 + 4))  # λ ‖V‖²
    out.total.backward()
    assert weighting.latent.grad.flatten().tolist() == pytest.approx([0.2, -0.2, 0.1, 0.4])  # 2 λ V
    assert student_feature.grad is None  # α reads the feature detached


def test_adaptive_learns_its_weights_from_the_labels_by_default() -> None:
    # τ = 1: p_0 = softmax([2 ln 3, 0]) = [9/10, 1/10], p_1 = [1/2, 1/2]; V = 0 gives α = [1/2, 1/2], mixture
    # [0.7, 0.3], label 0: L_w = −ln 0.7. ∂L_w/∂s_m = α_m (1 − p_m[y] / 0.7) = [−1/7, 1/7], times f = [1, 2].
    objective = create("multi-teacher", teachers=2, weighting="adaptive", alpha=0.5,
                       weighting_params={"feature": "s", "regularization": 0.0})
    student_feature = torch.tensor([[1.0, 2.0]], requires_grad=True)
    teacher = Outputs(torch.zeros(1, 2), {"members.0": TEACHERS[:, 0], "members.1": TEACHERS[:, 1]})
    student = Outputs(torch.tensor([[1.0, 0.0]], requires_grad=True), {"s": student_feature})
    objective.bind(student, teacher)
    out = objective(Context(Batch(torch.zeros(1, 1), torch.tensor([0])), student, teacher))
    assert float(out.parts["weights"]) == pytest.approx(-math.log(0.7))
    out.total.backward()
    # the KL term sees α as constants: V's gradient is L_w's alone
    latent = objective.terms["kl"].weighting.latent
    assert latent.grad.flatten().tolist() == pytest.approx([-1 / 7, -2 / 7, 1 / 7, 2 / 7])
    assert student_feature.grad is None


def test_domain_similarity_is_one_minus_jensen_shannon_of_input_histograms() -> None:
    # P = [1, 0], Q = [1/2, 1/2], M = [3/4, 1/4]: JS = 1/2 log2(4/3) + 1/2 (1/2 log2(2/3) + 1/2 log2 2) = 0.31127812
    assert float(jensen_shannon(torch.tensor([1.0, 0.0]), torch.tensor([0.5, 0.5]))) == pytest.approx(0.31127812)
    target = torch.tensor([0.0, 0.0, 1.0, 1.0])  # histogram over 2 bins: [1/2, 1/2]
    sources = [torch.tensor([0.0, 1.0]), torch.tensor([0.0, 0.0, 0.0])]  # [1/2, 1/2] and [1, 0]
    assert similarities(sources, target, bins=2).tolist() == pytest.approx([1.0, 0.68872188])
    weights = weighting("domain", 2, sources=sources, target=target, bins=2)(context(), TEACHERS, 2.0)
    assert weights[0].tolist() == pytest.approx([1 / 1.68872188, 0.68872188 / 1.68872188])


def test_domain_without_domains_says_what_it_needs() -> None:
    with pytest.raises(MentorError, match="weighting 'domain' has no domains"):
        weighting("domain", 2)(context(), TEACHERS, 2.0)
    with pytest.raises(MentorError, match="'sources' parameter of weighting 'domain' must hold 2"):
        weighting("domain", 2, sources=[torch.zeros(3)], target=torch.zeros(3))


def test_unknown_weighting_and_empty_ensembles_are_one_line_errors() -> None:
    with pytest.raises(MentorError, match="unknown weighting 'adaptve'; nearest: adaptive"):
        create("multi-teacher", teachers=2, weighting="adaptve")
    with pytest.raises(MentorError, match="'teachers' parameter of multi-teacher must be an int >= 1"):
        create("multi-teacher", teachers=0)
    with pytest.raises(MentorError, match="'members' parameter of Ensemble .recipe key 'teachers'. must list"):
        Ensemble([])


def test_a_teacher_with_other_classes_than_the_student_is_named() -> None:
    teacher = Outputs(torch.zeros(1, 3), {"members.0": torch.zeros(1, 3), "members.1": torch.zeros(1, 5)})
    with pytest.raises(MentorError, match=r"teachers\[1\] outputs shape \(5,\) but the student has 3 classes"):
        member_logits(teacher, 2, classes=3)
    with pytest.raises(MentorError, match=r"teachers\[1\] outputs shape \(5,\) but teachers\[0\] \(3,\)"):
        Ensemble([torch.nn.Linear(2, 3), torch.nn.Linear(2, 5)])(torch.zeros(1, 2))


def test_learned_weights_follow_the_cross_entropy_not_the_teachers_entropy() -> None:
    # p_0 = [3/4, 1/4], p_1 = [1/2, 1/2], p_S = [1/2, 1/2]: the cross-entropy −Σ p_m log p_S is ln 2 for both
    # teachers, so its gradient on the weights is equal for both (the KL's would favour the flatter p_1)
    for loss in (averaged_kl, voted_kl):
        weights = torch.tensor([[0.5, 0.5]], requires_grad=True)
        (gradient,) = torch.autograd.grad(loss(STUDENT, TEACHERS, weights, 2.0), weights)
        assert gradient[0, 0].item() == pytest.approx(gradient[0, 1].item())
        assert gradient[0, 0].item() == pytest.approx(4 * math.log(2.0))
