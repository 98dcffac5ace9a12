"""Recipe validation: every mistake gives a one-line error naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from mentor.errors import MentorError
from mentor.recipes import builtin_recipes, load_recipe, validate
from mentor.recipes.build import build_job
from mentor.recipes.load import apply_overrides, read_yaml

MINIMAL = {"teacher": {"model": "mlp-small"}, "student": {"model": "mlp-tiny"}, "knowledge": {"method": "kd"}}


def recipe(**changes: object) -> dict:
    data = {key: dict(value) if isinstance(value, dict) else value for key, value in MINIMAL.items()}
    data.update(changes)
    return data


@pytest.mark.parametrize("name", sorted(builtin_recipes()))
def test_every_builtin_recipe_validates(name: str) -> None:
    assert load_recipe(name).name


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (recipe(trian={}), r"unknown recipe key 'trian'; nearest: train"),
        (recipe(train={"epoch": 3}), r"unknown recipe key 'train.epoch'; nearest: epochs"),
        (recipe(train={"epochs": "many"}), r"recipe key 'train.epochs': .*integer.*got 'many'"),
        (recipe(train={"epochs": 0}), r"recipe key 'train.epochs': .*greater than 0"),
        (recipe(train={"optimizer": {"name": "rmsprop"}}), r"recipe key 'train.optimizer.name'.*'sgd', 'adam'"),
        (recipe(data={"validation": 1.5}), r"recipe key 'data.validation'"),
        ({"student": {"model": "x"}, "knowledge": {"method": "kd"}}, r"recipe: a distillation recipe needs teacher"),
        (recipe(scheme={"name": "dml"}), r"a scheme recipe needs scheme and peers and no teacher, student, knowledge"),
        (recipe(seeds=[]), r"recipe key 'seeds'"),
        (recipe(teacher={"modle": "x"}), r"unknown recipe key 'teacher.modle'; nearest: model"),
    ],
)
def test_invalid_recipes_name_the_key(data: dict, message: str) -> None:
    with pytest.raises(MentorError, match=message):
        validate(data)


def test_overrides_parse_yaml_values_and_reach_one_method_lists() -> None:
    data = apply_overrides(recipe(), ["train.epochs=7", "knowledge.params.temperature=2.5", "seeds=[1, 2]"])
    parsed = validate(data)
    assert parsed.train.epochs == 7 and parsed.seeds == [1, 2]
    assert parsed.knowledge[0].params == {"temperature": 2.5}
    with pytest.raises(MentorError, match="--set expects key=value"):
        apply_overrides(recipe(), ["train.epochs"])


def test_malformed_yaml_and_non_mapping_give_one_line_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(MentorError, match=r"not valid YAML at line"):
        read_yaml(bad)
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(MentorError, match="must be a mapping"):
        read_yaml(bad)
    with pytest.raises(MentorError, match="unknown recipe 'quickstrt'; nearest: quickstart"):
        load_recipe("quickstrt")


def test_yaml_tags_that_would_run_code_are_refused(tmp_path: Path) -> None:
    evil = tmp_path / "evil.yaml"
    evil.write_text("name: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(MentorError, match="not valid YAML"):
        read_yaml(evil)


def test_building_a_job_checks_names_early() -> None:
    with pytest.raises(MentorError, match="unknown model 'mlp-tny'; nearest: mlp-tiny"):
        build_job(validate(recipe(student={"model": "mlp-tny"}), ), progress=False).student()
    with pytest.raises(MentorError, match="unknown dataset 'digit'"):
        build_job(validate(recipe(data={"name": "digit"})), progress=False)


def test_data_offset_reaches_the_loaded_splits_and_is_refused_for_tables() -> None:
    job = build_job(validate(recipe(data={"name": "digits", "offset": 100, "limit": 200})), progress=False)
    splits = job.load_data(0)
    assert len(splits.train) + len(splits.validation or []) == 200 and splits.recipe["offset"] == 100
    with pytest.raises(MentorError, match=r"recipe key 'data.offset': .*greater than or equal to 0"):
        validate(recipe(data={"offset": -1}))
    table = recipe(data={"root": "rows.csv", "offset": 5, "table": {"label": "label"}})
    with pytest.raises(MentorError, match=r"'data.offset' is not available for a data.table; got 5"):
        build_job(validate(table), progress=False)


def test_methods_combine_with_weights_and_schedules() -> None:
    from mentor.recipes.build import build_plan

    parsed = validate(recipe(knowledge=[
        {"method": "kd", "params": {"temperature": 2.0, "alpha": 0.5}},
        {"method": "at", "params": {"student": ["stage1"], "teacher": ["stage1"]}, "weight": 0.5,
         "schedule": {"warmup": 2, "rampdown_from": 8}},
    ]))
    objective = build_plan(parsed.knowledge)
    assert list(objective.terms) == ["ce", "kl", "at"]
    assert objective.terms["ce"].weight == 0.5 and objective.terms["kl"].weight == 0.5
    at = objective.terms["at"]
    from mentor.knowledge import create

    unscaled = create("at", student=["stage1"], teacher=["stage1"]).terms["at"].weight
    assert at.weight == pytest.approx(0.5 * unscaled)
    assert at.weight_at(1.0, 10) == pytest.approx(at.weight / 2)  # half-way through the warm-up
    assert at.weight_at(9.0, 10) == pytest.approx(at.weight / 2)  # half-way through the ramp-down
    with pytest.raises(MentorError, match=r"recipe key 'knowledge.1.schedule.warmup'"):
        validate(recipe(knowledge=[{"method": "kd"}, {"method": "at", "schedule": {"warmup": -1}}]))
