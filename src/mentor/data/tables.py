"""Hugging Face ``datasets`` tables as training data, in memory or streamed from their memory-mapped Arrow files.

A table is given as a ``datasets.DatasetDict`` or ``datasets.Dataset`` object, or as a path: a folder written by
``save_to_disk``, or a ``.parquet``/``.csv``/``.json``/``.jsonl``/``.arrow`` file. Nothing downloads: a path is
read locally, never looked up on the Hub.

Splits: the ``train`` split is required (a single table is the training part); ``test`` is used when present,
otherwise a fixed stratified 25 % of the training part is held out, as for every dataset without an official
test split (:func:`mentor.data.splits.build_splits`); ``validation`` is carved from the training part.

Columns: ``inputs`` names the column(s) the model reads; by default the first of ``image``, ``img``,
``pixel_values``, ``input_ids`` (with ``attention_mask`` and ``token_type_ids`` when present) or ``text``
that the table has. An ``Image`` column becomes ``(N, C, H, W)`` float in ``[0, 1]``; a numeric or array column
a float tensor ``(N, ...)``; several columns named tensors (:data:`mentor.batch.Inputs`), e.g. token ids and
attention mask ``(N, L)``; a ``text`` column of strings is tokenized with ``tokenizer``
(:func:`mentor.data.text.tokenize`). ``label`` names the integer class column.

``stream=True`` keeps the rows on disk: the splits are :class:`TableRows` datasets read batch by batch through
the streamed path (:mod:`mentor.data.streamed`), so a table larger than memory can be distilled. Inputs are then
standardized per channel with the mean and std of the first :data:`STATS_ROWS` training rows (the in-memory
path uses every training row). Validation and test are carved by the same stratified splits from the label
column alone, so both paths train on the same samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from mentor.batch import Inputs, sample_shape
from mentor.data.arrays import check_labels, to_inputs
from mentor.data.dataset import RawData, Splits
from mentor.data.splits import TEST_FRACTION, TEST_SEED, build_splits, channel_stats, stratified_split
from mentor.errors import MentorError

FILE_BUILDERS = {".parquet": "parquet", ".csv": "csv", ".json": "json", ".jsonl": "json", ".arrow": "arrow"}
"""The ``datasets`` builder reading each kind of file."""
INPUT_COLUMNS = ("image", "img", "pixel_values", "input_ids", "text")
"""Columns taken as inputs, in this order, when ``inputs`` is not given."""
TOKEN_COLUMNS = ("input_ids", "attention_mask", "token_type_ids")
STATS_ROWS = 4096
"""Training rows whose mean and std standardize streamed inputs."""


def _datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise MentorError("Hugging Face tables need the optional package 'datasets': "
                          "pip install 'mentor[hf]'") from None
    return datasets


def open_table(source: Any) -> dict[str, Any]:
    """The splits of ``source`` by name (``{"train": table}`` for a single table), read locally."""
    datasets = _datasets()
    if isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        if path.is_dir():
            source = datasets.load_from_disk(str(path))
        elif path.suffix in FILE_BUILDERS and path.is_file():
            source = datasets.load_dataset(FILE_BUILDERS[path.suffix], data_files=str(path), split="train")
        else:
            raise MentorError(f"The table {str(path)!r} must be a folder written by save_to_disk or a "
                              f"{'/'.join(FILE_BUILDERS)} file; it is {'missing' if not path.exists() else 'neither'}")
    if isinstance(source, datasets.Dataset):
        return {"train": source}
    if isinstance(source, datasets.DatasetDict):
        if "train" not in source:
            raise MentorError(f"The table has no 'train' split (splits: {', '.join(source)}); name the training "
                              "split 'train'")
        return dict(source)
    raise MentorError(f"The table must be a datasets.Dataset, a DatasetDict or a path. Got {type(source).__name__} "
                      "instead.")


def input_columns(table: Any, inputs: str | Sequence[str] | None) -> list[str]:
    """The columns the model reads (checked against the table's columns)."""
    names = list(table.column_names)
    if inputs is None:
        found = next((name for name in INPUT_COLUMNS if name in names), None)
        if found is None:
            raise MentorError(f"The table has none of the input columns {', '.join(INPUT_COLUMNS)} (columns: "
                              f"{', '.join(names)}); name them with inputs=")
        return [name for name in TOKEN_COLUMNS if name in names] if found == "input_ids" else [found]
    chosen = [inputs] if isinstance(inputs, str) else list(inputs)
    missing = [name for name in chosen if name not in names]
    if missing or not chosen:
        raise MentorError(f"The 'inputs' columns must be columns of the table ({', '.join(names)}). Got "
                          f"{', '.join(missing) or 'none'} instead.")
    return chosen


def numpy_view(table: Any, columns: list[str]) -> bool:
    """Whether ``table`` already is a NumPy-formatted view of exactly ``columns`` (a streamed split's table)."""
    return table.format["type"] == "numpy" and list(table.column_names) == columns


def _arrays(table: Any, columns: list[str], rows: list[int] | None = None) -> dict[str, np.ndarray]:
    """The input columns of ``rows`` (all rows by default) as stacked NumPy arrays; images ``(N, C, H, W)``."""
    view = table if numpy_view(table, columns) else table.select_columns(columns).with_format("numpy")
    batch = view[:] if rows is None else view[rows]
    arrays = {}
    for name in columns:
        array = batch[name]
        if array.dtype == object:
            raise MentorError(f"The rows of column {name!r} differ in shape; make them one shape first (table.map: "
                              "resize images, pad token ids)")
        is_image = type(table.features[name]).__name__ == "Image"
        arrays[name] = array.transpose(0, 3, 1, 2) if is_image and array.ndim == 4 else array
    return arrays


def columns_as_inputs(table: Any, columns: list[str], tokenizer: Any = None, max_length: int = 128,
                      rows: list[int] | None = None) -> Inputs:
    """The input columns of ``table`` (of ``rows`` only, if given) as one tensor, or named tensors for several
    columns (texts tokenized)."""
    if len(columns) == 1 and getattr(table.features[columns[0]], "dtype", None) == "string":
        if tokenizer is None:
            raise MentorError(f"column {columns[0]!r} holds texts: give tokenizer= (a Hugging Face tokenizer or its "
                              "folder) to turn them into token ids")
        from mentor.data.text import load_tokenizer, tokenize

        encoder = load_tokenizer(tokenizer) if isinstance(tokenizer, (str, Path)) else tokenizer
        texts = table[columns[0]] if rows is None else table.select(rows)[columns[0]]
        return tokenize(list(texts), encoder, max_length)
    arrays = _arrays(table, columns, rows)
    if len(arrays) > 1:  # token ids, masks: integers as they are
        return {name: torch.from_numpy(np.ascontiguousarray(array)) for name, array in arrays.items()}
    (name, array), = arrays.items()
    if np.issubdtype(array.dtype, np.integer) and array.dtype != np.uint8:
        array = array.astype(np.float32)
    return to_inputs(array, f"column {name!r}")


def labels(table: Any, label: str) -> torch.Tensor:
    """The integer class column ``label`` as ``(N,)`` int64."""
    if label not in table.column_names:
        raise MentorError(f"The 'label' column must be a column of the table ({', '.join(table.column_names)}). "
                          f"Got {label!r} instead.")
    values = np.asarray(table.with_format("numpy")[label])
    if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer):
        raise MentorError(f"The 'label' column {label!r} must hold one integer class per row; got dtype "
                          f"{values.dtype} and shape {values.shape}")
    return torch.from_numpy(values.astype(np.int64))


def num_classes_of(table: Any, label: str, targets: torch.Tensor) -> int:
    """The class count: from a ``ClassLabel`` feature, else the largest label + 1."""
    feature = table.features[label]
    return int(getattr(feature, "num_classes", 0) or int(targets.max()) + 1)


class TableRows(Dataset):
    """Rows ``indices`` of a table as ``(inputs, label)`` samples, decoded one at a time (the streamed path).

    Args:
        table: a ``datasets.Dataset``.
        indices: the rows of this split ``(n,)``; targets: their labels ``(n,)``.
        columns: the input columns; tokenizer, max_length: for a column of texts (a loaded tokenizer).
        mean, std: per-channel statistics ``(C,)`` that standardize float inputs (``None``: as they are).
    """

    def __init__(self, table: Any, indices: torch.Tensor, targets: torch.Tensor, columns: list[str],
                 tokenizer: Any = None, max_length: int = 128, mean: torch.Tensor | None = None,
                 std: torch.Tensor | None = None) -> None:
        self.table = table.select_columns(columns).with_format("numpy")  # made once, not per row
        self.indices, self.targets, self.columns = indices, targets, columns
        self.tokenizer, self.max_length, self.mean, self.std = tokenizer, max_length, mean, std

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[Inputs, int]:
        row = int(self.indices[index])
        inputs = columns_as_inputs(self.table, self.columns, self.tokenizer, self.max_length, rows=[row])
        if isinstance(inputs, dict):
            return {name: value[0] for name, value in inputs.items()}, int(self.targets[index])
        sample = inputs[0]
        if self.mean is not None and self.std is not None:
            shape = (-1,) + (1,) * (sample.dim() - 1)
            sample = (sample - self.mean.view(shape)) / self.std.view(shape)
        return sample, int(self.targets[index])


def load_table(source: Any, *, inputs: str | Sequence[str] | None = None, label: str = "label",
               tokenizer: Any = None, max_length: int = 128, validation: float = 0.1, seed: int = 0,
               limit: int | None = None, normalize: bool = True, stream: bool = False) -> Splits:
    """Train/validation/test splits of a Hugging Face table (see the module's description).

    Args:
        source: a ``DatasetDict``, a ``Dataset``, a ``save_to_disk`` folder or a data file.
        inputs: the input column(s) (default: found by name); label: the class column.
        tokenizer, max_length: for a column of texts.
        validation, seed, limit, normalize: as :func:`mentor.data.load`.
        stream: keep the rows on disk (:class:`TableRows`) instead of loading them into memory.
    """
    tables = open_table(source)
    train, test = tables["train"], tables.get("test")
    columns = input_columns(train, inputs)
    name = str(source) if isinstance(source, (str, Path)) else "table"
    if tokenizer is not None and isinstance(tokenizer, (str, Path)):
        from mentor.data.text import load_tokenizer

        tokenizer = load_tokenizer(tokenizer)
    targets = labels(train, label)
    classes = num_classes_of(train, label, targets)
    check_labels(targets, classes, f"column {label!r}")
    test_targets = None if test is None else labels(test, label)
    if test_targets is not None:
        check_labels(test_targets, classes, f"test column {label!r}")
    if stream:
        return _streamed(name, (train, targets), None if test is None else (test, test_targets), columns, classes,
                         tokenizer, max_length, validation, seed, limit, normalize)
    raw = RawData(columns_as_inputs(train, columns, tokenizer, max_length), targets,  # type: ignore[arg-type]
                  None if test is None else columns_as_inputs(test, columns, tokenizer, max_length),  # type: ignore[arg-type]
                  test_targets, classes)
    return build_splits(raw, name, validation=validation, seed=seed, limit=limit, normalize=normalize)


Labelled = tuple[Any, torch.Tensor]
"""A table and its label column."""


def _streamed(name: str, train: Labelled, test: Labelled | None, columns: list[str], classes: int, tokenizer: Any,
              max_length: int, validation: float, seed: int, limit: int | None, normalize: bool) -> Splits:
    """The streamed splits: row indices carved like :func:`build_splits`, rows decoded on demand."""
    (table, targets), train_rows = train, torch.arange(len(train[1]))
    if test is None:
        kept, held = stratified_split(targets, TEST_FRACTION, TEST_SEED)
        train_rows, (test_table, test_targets), test_rows = kept, train, held
    else:
        (test_table, test_targets), test_rows = test, torch.arange(len(test[1]))
    if limit is not None:
        train_rows, test_rows = train_rows[:limit], test_rows[:limit]
    validation_rows = None
    if validation > 0:
        kept, held = stratified_split(targets[train_rows], validation, seed)
        train_rows, validation_rows = train_rows[kept], train_rows[held]
    sample = columns_as_inputs(table, columns, tokenizer, max_length, rows=train_rows[:STATS_ROWS].tolist())
    mean = std = None
    if normalize and isinstance(sample, torch.Tensor) and sample.is_floating_point():
        mean, std = channel_stats(sample)

    def rows(part: Any, part_targets: torch.Tensor, indices: torch.Tensor) -> TableRows:
        return TableRows(part, indices, part_targets[indices], columns, tokenizer, max_length, mean, std)

    shape = sample_shape(sample)
    return Splits(name=name, train=rows(table, targets, train_rows),  # type: ignore[arg-type]
                  validation=None if validation_rows is None else rows(table, targets, validation_rows),  # type: ignore[arg-type]
                  test=rows(test_table, test_targets, test_rows), num_classes=classes,  # type: ignore[arg-type]
                  input_shape=shape, mean=mean, std=std)
