"""DistillationTrainer: a transformers.Trainer whose loss is a Mentor objective, on tiny BERT models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")  # the Trainer needs it (transformers[torch])

import mentor  # noqa: E402
from mentor.errors import MentorError  # noqa: E402
from mentor.integrations.hf import DistillationTrainer  # noqa: E402


def bert(hidden: int, layers: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    config = transformers.BertConfig(vocab_size=100, hidden_size=hidden, num_hidden_layers=layers,
                                     num_attention_heads=2, intermediate_size=2 * hidden, num_labels=3,
                                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return transformers.BertForSequenceClassification(config)


class Tokens(torch.utils.data.Dataset):
    """Random token sequences of one length, with labels and each sample's index."""

    def __init__(self, size: int, length: int = 6) -> None:
        generator = torch.Generator().manual_seed(0)
        self.ids = torch.randint(1, 100, (size, length), generator=generator)
        self.labels = torch.randint(0, 3, (size,), generator=generator)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        return {"input_ids": self.ids[index], "attention_mask": torch.ones_like(self.ids[index]),
                "labels": self.labels[index], "index": index}


def arguments(tmp_path: Path, steps: int = 2) -> transformers.TrainingArguments:
    return transformers.TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4, max_steps=steps,
                                          learning_rate=1e-2, report_to=[], use_cpu=True, save_strategy="no",
                                          logging_strategy="no", disable_tqdm=True, seed=0)


def test_loss_is_the_objective_on_the_batch(tmp_path: Path) -> None:
    student, teacher, data = bert(16, 1, 0), bert(32, 2, 1), Tokens(4)
    trainer = DistillationTrainer(model=student, teacher=teacher, method="kd",
                                  params={"temperature": 2.0, "alpha": 0.5}, args=arguments(tmp_path),
                                  train_dataset=data)
    batch = transformers.default_data_collator([data[i] for i in range(4)])
    loss = trainer.compute_loss(student, batch)
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    with torch.no_grad():
        s, t = student(**inputs).logits, teacher(**inputs).logits
    # L = (1 - a) CE + a tau^2 KL(p_T^tau || p_S^tau), a = 0.5, tau = 2, KL summed over classes, mean over samples
    p_t = F.softmax(t / 2, dim=1)
    kl = (p_t * (p_t.log() - F.log_softmax(s / 2, dim=1))).sum(1).mean()
    expected = 0.5 * F.cross_entropy(s, batch["labels"]) + 0.5 * 4 * kl
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def _changed(before: dict[str, torch.Tensor], model: nn.Module) -> bool:
    return any(not torch.equal(before[name], value) for name, value in model.state_dict().items())


def test_training_steps_student_and_adapter_not_teacher(tmp_path: Path) -> None:
    student, teacher, data = bert(16, 1, 0), bert(32, 2, 1), Tokens(8)
    objective = mentor.Objective(mentor.terms.CE(), mentor.terms.KL(temperature=2.0),
                                 mentor.terms.Distance(student="bert.pooler", teacher="bert.pooler", adapter="linear"))
    trainer = DistillationTrainer(model=student, teacher=teacher, method=objective, args=arguments(tmp_path),
                                  train_dataset=data)
    teacher_before, student_before = _snapshot(teacher), _snapshot(student)
    trainer.create_optimizer()  # binds on the first batch: the adapter exists from here on
    adapter_before = [p.detach().clone() for p in objective.parameters()]
    trainer.train()
    adapter = list(objective.parameters())
    assert all(not torch.equal(before, after) for before, after in zip(adapter_before, adapter, strict=True))
    assert adapter and all(p.device == next(student.parameters()).device for p in adapter)
    grouped = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert {id(p) for p in adapter} <= grouped
    assert not {id(p) for p in teacher.parameters()} & grouped
    assert _changed(student_before, student)
    assert not _changed(teacher_before, teacher)
    assert trainer.state.global_step == 2


def test_teacher_cache_by_index(tmp_path: Path) -> None:
    class Counting(nn.Module):
        """A plain module returning a logits tensor, counting its calls."""

        def __init__(self) -> None:
            super().__init__()
            self.embed, self.calls = nn.EmbeddingBag(100, 3), 0

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
            self.calls += 1
            return self.embed(input_ids)

    teacher = Counting()
    trainer = DistillationTrainer(model=bert(16, 1, 0), teacher=teacher, method="kd", cache_teacher=True,
                                  args=arguments(tmp_path, steps=3), train_dataset=Tokens(4))
    trainer.train()
    assert teacher.calls == 1  # the 4 samples are one batch: steps 2 and 3 read the cache


def test_missing_columns_are_named(tmp_path: Path) -> None:
    student = bert(16, 1, 0)
    trainer = DistillationTrainer(model=student, teacher=bert(32, 2, 1), args=arguments(tmp_path),
                                  cache_teacher=True)
    batch = {"input_ids": torch.ones(2, 3, dtype=torch.long)}
    with pytest.raises(MentorError, match="'labels' column"):
        trainer.compute_loss(student, batch)
    with pytest.raises(MentorError, match="'index' column"):
        trainer.compute_loss(student, {**batch, "labels": torch.tensor([0, 1])})


def test_token_level_logits_are_named(tmp_path: Path) -> None:
    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(100, 3)

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
            return self.embed(input_ids)  # (batch, tokens, classes)

    student = Tagger()
    trainer = DistillationTrainer(model=student, teacher=Tagger(), args=arguments(tmp_path))
    batch = {"input_ids": torch.ones(2, 3, dtype=torch.long), "labels": torch.tensor([0, 1])}
    with pytest.raises(MentorError, match=r"Got logits of shape \(2, 3, 3\)"):
        trainer.compute_loss(student, batch)


def test_a_plain_student_predicts_through_the_trainer(tmp_path: Path) -> None:
    class Bag(nn.Module):
        """A plain module returning a logits tensor."""

        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.EmbeddingBag(100, 3)

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
            return self.embed(input_ids)

    student = Bag()
    trainer = DistillationTrainer(model=student, teacher=bert(32, 2, 1), args=arguments(tmp_path))
    prediction = trainer.predict(Tokens(4))
    with torch.no_grad():
        expected = student(Tokens(4).ids)
    assert torch.allclose(torch.as_tensor(prediction.predictions), expected, atol=1e-6)
    assert prediction.metrics["test_loss"] > 0


def pooler_objective(seed: int) -> mentor.Objective:
    torch.manual_seed(seed)  # the adapter is made at binding: different seeds, different initial adapters
    return mentor.Objective(mentor.terms.CE(), mentor.terms.Distance(student="bert.pooler", teacher="bert.pooler",
                                                                      adapter="linear"))


def test_a_resumed_trainer_continues_with_its_saved_adapter(tmp_path: Path) -> None:
    saving = transformers.TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4, max_steps=2,
                                            learning_rate=1e-2, report_to=[], use_cpu=True, save_strategy="steps",
                                            save_steps=2, logging_strategy="no", disable_tqdm=True, seed=0)
    first = pooler_objective(0)
    DistillationTrainer(model=bert(16, 1, 0), teacher=bert(32, 2, 1), method=first, args=saving,
                        train_dataset=Tokens(8)).train()
    saved = [p.detach().clone() for p in first.parameters()]
    assert (tmp_path / "checkpoint-2" / "mentor_objective.pt").is_file()
    second = pooler_objective(5)
    resumed = DistillationTrainer(model=bert(16, 1, 0), teacher=bert(32, 2, 1), method=second, args=saving,
                                  train_dataset=Tokens(8))
    resumed.create_optimizer()
    assert not all(torch.equal(a, b) for a, b in zip(saved, second.parameters(), strict=True))
    resumed.train(resume_from_checkpoint=str(tmp_path / "checkpoint-2"))
    assert all(torch.equal(a, b) for a, b in zip(saved, second.parameters(), strict=True))
