"""Recipe sections of the pipelines that run on their own (``pate``, ``adapt``, ``expand``, ``multitask``): each
with the recipe's ``teacher``, ``student`` and ``train`` (checked in :class:`mentor.recipes.schema.Recipe`)."""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal

from pydantic import Field, field_validator

from mentor.recipes.section import Section


class Pate(Section):
    """PATE (Papernot et al. 2017, 2018): defaults are the papers' MNIST settings (250 teachers)."""

    teachers: int = Field(250, gt=0, description="teachers, one per disjoint partition of the training split")
    aggregator: Literal["lnmax", "gnmax", "confident-gnmax"] = Field("gnmax", description="the noisy vote")
    gamma: float = Field(0.05, gt=0.0, description="lnmax: inverse Laplace scale γ (noise Lap(1/γ))")
    sigma: float = Field(40.0, gt=0.0, description="gnmax: Gaussian σ; confident-gnmax: σ2 of its answer")
    threshold: float = Field(200.0, description="confident-gnmax: votes T the noisy maximum must reach")
    sigma1: float = Field(150.0, gt=0.0, description="confident-gnmax: σ1 of the threshold check")
    queries: int = Field(100, gt=0, description="the most queries the student asks")
    delta: float = Field(1e-5, gt=0.0, lt=1.0, description="δ of the reported (ε, δ)")
    epsilon_budget: float | None = Field(None, gt=0.0, description="stop asking before ε would exceed it")
    budget_analysis: Literal["data-dependent", "data-independent"] = Field(
        "data-dependent", description="the ε the budget is checked against")
    public_fraction: float = Field(0.9, gt=0.0, lt=1.0, description="share of the test split the student may "
                                                                    "query; the rest evaluates")
    self_training: bool = Field(False, description="also learn the student's confident labels on unasked data")
    mean_teacher: dict[str, Any] | None = Field(
        None, description="learn semi-supervised with a mean teacher instead: the mean-teacher scheme's parameters "
                          "({} for its defaults), the answers labelled and the rest of the pool unlabelled")


class AdaptTarget(Section):
    """The target domain of knowledge adaptation: its labels are read only by the oracle and the evaluation."""

    name: str = Field("digits-28", description="target dataset name (`mentor list datasets`) or a directory")
    root: str | None = Field(None, description="directory holding the target's files (overrides the default place)")
    validation: float = Field(0.1, ge=0.0, lt=1.0, description="fraction of the target's training part held out "
                                                              "(labeled: the oracle's model selection)")
    limit: int | None = Field(None, gt=0, description="keep only this many target training and test samples")


AdaptMethod = Literal["teacher-student", "curriculum", "mean-teacher", "adversarial", "multi-source"]
SourceVariant = Literal["none", "low-resolution", "inverted"]


class Adapt(Section):
    """Knowledge adaptation (survey §2.3, mentor.pipelines.adapt): a teacher trained on the source (data), students
    adapted to the unlabeled target. Defaults are the papers' unless their docstrings say why not."""

    target: AdaptTarget = Field(default_factory=AdaptTarget, description="the target domain's data")
    normalize: Literal["source", "own"] = Field("source", description="standardize the target with the source's "
                                                "statistics (source) or its own training inputs' (own)")
    methods: list[AdaptMethod] = Field(default_factory=lambda: ["teacher-student"], min_length=1,
                                       description="the adapted students, one stage each, sharing the teacher")
    oracle: bool = Field(True, description="also train the teacher's model on the target's labels (upper reference)")
    consistency: float = Field(3.0, ge=0.0, description="mean-teacher: weight w of the consistency loss")
    confidence: float = Field(0.968, ge=0.0, le=1.0, description="mean-teacher: teacher confidence θ a target "
                                                                 "sample needs to count")
    class_balance: float = Field(0.005, ge=0.0, description="mean-teacher: weight c of the class-balance loss")
    decay: float = Field(0.99, ge=0.0, lt=1.0, description="mean-teacher: EMA decay α of the teacher")
    shift: int = Field(2, ge=0, description="mean-teacher: random shift of each view, in pixels")
    noise: float = Field(0.1, ge=0.0, description="mean-teacher: std of the Gaussian noise of each view")
    adversarial_weight: float = Field(0.1, ge=0.0, description="adversarial: λ_adv of the fooling loss (the paper's "
                                      "0.001 is for 250,000 steps; 0.1 won on digits-28's validation split)")
    discriminator_lr: float = Field(1e-4, gt=0.0, description="adversarial: Adam learning rate of the discriminator")
    sources: list[SourceVariant] = Field(default_factory=lambda: ["none", "low-resolution", "inverted"],
                                         min_length=2, description="multi-source: the source domains, each a "
                                         "rendering of the source data with its own teacher")
    bins: int = Field(32, ge=2, le=4096, description="multi-source: histogram bins of the domain similarity")
    tasks: int = Field(4, ge=2, description="curriculum: target parts by teacher confidence, chosen among")
    alpha: float = Field(0.1, ge=0.0, le=1.0, description="curriculum: smoothing α of the task values")
    epsilon: float = Field(0.1, ge=0.0, le=1.0, description="curriculum: exploration rate ε")
    interval: int = Field(10, ge=1, description="curriculum: steps on a task before its score is measured")
    probe: int = Field(64, ge=1, description="curriculum: samples of each task its score is measured on")

    @field_validator("methods", "sources")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        repeated = sorted(item for item, count in Counter(value).items() if count > 1)
        if repeated:
            raise ValueError(f"each entry may appear once; {repeated} repeat")
        return value
class ExpandCurriculum(Section):
    """Curriculum by confidence (Wang et al. 2021): confident pseudo labels first."""

    phases: int = Field(2, ge=2, description="equal parts of the epochs; the last learns every pseudo label")
    start: float = Field(0.5, gt=0.0, le=1.0, description="share of the pseudo labels, most confident first, "
                                                         "learned in the first phase")


class Expand(Section):
    """Noisy Student (Xie et al. 2020): defaults are the paper's where they carry over (mentor.pipelines.expand)."""

    labels: int = Field(gt=0, description="labeled training samples, the same number per class, drawn per seed; "
                                          "the rest of the training split is the unlabeled pool (labels dropped)")
    unlabeled: int | None = Field(None, gt=0, description="keep the first N of the other training samples as the "
                                                          "unlabeled pool (default: all)")
    rounds: int = Field(2, ge=1, description="students, each the next one's teacher")
    soft: bool = Field(True, description="learn the teacher's softmax (false: its argmax)")
    threshold: float = Field(0.3, ge=0.0, lt=1.0, description="teacher confidence a pseudo label needs")
    balance: bool = Field(True, description="the same number of pseudo-labeled images per class")
    per_class: int | None = Field(None, gt=0, description="that number (default: the images kept over the classes)")
    unlabeled_ratio: float = Field(3.0, gt=0.0, description="pseudo-labeled rows per labeled row")
    shift: int = Field(2, ge=0, description="the students' random input shift in pixels (noise)")
    input_noise: float = Field(0.1, ge=0.0, description="std of the students' Gaussian input noise")
    curriculum: ExpandCurriculum | None = Field(None, description="learn confident pseudo labels first")
    baseline: bool = Field(True, description="also train the student model on the labeled samples alone")
    noisy_teacher: bool = Field(False, description="train the round-0 teacher with the students' input noise too "
                                                   "(the paper's Algorithm 1); its pseudo labels stay unnoised")
class MultiTaskItem(Section):
    """One task of a multi-task run: its dataset and target (mentor.pipelines.multitask_data)."""

    name: str = Field(description="the task's name: its head's, its teacher's stage and its rows in the table")
    dataset: str = Field(description="the dataset its specialist teacher learns and its test set (mnist, "
                                     "fashion-mnist, digits)")
    target: Literal["classes", "ink"] = Field("classes", description="classes: the dataset's labels; ink: "
                                              "regression of the percentage of inked pixels (intensity > 0.5)")
    weight: float = Field(1.0, ge=0.0, description="w_t of this task's loss in the student's total")


class CrossTaskSpec(Section):
    """Cross-task KD (Yang et al. 2022), adapted to images: a second student with ranking losses and calibration."""

    ranking_weight: float = Field(1.0, ge=0.0, description="λ of each auxiliary quadruplet ranking loss")
    calibrate: bool = Field(True, description="calibrate each teacher on its task's validation split first")
    confidence: float = Field(0.5, gt=0.0, le=1.0, description="a classification task's binary label is 1 where the "
                                                              "teacher's top class probability reaches this")


class MultiTask(Section):
    """MuST (Ghiasi et al. 2021): specialist teachers label a shared pool; one multi-head student learns it all."""

    tasks: list[MultiTaskItem] = Field(min_length=1, description="the tasks, each with its own dataset and teacher")
    pool_fraction: float = Field(0.5, gt=0.0, lt=1.0, description="share of each dataset's training split that "
                                                                  "goes, unlabelled, to the shared pool")
    cross_task: CrossTaskSpec | None = Field(None, description="also train a cross-task KD student")
    ground_truth: bool = Field(True, description="also train the student on the teachers' labelled data directly "
                                                 "(the baseline without teachers)")
