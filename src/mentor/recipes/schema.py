"""The recipe schema: every key of a recipe file, typed and validated (unknown keys are errors).

A recipe maps one to one onto the Python API: ``data`` -> :func:`mentor.data.load`, ``teacher`` /
``student`` -> :func:`mentor.models.create`, ``knowledge`` -> :func:`mentor.knowledge.create`,
``train`` -> :class:`mentor.engine.FitSettings`.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from mentor import limits
from mentor.recipes.pipeline_sections import Adapt, Expand, MultiTask, Pate
from mentor.recipes.section import Section

PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
SEED_LIMIT = 2**32  # what NumPy's generator accepts


class Text(Section):
    """Texts tokenized for a Hugging Face model (mentor.data.text): data.name bbc-news, or data.root a folder of
    class subfolders of .txt files."""

    tokenizer: str | None = Field(None, description="folder of a Hugging Face tokenizer (or an id in the local "
                                                    "cache); default: the teacher's, when it is hf:<folder>")
    max_length: int = Field(128, ge=2, le=4096, description="tokens per text (padded or truncated)")


class Table(Section):
    """A Hugging Face datasets table (mentor.data.tables) at data.root: a save_to_disk folder or a
    .parquet/.csv/.json/.jsonl/.arrow file."""

    inputs: list[str] | None = Field(None, min_length=1, description="the input column(s); default: the first of "
                                     "image, img, pixel_values, input_ids (with its masks) or text")
    label: str = Field("label", description="the integer class column")
    stream: bool = Field(False, description="keep the rows on disk and read them batch by batch (larger than memory)")


class Data(Section):
    name: str = Field("digits", description="dataset name (`mentor list datasets`) or a directory of IDX/NumPy files")
    root: str | None = Field(None, description="directory holding the dataset's files (overrides the default place)")
    validation: float = Field(0.1, ge=0.0, lt=1.0, description="fraction of the training set held out for validation")
    limit: int | None = Field(None, gt=0, description="keep only this many training and test samples (quick runs)")
    offset: int = Field(0, ge=0, description="skip this many training samples first (then limit): learn from "
                                             "samples another run never saw; the test split is unaffected")
    normalize: bool = Field(True, description="standardize inputs with the training set's per-channel mean and std")
    text: Text | None = Field(None, description="the samples are texts: tokenize them (then normalize is ignored)")
    table: Table | None = Field(None, description="data.root is a Hugging Face datasets table: its columns")


class Optimizer(Section):
    name: Literal["sgd", "adam", "adamw"] = "adam"
    lr: float = Field(1e-3, gt=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(0.0, ge=0.0)
    nesterov: bool = False
    kernel: Literal["auto", "for-loop", "foreach", "fused"] = Field("auto", description="how the update runs over "
                                                                    "the tensors (auto: torch's choice)")


class Scheduler(Section):
    name: Literal["constant", "cosine", "step", "multistep"] = "constant"
    step_size: int = Field(30, gt=0)
    milestones: list[int] = Field(default_factory=list, description="epochs (>= 1) after which the rate is "
                                                                    "multiplied by gamma")
    gamma: float = Field(0.1, gt=0.0)

    @field_validator("milestones")
    @classmethod
    def _positive_epochs(cls, value: list[int]) -> list[int]:
        if any(milestone < 1 for milestone in value):
            raise ValueError(f"milestones are epoch numbers >= 1; got {value}")
        return value


class Train(Section):
    epochs: int = Field(10, gt=0, description="epochs of training (all stages together)")
    batch_size: int = Field(64, gt=0)
    optimizer: Optimizer = Field(default_factory=Optimizer)
    scheduler: Scheduler = Field(default_factory=Scheduler)
    clip_grad_norm: float | None = Field(None, gt=0.0, description="clip the global gradient norm to this value")
    jitter: int = Field(0, ge=0, description="random translation of input images by up to this many pixels")
    device: Literal["cpu", "cuda", "auto"] = Field("cpu", description="where to train (auto: CUDA when available)")
    precision: Literal["fp32", "bf16"] = Field("fp32", description="bf16 runs the forward passes under autocast")
    teacher_precision: Literal["fp32", "bf16"] = Field("fp32", description="bf16 runs the frozen teachers' passes "
                                                       "(and the teacher-output cache's build) under autocast")
    channels_last: bool = Field(False, description="NHWC memory format for image inputs and models")
    compile: bool = Field(False, description="torch.compile the forward passes that tap no features (the first steps "
                                            "pay the compilation)")
    teacher_cache: bool = Field(True, description="compute a frozen teacher's outputs once per dataset when the "
                                                  "inputs are deterministic (no jitter), instead of every epoch")
    num_workers: int | None = Field(None, ge=0, description="loader processes when the data is a torch Dataset "
                                                        "(None: a DataLoader's own, else 0)")
    pin_memory: bool | None = Field(None, description="page-locked batches when the data is a torch Dataset (None: a "
                                                      "DataLoader's own, else off)")

    @field_validator("epochs")
    @classmethod
    def _sane_epochs(cls, value: int) -> int:
        return limits.check(value, limits.EPOCHS, "epochs")

    @field_validator("batch_size")
    @classmethod
    def _sane_batch(cls, value: int) -> int:
        return limits.check(value, limits.BATCH, "samples per batch")


class Model(Section):
    model: str = Field(description="registered model name (`mentor list models`), a package's `mentor.models` entry "
                                   "point, or 'package.module:callable' (runs code: needs --trust-code)")
    options: dict[str, Any] = Field(default_factory=dict, description="constructor options, e.g. {hidden: [128]}")
    output: str | int | None = Field(None, description="the entry of the forward's result holding the logits, for "
                                     "models returning a tuple/dict/ModelOutput: a key (logits), an index (0) or a "
                                     "dotted path; default: logits if present, else the first element")

    @field_validator("output", mode="before")
    @classmethod
    def _output_key(cls, value: Any) -> Any:
        if isinstance(value, bool) or (isinstance(value, str) and not all(value.split("."))):
            raise ValueError(f"output is a key (logits), an index (0) or a dotted path (hidden_states.2); "
                             f"got {value!r}")
        return value


class StudentFriendly(Section):
    """SFTN (Park et al. 2021): the teacher trained with branches of the student (mentor.teachers.student_friendly)."""

    teacher_blocks: list[str] = Field(min_length=1, description="module paths after which the teacher is cut into "
                                                                "blocks, shallowest first (e.g. [stage1, stage2])")
    student_blocks: list[str] = Field(min_length=1, description="module paths after which the student is cut, as "
                                                                "many as teacher_blocks")
    teacher_weight: float = Field(1.0, ge=0.0, description="λ_T: weight of the teacher's cross-entropy")
    branch_ce_weight: float = Field(1.0, ge=0.0, description="λ_R^CE: weight of each branch's cross-entropy")
    branch_kl_weight: float = Field(3.0, ge=0.0, description="λ_R^KL: weight of each branch's KL to the teacher")
    temperature: float = Field(1.0, gt=0.0, description="τ of the branch KL terms")

    @model_validator(mode="after")
    def _as_many_blocks(self) -> StudentFriendly:
        if len(self.teacher_blocks) != len(self.student_blocks):
            raise ValueError(f"student_blocks must list as many paths as teacher_blocks (both models get as many "
                             f"blocks); got {len(self.student_blocks)} and {len(self.teacher_blocks)}")
        return self


class TrainedModel(Model):
    checkpoint: str | None = Field(None, description="load trained weights from this file instead of training")
    train: Train | None = Field(None, description="how to train the teacher (defaults to the recipe's train section)")


class Teacher(TrainedModel):
    student_friendly: StudentFriendly | None = Field(None, description="train the teacher with student branches "
                                                                       "(SFTN) instead of cross-entropy alone")

    @model_validator(mode="after")
    def _trained_or_loaded(self) -> Teacher:
        if self.student_friendly is not None and self.checkpoint is not None:
            raise ValueError("student_friendly trains the teacher, checkpoint loads a trained one; remove one of "
                             "teacher.checkpoint and teacher.student_friendly")
        return self


class Assistant(Model):
    train: Train | None = Field(None, description="how to train this assistant (defaults to the recipe's train "
                                                  "section)")


class Subset(Section):
    start: float = Field(0.0, ge=0.0, le=1.0, description="first fraction of the (seeded) shuffled samples kept")
    stop: float = Field(1.0, ge=0.0, le=1.0, description="fraction where the kept part ends")
    classes: list[int] | None = Field(None, min_length=1, description="keep only these classes (before start-stop)")

    @model_validator(mode="after")
    def _forward(self) -> Subset:
        if self.stop <= self.start:
            raise ValueError(f"stop ({self.stop}) must be above start ({self.start}); e.g. start: 0.0, stop: 0.5")
        return self


class MemberTeacher(TrainedModel):
    subset: Subset | None = Field(None, description="the part of the training split this teacher learns from")


class Weighting(Section):
    name: str = Field(description="teacher weighting (`mentor list weightings`): uniform, fixed, adaptive, ...")
    params: dict[str, Any] = Field(default_factory=dict, description="the weighting's parameters")


class WeightSchedule(Section):
    warmup: float = Field(0.0, ge=0.0, description="epochs over which the weight rises linearly from 0")
    rampdown_from: float | None = Field(None, ge=0.0, description="epoch at which a linear decrease to 0 starts")
    rampdown_to: float | None = Field(None, ge=0.0, description="epoch at which the weight reaches 0 (default: end)")

    @model_validator(mode="after")
    def _ramp_goes_forward(self) -> WeightSchedule:
        start, end = self.rampdown_from, self.rampdown_to
        if start is not None and end is not None and end <= start:
            raise ValueError(f"rampdown_to ({end}) must come after rampdown_from ({start})")
        return self


class Knowledge(Section):
    method: str = Field(description="knowledge method (`mentor list knowledge`)")
    params: dict[str, Any] = Field(default_factory=dict, description="the method's parameters")
    weight: float = Field(1.0, ge=0.0, description="multiplies the weights of the method's distillation terms")
    schedule: WeightSchedule | None = Field(None, description="warm-up / ramp-down of the distillation terms")


class SchemeSpec(Section):
    name: str = Field(description="learning scheme (`mentor list schemes`)")
    params: dict[str, Any] = Field(default_factory=dict, description="the scheme's parameters")


class Compare(Section):
    student_alone: bool = Field(True, description="distillation: also train the student alone, as the baseline")
    independent: bool = Field(True, description="schemes: also train each peer alone, and their plain ensemble")


class Log(Section):
    tensorboard: bool = Field(False, description="also write every epoch's train/* and val/* values as "
                                                 "TensorBoard scalars to RUN_DIR/tensorboard (extra: tensorboard)")


PIPELINES = ("adapt", "expand", "multitask", "pate")
"""Recipe sections that run a pipeline of their own, each with a teacher and a student section."""


class Recipe(Section):
    name: str = Field("recipe", description="a plain name (letters, digits, '.', '_', '-'): the default run "
                                            "directory is runs/NAME-TIMESTAMP")
    description: str = ""
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1, description="one full run per seed "
                                                                                    "(distinct, 0 <= seed < 2^32)")
    data: Data = Field(default_factory=Data)
    teacher: Teacher | None = Field(None, description="distillation: the teacher (trained first, or loaded)")
    teachers: list[MemberTeacher] | None = Field(None, min_length=1, description="distillation from several "
                                                 "teachers (instead of teacher), each on an optional subset")
    weighting: Weighting | None = Field(None, description="several teachers: how the teachers are weighted")
    student: Model | None = Field(None, description="distillation: the student")
    knowledge: list[Knowledge] | None = Field(
        None, min_length=1, description="distillation: one method, or several combined into one objective"
    )
    assistants: list[Assistant] | None = Field(
        None, min_length=1, description="distillation: teacher assistants (TAKD), largest first; the student is "
                                        "also distilled through the chain teacher -> assistants -> student"
    )
    scheme: SchemeSpec | None = Field(None, description="online / self-learning: the scheme that trains the peers")
    peers: list[Model] | None = Field(None, min_length=1, description="online / self-learning: the models, in order")
    pate: Pate | None = Field(None, description="PATE: private teachers (teacher), a noisy vote, a student")
    adapt: Adapt | None = Field(None, description="knowledge adaptation: a teacher on data (the source), students "
                                                  "adapted to adapt.target")
    expand: Expand | None = Field(None, description="knowledge expansion: a teacher (teacher), noisy students "
                                                   "(student) on pseudo-labeled data")
    multitask: MultiTask | None = Field(None, description="multi-task: specialist teachers (teacher), pseudo labels "
                                                          "of a shared pool, a multi-head student (student)")
    train: Train = Field(default_factory=Train)
    compare: Compare = Field(default_factory=Compare)
    log: Log = Field(default_factory=Log, description="where metrics go besides RUN_DIR/metrics.jsonl")
    latency_batch: int = Field(256, gt=0, description="batch size of the inference latency measurement")

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not PLAIN_NAME.fullmatch(value):
            raise ValueError("a name is up to 100 letters, digits, '.', '_' or '-' starting with a letter or digit "
                             "(it names the run directory, so no '/' or '..')")
        return value

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, value: list[int]) -> list[int]:
        limits.check(len(value), limits.SEEDS, "seeds")
        outside = [seed for seed in value if not 0 <= seed < SEED_LIMIT]
        if outside:
            raise ValueError(f"a seed is an integer from 0 to 2^32 - 1; got {outside[0]}")
        repeated = sorted(seed for seed, count in Counter(value).items() if count > 1)
        if repeated:
            raise ValueError(f"seeds must be distinct (each seed is one full run); {repeated} appear more than once")
        return value

    @field_validator("latency_batch")
    @classmethod
    def _sane_latency_batch(cls, value: int) -> int:
        return limits.check(value, limits.BATCH, "samples per batch")

    @field_validator("knowledge", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _assistants_distill(self) -> Recipe:
        if self.assistants is not None and (self.scheme is not None or self.peers is not None):
            raise ValueError("assistants belong to a distillation recipe (teacher, student, knowledge); remove "
                             "assistants or scheme and peers")
        return self

    @model_validator(mode="after")
    def _one_kind_of_run(self) -> Recipe:
        if self.teacher is not None and self.teachers is not None:
            raise ValueError("give teacher (one) or teachers (several), not both")
        if self.weighting is not None and self.teachers is None:
            raise ValueError("weighting weighs several teachers: give teachers (a list) instead of teacher")
        pipelines = [name for name in PIPELINES if getattr(self, name) is not None]
        if len(pipelines) > 1:
            raise ValueError(f"one pipeline per recipe; got {', '.join(pipelines)}: keep one")
        if pipelines:
            missing = [key for key in ("teacher", "student") if getattr(self, key) is None]
            extra = [key for key in ("teachers", "knowledge", "scheme", "peers", "assistants")
                     if getattr(self, key) is not None]
            if missing or extra:
                article = "an" if pipelines[0][0] in "aeiou" else "a"
                raise ValueError(f"{article} {pipelines[0]} recipe needs teacher and student"
                                 + (f" and no {', '.join(extra)}" if extra else "")
                                 + (f"; missing {', '.join(missing)}" if missing else ""))
            return self
        distill = {"teacher": self.teacher or self.teachers, "student": self.student, "knowledge": self.knowledge}
        scheme = {"scheme": self.scheme, "peers": self.peers}
        if self.scheme is None and self.peers is None:
            missing = [key for key, value in distill.items() if value is None]
            if missing:
                raise ValueError(f"a distillation recipe needs {', '.join(missing)} (teacher or teachers; or give "
                                 "scheme and peers)")
        else:
            missing = [key for key, value in scheme.items() if value is None]
            extra = [key for key, value in distill.items() if value is not None]
            if missing or extra:
                raise ValueError("a scheme recipe needs scheme and peers"
                                 + (f" and no {', '.join(extra)}" if extra else f"; missing {', '.join(missing)}"))
        return self
