"""A tiny text classification set and tokenizer, made offline, and tiny BERT configurations."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

WORDS = {"sport": ["goal", "match", "team", "score"], "politics": ["vote", "party", "minister", "law"],
         "tech": ["chip", "phone", "software", "data"]}
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB = SPECIAL + [word for words in WORDS.values() for word in words]

TINY_BERT: dict[str, Any] = {"model_type": "bert", "vocab_size": len(VOCAB), "hidden_size": 16,
                             "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32,
                             "max_position_embeddings": 32}
SMALLER_BERT: dict[str, Any] = {**TINY_BERT, "hidden_size": 8, "num_hidden_layers": 1, "intermediate_size": 16}


@pytest.fixture(scope="session")
def tokenizer_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A word-piece tokenizer over :data:`VOCAB`, saved like a Hugging Face model's."""
    transformers = pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("tokenizer")
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    transformers.BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def text_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 short texts per topic, 3 topics: root/<topic>/<n>.txt, mostly words of their topic."""
    root = tmp_path_factory.mktemp("texts")
    rng = random.Random(0)
    every = [word for words in WORDS.values() for word in words]
    for topic, words in WORDS.items():
        (root / topic).mkdir()
        for index in range(20):
            text = " ".join(rng.choice(words if rng.random() < 0.8 else every) for _ in range(10))
            (root / topic / f"{index:02d}.txt").write_text(text, encoding="utf-8")
    return root
