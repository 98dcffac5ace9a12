"""Named-tensor inputs (token ids and attention masks) through the data, the loop, taps, objectives and the cache."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

import mentor
from mentor.batch import Batch, count, cut, move, sample_shape, take
from mentor.cli import main
from mentor.data import ArrayDataset, BatchIterator
from mentor.engine import evaluate
from mentor.errors import MentorError
from mentor.losses.adapters import build_adapter
from mentor.schemes import Offline
from mentor.teachers.cache import TeacherCache
from mentor.teachers.frozen import freeze
from tests.ecosystem.conftest import SMALLER_BERT, TINY_BERT

transformers = pytest.importorskip("transformers")
from mentor.data.text import load_text  # noqa: E402 - after the skip: it tokenizes with transformers

NAMED = {"input_ids": torch.tensor([[5, 6], [7, 8], [9, 10]]), "attention_mask": torch.tensor([[1, 1], [1, 0], [1, 1]])}


def test_the_batch_helpers_treat_named_tensors_as_one_input() -> None:
    assert count(NAMED) == 3 and sample_shape(NAMED) == (2,)
    assert take(NAMED, torch.tensor([2, 0]))["input_ids"].tolist() == [[9, 10], [5, 6]]
    assert cut(NAMED, 1, 2)["attention_mask"].tolist() == [[1, 0]]
    assert move(NAMED, "cpu")["input_ids"].device.type == "cpu"
    assert len(Batch(NAMED, torch.zeros(3))) == 3


def test_a_dataset_of_named_tensors_batches_and_checks_lengths() -> None:
    data = ArrayDataset(NAMED, torch.tensor([0, 1, 0]))
    assert len(data) == 3 and len(data.subset(torch.tensor([1]))) == 1
    inputs, targets = next(iter(BatchIterator(data, 2, shuffle=True, seed=0)))
    assert set(inputs) == {"input_ids", "attention_mask"} and len(targets) == 2
    first = inputs["input_ids"][:, 0].tolist()
    assert [NAMED["attention_mask"][[5, 7, 9].index(token)].tolist() for token in first] \
        == inputs["attention_mask"].tolist()  # the rows of every tensor stay together
    with pytest.raises(MentorError, match="inputs and targets differ in length: 3 input_ids vs 2 targets"):
        ArrayDataset(NAMED, torch.tensor([0, 1]))


def test_load_text_tokenizes_a_folder(text_folder: Path, tokenizer_folder: Path) -> None:
    splits = load_text(text_folder, str(tokenizer_folder), max_length=12, validation=0.2)
    assert splits.num_classes == 3 and splits.input_shape == (12,)
    assert len(splits.train) + len(splits.validation) + len(splits.test) == 60
    ids = splits.train.inputs["input_ids"]
    assert ids.dtype == torch.long and ids.shape[1] == 12 and bool((ids[:, 0] == 2).all())  # [CLS] first
    assert set(splits.test.targets.tolist()) == {0, 1, 2}


def test_text_errors_are_one_line(tmp_path: Path, text_folder: Path) -> None:
    with pytest.raises(MentorError, match="text folder .* does not exist"):
        load_text(tmp_path / "absent", "x")
    with pytest.raises(MentorError, match="The 'tokenizer' of the text data must be a folder with a tokenizer"):
        load_text(text_folder, str(tmp_path))


def test_the_per_token_linear_adapter_maps_each_token() -> None:
    adapter = build_adapter("linear", torch.Size([2, 1]), torch.Size([2, 2]), "test")
    with torch.no_grad():
        adapter.weight.copy_(torch.tensor([[2.0], [-1.0]]))
        adapter.bias.copy_(torch.tensor([0.5, 0.0]))
    tokens = torch.tensor([[[1.0], [3.0]]])  # (B=1, L=2, D=1)
    assert adapter(tokens).tolist() == [[[2.5, -1.0], [6.5, -3.0]]]


@pytest.fixture()
def splits(text_folder: Path, tokenizer_folder: Path) -> mentor.data.Splits:
    return load_text(text_folder, str(tokenizer_folder), max_length=12, validation=0.2)


def test_fitnet_on_hidden_states_trains_the_student_and_its_regressor_only(splits: mentor.data.Splits) -> None:
    torch.manual_seed(0)
    teacher = mentor.models.create("hf-config", num_classes=3, **TINY_BERT)
    student = mentor.models.create("hf-config", num_classes=3, **SMALLER_BERT)
    stages = mentor.knowledge.create("fitnet", hint="hidden_states.2", guided="hidden_states.1", adapter="linear")
    scheme = Offline(student, stages[0].objective, teacher)
    batch = Batch(cut(splits.train.inputs, 0, 8), splits.train.targets[:8], torch.arange(8), len(splits.train))
    scheme.setup(batch)
    loss = scheme.loss(batch, 0.0, 1)
    loss.total.backward()
    encoder = student.bert.encoder.layer[0].attention.self.query.weight
    assert encoder.grad is not None and encoder.grad.abs().sum() > 0
    adapters = [p for p in stages[0].objective.parameters()]
    assert adapters and all(p.grad is not None for p in adapters)
    assert all(p.grad is None for p in teacher.parameters())
    assert student.classifier.weight.grad is None  # the hint stage reaches the guided layer, not the head


def test_kd_from_a_bert_teacher_runs_end_to_end_with_the_cache(splits: mentor.data.Splits, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MENTOR_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    teacher = mentor.models.create("hf-config", num_classes=3, **TINY_BERT)
    student = mentor.models.create("hf-config", num_classes=3, **SMALLER_BERT)
    result = mentor.distill(teacher, student, splits, mentor.knowledge.create("kd"), epochs=2, batch_size=8,
                            baseline=True, progress=False)
    assert {row.role for row in result.rows} == {"teacher", "student alone", "student distilled"}
    assert 0.0 <= evaluate(student, splits.test)["accuracy"] <= 1.0


def test_the_teacher_cache_serves_what_the_live_teacher_computes(splits: mentor.data.Splits, tmp_path: Path) -> None:
    teacher = freeze(mentor.models.create("hf-config", num_classes=3, **TINY_BERT))
    cache = TeacherCache.build(teacher, splits.train, ("hidden_states.1",), root=tmp_path)
    assert cache is not None
    rows = torch.tensor([3, 0, 5])
    live = teacher.outputs(take(splits.train.inputs, rows), ("hidden_states.1",))
    cached = cache.outputs(rows, torch.device("cpu"))
    assert torch.allclose(cached.logits, live.logits, atol=1e-5)
    assert torch.allclose(cached.features["hidden_states.1"], live.features["hidden_states.1"], atol=1e-5)


def test_a_recipe_distills_an_hf_teacher_into_an_hf_config_student(
    text_folder: Path, tokenizer_folder: Path, tmp_path: Path
) -> None:
    teacher_folder = tmp_path / "teacher"
    mentor.models.create("hf-config", num_classes=3, **TINY_BERT).save_pretrained(teacher_folder)
    for file in tokenizer_folder.iterdir():  # the teacher's tokenizer beside its weights, as a hub model has it
        (teacher_folder / file.name).write_bytes(file.read_bytes())
    recipe = {
        "name": "text-kd", "seeds": [0],
        "data": {"name": str(text_folder), "validation": 0.2, "text": {"max_length": 12}},
        "teacher": {"model": f"hf:{teacher_folder}", "output": "logits", "train": {"epochs": 1, "batch_size": 8}},
        "student": {"model": "hf-config", "options": SMALLER_BERT},
        "knowledge": {"method": "kd", "params": {"temperature": 2.0, "alpha": 0.5}},
        "train": {"epochs": 1, "batch_size": 8},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    assert main(["run", str(path), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    assert (tmp_path / "run" / "summary.json").exists()


def test_a_text_recipe_without_a_tokenizer_names_the_key(text_folder: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    recipe = {"name": "text", "data": {"name": str(text_folder), "text": {}},
              "teacher": {"model": "hf-config"}, "student": {"model": "hf-config"}, "knowledge": {"method": "kd"}}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    assert main(["run", str(path), "--out", str(tmp_path / "run")]) == 2
    assert "recipe key 'data.text.tokenizer' is needed" in capsys.readouterr().err
