"""Hugging Face ``datasets`` tables as data: in memory, streamed from disk, and from a recipe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from mentor.cli import main
from mentor.data import load_table
from mentor.data.tables import TableRows
from mentor.errors import MentorError

datasets = pytest.importorskip("datasets")
PIL = pytest.importorskip("PIL.Image")


def grey_table(rows: int = 40, seed: int = 0) -> object:
    """``rows`` 4x3 grey images whose every pixel is ``10 * label + row % 5``; 3 classes."""
    labels = [row % 3 for row in range(rows)]
    images = [PIL.fromarray(np.full((4, 3), 10 * label + row % 5, dtype=np.uint8)) for row, label in enumerate(labels)]
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(num_classes=3)})
    return datasets.Dataset.from_dict({"image": images, "label": labels}, features=features)


def test_a_grey_image_table_becomes_scaled_channel_first_inputs() -> None:
    table = datasets.DatasetDict({"train": grey_table(30), "test": grey_table(6)})
    splits = load_table(table, validation=0.0, normalize=False)
    assert splits.train.inputs.shape == (30, 1, 4, 3) and splits.test.inputs.shape == (6, 1, 4, 3)
    assert splits.num_classes == 3 and splits.input_shape == (1, 4, 3)
    # row 7: label 1, pixel 10 * 1 + 7 % 5 = 12, scaled to 12 / 255
    assert int(splits.train.targets[7]) == 1
    assert torch.allclose(splits.train.inputs[7], torch.full((1, 4, 3), 12 / 255))


def test_rgb_images_are_transposed_to_channels_first() -> None:
    pixels = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)  # H=2, W=3, C=3
    table = datasets.Dataset.from_dict({"image": [PIL.fromarray(pixels)] * 8, "label": [0, 1] * 4},
                                       features=datasets.Features({"image": datasets.Image(),
                                                                   "label": datasets.Value("int64")}))
    splits = load_table(table, validation=0.0, normalize=False)
    assert splits.input_shape == (3, 2, 3)
    # channel 2, row 1, column 0 holds pixels[1, 0, 2] = 1*9 + 0*3 + 2 = 11
    assert float(splits.train.inputs[0, 2, 1, 0]) == pytest.approx(11 / 255)
    assert splits.num_classes == 2  # no ClassLabel: the largest label + 1


def test_streamed_rows_equal_the_in_memory_samples(tmp_path: Path) -> None:
    grey_table(60).save_to_disk(str(tmp_path / "table"))
    memory = load_table(tmp_path / "table", validation=0.2, seed=3)
    streamed = load_table(tmp_path / "table", validation=0.2, seed=3, stream=True)
    assert isinstance(streamed.train, TableRows)
    assert (len(streamed.train), len(streamed.validation), len(streamed.test)) == (
        len(memory.train), len(memory.validation), len(memory.test))
    for part in ("train", "validation", "test"):
        rows, array = getattr(streamed, part), getattr(memory, part)
        for index in (0, len(rows) - 1):
            inputs, label = rows[index]
            assert label == int(array.targets[index])
            assert torch.allclose(inputs, array.inputs[index], atol=1e-6)


def test_token_columns_become_named_tensors(tmp_path: Path) -> None:
    ids = [[101, 7 + row, 102, 0] for row in range(12)]
    masks = [[1, 1, 1, 0]] * 12
    datasets.Dataset.from_dict({"input_ids": ids, "attention_mask": masks, "label": [row % 2 for row in range(12)]}
                               ).to_parquet(str(tmp_path / "tokens.parquet"))
    splits = load_table(tmp_path / "tokens.parquet", validation=0.0)
    assert set(splits.train.inputs) == {"input_ids", "attention_mask"}
    assert splits.train.inputs["input_ids"].dtype == torch.int64
    assert splits.train.inputs["attention_mask"].shape == (len(splits.train), 4)


def test_a_table_trains_through_a_recipe(tmp_path: Path) -> None:
    grey_table(90).save_to_disk(str(tmp_path / "table"))
    recipe = {"name": "table", "data": {"name": "table", "root": str(tmp_path / "table"), "validation": 0.2,
                                        "table": {"stream": True}},
              "teacher": {"model": "mlp", "options": {"hidden": [8]}}, "student": {"model": "mlp",
                                                                                  "options": {"hidden": [4]}},
              "knowledge": [{"method": "kd"}], "train": {"epochs": 1, "batch_size": 16}, "latency_batch": 4}
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["run", str(tmp_path / "recipe.yaml"), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    assert (tmp_path / "run" / "summary.json").is_file()


@pytest.mark.parametrize(("change", "message"), [
    ({"inputs": "pixels"}, "The 'inputs' columns must be columns of the table (image, label). Got pixels"),
    ({"label": "class"}, "The 'label' column must be a column of the table (image, label). Got 'class'"),
])
def test_unknown_columns_are_named(change: dict[str, str], message: str) -> None:
    with pytest.raises(MentorError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_table(grey_table(12), **change)


def test_bad_tables_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(MentorError, match="no 'train' split .splits: test.; name the training split 'train'"):
        load_table(datasets.DatasetDict({"test": grey_table(6)}))
    with pytest.raises(MentorError, match="must be a folder written by save_to_disk or a .*file; it is missing"):
        load_table(tmp_path / "nothing")
    texts = datasets.Dataset.from_dict({"text": ["a b", "c d"] * 4, "label": [0, 1] * 4})
    with pytest.raises(MentorError, match="column 'text' holds texts: give tokenizer="):
        load_table(texts)
    with pytest.raises(MentorError, match="Got list instead"):
        load_table([1, 2])
