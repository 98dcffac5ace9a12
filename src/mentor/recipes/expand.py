"""Building a knowledge-expansion run from a recipe's ``expand`` section (with its ``teacher``, ``student`` and
``train``)."""

from __future__ import annotations

from dataclasses import replace

from mentor.data import ArrayDataset, Splits
from mentor.errors import MentorError
from mentor.pipelines.expand import ExpandJob
from mentor.pipelines.expand_labels import Curriculum, PseudoLabeling, split_labels
from mentor.pipelines.options import fit_settings
from mentor.recipes import schema
from mentor.recipes.build import _data_and_models, pipeline_parts
from mentor.schemes.online.peers import Distortion


def build_expand_job(recipe: schema.Recipe, progress: bool = True, trust_code: bool = False) -> ExpandJob:
    """An :class:`ExpandJob`: ``teacher`` learns the labeled samples (``teacher.train``, default the recipe's
    ``train``), ``student`` is every round's student and the baseline, trained with ``train`` and the noise of
    ``expand``."""
    load_splits, model = _data_and_models(recipe, trust_code)
    teacher, student, spec = pipeline_parts(recipe, "expand", "expand trains its teacher on the labeled samples it "
                                                               "draws per seed")
    if recipe.train.jitter:
        raise MentorError(f"recipe key 'train.jitter' ({recipe.train.jitter}): the students' shift is expand.shift "
                          "(with expand.input_noise); set train.jitter to 0")

    def load_data(seed: int) -> tuple[Splits, ArrayDataset]:
        splits = load_splits(seed)
        labeled, unlabeled = split_labels(splits.train, spec.labels, splits.num_classes, seed, spec.unlabeled)
        return replace(splits, train=labeled), unlabeled

    noise = Distortion(shift=spec.shift, noise=spec.input_noise)
    curriculum = Curriculum(spec.curriculum.phases, spec.curriculum.start) if spec.curriculum else None
    return ExpandJob(
        name=recipe.name,
        seeds=list(recipe.seeds),
        load_data=load_data,
        teacher=lambda: model(teacher),
        students=[lambda: model(student)],
        rounds=spec.rounds,
        teacher_settings=fit_settings(teacher.train or recipe.train, progress,
                                      augment=noise if spec.noisy_teacher and noise.active else None),
        settings=fit_settings(recipe.train, progress, augment=noise if noise.active else None),
        labeling=PseudoLabeling(soft=spec.soft, threshold=spec.threshold, balance=spec.balance,
                                per_class=spec.per_class),
        unlabeled_ratio=spec.unlabeled_ratio,
        curriculum=curriculum,
        baseline=spec.baseline,
        latency_batch=recipe.latency_batch,
    )
