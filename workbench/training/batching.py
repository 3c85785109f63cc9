"""Training data as tokenized columns, batches without duplicate texts, and padding.

Texts are tokenized once when training starts (not every epoch); a batch is padded to its
own longest row when it is assembled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from workbench.encoding import check_unicode

LABEL_COLUMNS = ("label", "labels", "score", "scores")


def as_columns(data: Any) -> dict[str, list[Any]]:
    """A ``datasets.Dataset``, a dict of lists or a list of dicts -> a dict of equal-length lists."""
    if hasattr(data, "column_names") and hasattr(data, "to_dict"):
        columns = {name: list(data[name]) for name in data.column_names}
    elif isinstance(data, dict):
        columns = {k: list(v) for k, v in data.items()}
    elif isinstance(data, Sequence) and data and isinstance(data[0], dict):
        columns = {k: [row[k] for row in data] for k in data[0]}
    else:
        raise TypeError(f"training data must be a datasets.Dataset, a dict of lists or a list of dicts; got {type(data).__name__}")
    lengths = {k: len(v) for k, v in columns.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"training columns differ in length: {lengths}")
    if not columns or not next(iter(lengths.values())):
        raise ValueError("training data is empty")
    return columns


class TokenizedData:
    """Text columns tokenized once, plus an optional label column.

    Args:
        data: rows with one or more text columns and optionally a label column (``label``,
            ``score``; a number per row, or a vector per row for distillation).
        tokenizer: a fast tokenizer.
        max_seq_length: truncation length.
        label_column: the label column's name, if it is not one of the usual ones.

    Example:
        >>> from workbench.models import resolve_model_path
        >>> from transformers import AutoTokenizer
        >>> tok = AutoTokenizer.from_pretrained(str(resolve_model_path("all-MiniLM-L6-v2")))
        >>> data = TokenizedData({"anchor": ["a cat", "a dog"], "positive": ["a kitten", "a puppy"]}, tok, 32)
        >>> data.text_columns, len(data)
        (['anchor', 'positive'], 2)
        >>> features, labels = data.batch([0, 1], torch.device("cpu"))  # one dict per column
        >>> features[0]["input_ids"].shape, labels is None
        (torch.Size([2, 4]), True)
    """

    def __init__(self, data: Any, tokenizer: Any, max_seq_length: int, label_column: str | None = None):
        columns = as_columns(data)
        if label_column is None:
            label_column = next((c for c in LABEL_COLUMNS if c in columns), None)
        elif label_column not in columns:
            raise ValueError(f"label column {label_column!r} not in the data (columns: {', '.join(columns)})")
        self.text_columns = [c for c in columns if c != label_column]
        for name in self.text_columns:
            for i, value in enumerate(columns[name]):
                if not isinstance(value, str):
                    raise TypeError(
                        f"column {name!r} row {i} is {type(value).__name__}, not text; name a numeric column "
                        f"'label' or 'score', or pass label_column="
                    )
                if not value.isascii():
                    check_unicode(value, f"column {name!r} row {i}")
        self.texts = {name: columns[name] for name in self.text_columns}
        self.labels: torch.Tensor | None = None
        if label_column is not None:
            labels = torch.as_tensor(np.asarray(columns[label_column], dtype=np.float32))
            if not torch.isfinite(labels).all():
                bad = int((~torch.isfinite(labels)).nonzero()[0][0])
                raise ValueError(f"label column {label_column!r} has a non-finite value at row {bad}")
            self.labels = labels
        self.label_column = label_column
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.with_token_types = "token_type_ids" in tokenizer.model_input_names
        self.ids = {
            name: tokenizer(texts, truncation=True, max_length=max_seq_length, padding=False)["input_ids"]
            for name, texts in self.texts.items()
        }

    def __len__(self) -> int:
        return len(next(iter(self.ids.values())))

    def batch(self, rows: Sequence[int], device: torch.device) -> tuple[list[dict[str, torch.Tensor]], torch.Tensor | None]:
        """Padded features, one dict per text column, and the labels of these rows."""
        features = []
        for name in self.text_columns:
            ids = self.ids[name]
            width = max(len(ids[r]) for r in rows)
            arr = np.full((len(rows), width), self.pad_id, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for i, r in enumerate(rows):
                arr[i, : len(ids[r])] = ids[r]
                mask[i, : len(ids[r])] = 1
            feats = {"input_ids": torch.from_numpy(arr).to(device), "attention_mask": torch.from_numpy(mask).to(device)}
            if self.with_token_types:
                feats["token_type_ids"] = torch.zeros_like(feats["input_ids"])
            features.append(feats)
        labels = None if self.labels is None else self.labels[list(rows)].to(device)
        return features, labels

    def epoch_batches(self, epoch: int, batch_size: int, seed: int, no_duplicates: bool, drop_last: bool) -> list[list[int]]:
        """The batches of one epoch: a seeded shuffle, so a resumed run sees the same batches."""
        gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
        order = torch.randperm(len(self), generator=gen).tolist()
        if not no_duplicates:
            batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        else:
            batches = self._no_duplicate_batches(order, batch_size)
        if drop_last and batches and len(batches[-1]) < batch_size:
            batches.pop()
        return [b for b in batches if b]

    def _no_duplicate_batches(self, order: list[int], batch_size: int) -> list[list[int]]:
        """Fill each batch in shuffled order, deferring a row whose text is already in it."""
        batches: list[list[int]] = []
        remaining = order
        while remaining:
            batch: list[int] = []
            seen: set[str] = set()
            deferred: list[int] = []
            for pos, r in enumerate(remaining):
                if len(batch) == batch_size:
                    deferred.extend(remaining[pos:])
                    break
                texts = [self.texts[c][r] for c in self.text_columns]
                if any(t in seen for t in texts) or len(set(texts)) < len(texts):
                    deferred.append(r)
                    continue
                batch.append(r)
                seen.update(texts)
            if not batch:  # only rows that repeat a text within themselves are left
                batch = deferred[:batch_size]
                deferred = deferred[batch_size:]
            batches.append(batch)
            remaining = deferred
        return batches
