"""Scored sentence pairs from any table: a csv/tsv/jsonl/json/parquet file, a ``datasets`` folder
or hub id, a ``Dataset``, a pandas DataFrame or a dict of columns.

:func:`load_pairs` returns :class:`ScoredPairs` (``sentences1``, ``sentences2``, ``scores``),
what :class:`workbench.evaluation.STSEvaluator` scores. Score scales do not matter: the
evaluator reports correlations, so 0–1, 0–5 and 1–10 scores give the same numbers.

Columns. ``columns=("s1", "s2", "score")`` names them. Without it the columns
``sentence1``, ``sentence2``, ``score`` are taken when all three are present; otherwise they
are found by kind when that is unambiguous: exactly two text columns (in table order: the first
is ``sentences1``) and exactly one numeric column. A column is numeric when most of its
non-empty cells read as numbers (so a stray ``"n/a"`` in the score column is reported as a bad
row, not taken for text). Anything else is a :class:`ColumnError` listing the columns and
their kinds.

Bad rows. Each of these is a :class:`~workbench.data.DataError` of one line naming the file,
the row and the column: a score that is not a number; a missing, NaN or infinite score; an
empty sentence (or one that is not text); a pair (same ``sentence1`` and ``sentence2``) seen
before. Rows are named by their file line for text formats (``line 7 (data row 6)``: the
header is line 1) and by their 1-based data row otherwise (``data row 6``). With
``skip_bad_rows=True`` such rows are dropped (the first of repeated pairs is kept) and
:attr:`ScoredPairs.skipped` counts them by reason. After that, fewer than 3 pairs, or scores
that are all equal, are an error too (a correlation needs them).

TSV is read with quoting off: a quote character is literal text (as in STS-B and SICK).

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "mine.csv"
    >>> _ = p.write_text("id,left,right,gold\\n1,A cat.,A kitten.,9\\n2,A car.,A road.,4\\n"
    ...                  "3,Rain.,Stocks fell.,1\\n", encoding="utf-8")
    >>> pairs = load_pairs(p, columns=("left", "right", "gold"))
    >>> pairs.sentences2, pairs.scores, pairs.name
    (['A kitten.', 'A road.', 'Stocks fell.'], [9.0, 4.0, 1.0], 'mine')
    >>> load_pairs(p)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    workbench.data.pairs.ColumnError: ...mine.csv: cannot tell which columns hold the pairs and the score: ...
"""

from __future__ import annotations

import math
import numbers
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .files import detect_format, is_number, read_records
from .sources import DataError, hub_enabled, hub_reachable

STS_COLUMNS: tuple[str, str, str] = ("sentence1", "sentence2", "score")
MIN_PAIRS = 3  # a correlation over 2 points is always ±1

# The reasons a row is bad, as counted in ScoredPairs.skipped.
NOT_A_NUMBER = "score not a number"
NO_SCORE = "score missing, NaN or infinite"
EMPTY_SENTENCE = "empty sentence"
DUPLICATE = "duplicate pair"

_SKIP_HINT = "skip_bad_rows=True (--skip-bad-rows) skips such rows"


class ColumnError(DataError, KeyError):
    """The pair or score columns are missing or cannot be told apart; the message lists the columns.

    A :class:`DataError` (so a ``ValueError``) and a ``KeyError``, as a missing column was before.
    """

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class ScoredPairs:
    """Sentence pairs with gold scores, checked, and where they came from.

    Attributes:
        sentences1: the first sentence of each pair.
        sentences2: the second sentence of each pair.
        scores: the gold score of each pair, as read (any scale).
        name: a short name for the data set (the file's stem, the folder's or hub id's last part).
        source: one line for people, e.g. ``"pairs.csv from /d/pairs.csv (200 pairs; columns a, b, score)"``.
        columns: the (sentence1, sentence2, score) columns used.
        skipped: bad rows skipped, by reason (empty unless ``skip_bad_rows``).
        first_skipped: the message of the first skipped row of each reason.
    """

    sentences1: list[str]
    sentences2: list[str]
    scores: list[float]
    name: str
    source: str
    columns: tuple[str, str, str]
    skipped: dict[str, int] = field(default_factory=dict)
    first_skipped: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.scores)

    def skipped_summary(self) -> str:
        """``"skipped 3 bad rows: 2 empty sentence, 1 duplicate pair"``, or ``""`` when none were."""
        total = sum(self.skipped.values())
        if not total:
            return ""
        reasons = ", ".join(f"{n} {reason}" for reason, n in self.skipped.items())
        return f"skipped {total} bad row{'s' if total > 1 else ''}: {reasons}"


@dataclass(frozen=True)
class _Table:
    """Columns of values and how to name a row in messages."""

    label: str  # the file, folder or hub id
    columns: list[str]
    data: Mapping[str, Sequence[Any]]
    lines: list[int] | None  # file line of each row (text formats), else None
    name: str  # the default data-set name
    description: str = ""  # a dataset's own one-line description (workbench.data.source), if any

    def describe(self, n_pairs: int, cols: Sequence[str]) -> str:
        return self.description or f"{self.name} from {self.label} ({n_pairs} pairs; columns {', '.join(cols)})"

    def __len__(self) -> int:
        return len(self.data[self.columns[0]]) if self.columns else 0

    def row(self, i: int) -> str:
        if self.lines is not None:
            return f"line {self.lines[i]} (data row {i + 1})"
        return f"data row {i + 1}"

    def where(self, i: int, columns: Sequence[str]) -> str:
        names = ", ".join(repr(c) for c in columns)
        return f"{self.label}, {self.row(i)}, column{'s' if len(columns) > 1 else ''} {names}"


def load_pairs(
    source: Any,
    columns: Sequence[str] | None = None,
    *,
    split: str | None = None,
    skip_bad_rows: bool = False,
    format: str | None = None,
    check: bool = True,
) -> ScoredPairs:
    """Read scored pairs from a file, a ``datasets`` folder or hub id, or a table in memory.

    Args:
        source: a csv/tsv/jsonl/json/parquet file; a folder written by ``Dataset.save_to_disk``
            (or ``DatasetDict.save_to_disk``); a hub id (``owner/name``, read with
            ``datasets.load_dataset`` when the hub is enabled and reachable); a
            ``datasets.Dataset``; a pandas DataFrame; or a dict of columns.
        columns: the (sentence1, sentence2, score) column names; by default found as the module
            docstring says.
        split: the split of a ``DatasetDict`` folder or hub data set (needed when it has several).
        skip_bad_rows: drop bad rows (counted in :attr:`ScoredPairs.skipped`) instead of raising.
        format: the file format when the extension does not say it.
        check: apply the bad-row rules and the 3-pair minimum; ``False`` takes the values as they
            are (only the columns are resolved), for data sets already checked, such as STS-B,
            whose dev split repeats 2 pairs and its test split 1.

    Returns:
        The :class:`ScoredPairs`.

    Raises:
        DataError: a missing or unreadable source, a bad row (unless skipped), fewer than 3 pairs,
            all scores equal.
        ColumnError: a named column is missing, or the columns cannot be told apart.
    """
    table = _open(source, split, format)
    cols = resolve_columns(table.label, table.columns, table.data, columns)
    if not check:
        s1, s2, scores = (list(table.data[c]) for c in cols)
        return ScoredPairs(s1, s2, scores, table.name, table.describe(len(scores), cols), cols)
    s1, s2, scores, skipped, first = _check_rows(table, cols, skip_bad_rows)
    if len(scores) < MIN_PAIRS:
        n_skipped = sum(skipped.values())
        after = f" after skipping {n_skipped} bad row{'s' if n_skipped > 1 else ''}" if skipped else ""
        raise DataError(
            f"{table.label}: {len(scores)} scored pair{'s' if len(scores) != 1 else ''}{after}; "
            f"at least {MIN_PAIRS} are needed for a correlation"
        )
    if all(s == scores[0] for s in scores):
        raise DataError(
            f"{table.label}, column {cols[2]!r}: all {len(scores)} scores equal {scores[0]:g}; "
            "a correlation with them is undefined"
        )
    return ScoredPairs(s1, s2, scores, table.name, table.describe(len(scores), cols), cols, skipped, first)


def resolve_columns(
    label: str, names: Sequence[str], data: Mapping[str, Sequence[Any]], columns: Sequence[str] | None = None
) -> tuple[str, str, str]:
    """The (sentence1, sentence2, score) columns of a table: named, standard, or found by kind.

    Args:
        label: the table's name in messages (a file path).
        names: the table's columns, in order.
        data: column name -> values.
        columns: three names given by the user, or ``None`` to find them.

    Returns:
        The three column names.

    Raises:
        ColumnError: a named column is missing, or no unambiguous choice exists.

    Example:
        >>> resolve_columns("t", ["id", "a", "b", "y"], {"id": [1, 2], "a": ["x", "y"], "b": ["u", "v"], "y": ["x", "z"]})
        Traceback (most recent call last):
        ...
        workbench.data.pairs.ColumnError: t: cannot tell which columns hold the pairs and the score: text columns 'a', 'b', 'y'; numeric columns 'id'; the data set has columns 'id', 'a', 'b', 'y'. Name them: columns=("s1", "s2", "score") in Python, --columns s1,s2,score on the command line
    """
    listed = ", ".join(repr(c) for c in names)
    if columns is not None:
        if isinstance(columns, str):
            columns = [c.strip() for c in columns.split(",")]
        cols = tuple(columns)
        if len(cols) != 3 or not all(isinstance(c, str) and c for c in cols):
            raise ColumnError(f"{label}: columns must be three names (sentence1, sentence2, score), got {columns!r}")
        if len(set(cols)) != 3:
            raise ColumnError(f"{label}: columns {cols!r} name a column twice")
        missing = [c for c in cols if c not in names]
        if missing:
            raise ColumnError(
                f"{label}: column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} not found; "
                f"the data set has columns {listed}"
            )
        return cols[0], cols[1], cols[2]
    if all(c in names for c in STS_COLUMNS):
        return STS_COLUMNS
    kinds = {name: column_kind(data[name]) for name in names}
    text = [n for n in names if kinds[n] == "text"]
    numeric = [n for n in names if kinds[n] == "number"]
    if len(text) == 2 and len(numeric) == 1:
        return text[0], text[1], numeric[0]
    found = "; ".join(
        f"{kind} columns {', '.join(map(repr, group)) if group else '(none)'}"
        for kind, group in (("text", text), ("numeric", numeric))
    )
    raise ColumnError(
        f"{label}: cannot tell which columns hold the pairs and the score: {found}; the data set has columns "
        f'{listed}. Name them: columns=("s1", "s2", "score") in Python, --columns s1,s2,score on the command line'
    )


def column_kind(values: Sequence[Any]) -> str:
    """``"number"``, ``"text"``, ``"other"`` or ``"empty"``: what a column's non-empty cells mostly are.

    Example:
        >>> column_kind(["4.5", "n/a", "3"]), column_kind(["A cat.", "7"]), column_kind([True]), column_kind([None, ""])
        ('number', 'text', 'other', 'empty')
    """
    n_number = n_text = n_other = 0
    for value in values:
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if _is_number(value):
            n_number += 1
        elif isinstance(value, str):
            n_text += 1
        else:
            n_other += 1
    if n_other:
        return "other"
    if not n_number and not n_text:
        return "empty"
    return "number" if n_number > n_text else "text"


# --- reading --------------------------------------------------------------------------------


def _open(source: Any, split: str | None, format: str | None) -> _Table:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            return _from_disk(path, split)
        if path.exists() or not looks_like_hub_id(str(source)):
            if split is not None:
                raise DataError(f"{path}: split={split!r} applies to a datasets folder or hub id, not to a file")
            return _from_file(path, format)
        return _from_hub(str(source), split)
    if _is_dataset_dict(source):
        return _from_dataset(_pick_split(source, split, "the DatasetDict"), "the DatasetDict")
    if hasattr(source, "column_names") and hasattr(source, "num_rows"):  # a datasets.Dataset
        description = getattr(getattr(source, "info", None), "description", None) or ""
        return _from_dataset(source, description or "the Dataset", description=description)
    if hasattr(source, "columns") and hasattr(source, "to_dict"):  # a pandas DataFrame
        names = [str(c) for c in source.columns]
        data = {str(c): source[c].tolist() for c in source.columns}
        return _Table("the DataFrame", names, data, None, "pairs")
    if isinstance(source, Mapping):
        names = [str(k) for k in source]
        data = {str(k): list(v) for k, v in source.items()}
        lengths = {len(v) for v in data.values()}
        if len(lengths) > 1:
            raise DataError(f"the dict of columns: columns have different lengths {sorted(lengths)}")
        return _Table("the dict of columns", names, data, None, "pairs")
    raise TypeError(
        f"cannot read scored pairs from a {type(source).__name__}; give a file path, a datasets folder or hub "
        "id, a datasets.Dataset, a pandas DataFrame or a dict of columns"
    )


def _from_file(path: Path, format: str | None) -> _Table:
    fmt = detect_format(path, format)
    records = read_records(path, None, fmt)
    return _Table(str(path), records.columns, records.data, records.lines, path.stem)


def _from_disk(folder: Path, split: str | None) -> _Table:
    if not any((folder / f).is_file() for f in ("dataset_info.json", "state.json", "dataset_dict.json")):
        raise DataError(
            f"{folder}: a folder, but not one written by datasets' save_to_disk (no dataset_info.json, "
            "state.json or dataset_dict.json); give a file or such a folder"
        )
    from datasets import load_from_disk

    try:
        loaded = load_from_disk(str(folder))
    except Exception as exc:  # noqa: BLE001 - datasets raises several kinds for a damaged folder
        raise DataError(f"{folder}: cannot load it with datasets.load_from_disk: {exc}") from None
    if _is_dataset_dict(loaded):
        loaded = _pick_split(loaded, split, str(folder))
    elif split is not None:
        raise DataError(f"{folder}: holds one Dataset, not a DatasetDict: it has no split {split!r}")
    name = folder.name + (f"-{split}" if split else "")
    return _from_dataset(loaded, str(folder) + (f" (split {split})" if split else ""), name)


def _from_hub(hub_id: str, split: str | None) -> _Table:
    from datasets import load_dataset

    online = hub_enabled()
    if online and not hub_reachable():
        raise DataError(f"{hub_id}: no such file or folder; as a Hugging Face hub id: the hub cannot be reached")
    try:
        loaded = load_dataset(hub_id, split=split)  # offline, datasets still reads its local hub cache
    except Exception as exc:  # noqa: BLE001 - unknown id, unknown split, not cached
        why = (f"the hub could not load it ({type(exc).__name__}: {exc})" if online else
               "not in the local hub cache, and the hub is off (HF_HUB_OFFLINE or HF_DATASETS_OFFLINE is set)")
        raise DataError(f"{hub_id}: no such file or folder; as a Hugging Face hub id: {why}") from None
    if _is_dataset_dict(loaded):
        loaded = _pick_split(loaded, None, hub_id)
    name = hub_id.rstrip("/").rsplit("/", 1)[-1] + (f"-{split}" if split else "")
    return _from_dataset(loaded, hub_id + (f" (split {split})" if split else ""), name)


def _from_dataset(ds: Any, label: str, name: str = "pairs", description: str = "") -> _Table:
    names = list(ds.column_names)
    data = {n: ds[n] for n in names}  # whole columns: one Arrow read each
    return _Table(label, names, data, None, name, description)


def _is_dataset_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(hasattr(v, "column_names") for v in obj.values())


def _pick_split(dd: Mapping[str, Any], split: str | None, label: str) -> Any:
    splits = list(dd)
    if split is None:
        if len(splits) == 1:
            return dd[splits[0]]
        raise DataError(f"{label}: has splits {', '.join(splits)}; choose one (split=..., or --data PATH@SPLIT)")
    if split not in dd:
        raise DataError(f"{label}: no split {split!r}; it has {', '.join(splits)}")
    return dd[split]


def looks_like_hub_id(text: str) -> bool:
    """Whether ``text`` reads as a hub id (``owner/name``) rather than a path: two parts, no file extension.

    Example:
        >>> looks_like_hub_id("sentence-transformers/stsb"), looks_like_hub_id("data/pairs.csv")
        (True, False)
    """
    # owner/name, without path-like parts: "data/pairs.csv" that is missing is a missing file.
    parts = text.split("/")
    return (
        len(parts) == 2
        and all(parts)
        and not text.startswith((".", "~"))
        and Path(parts[1]).suffix.lower() not in (".csv", ".tsv", ".tab", ".jsonl", ".ndjson", ".json", ".parquet", ".pq")
    )


# --- checking rows --------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Real):
        return True
    return isinstance(value, str) and is_number(value)


def _score(value: Any) -> tuple[float | None, str, str]:
    """(score, reason, what) with score ``None`` when the cell is bad."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, NO_SCORE, "the score is missing"
    if not _is_number(value):
        return None, NOT_A_NUMBER, f"score {value!r:.60} is not a number"
    score = float(value)
    if not math.isfinite(score):
        return None, NO_SCORE, f"score {value!r} is not a finite number"
    return score, "", ""


def _sentence(value: Any) -> str:
    """What is wrong with a sentence cell, or ``""``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "the sentence is missing"
    if not isinstance(value, str):
        return f"the sentence is a {type(value).__name__} ({value!r:.40}), not text"
    if not value.strip():
        return "the sentence is empty"
    return ""


def _check_rows(
    table: _Table, cols: tuple[str, str, str], skip: bool
) -> tuple[list[str], list[str], list[float], dict[str, int], dict[str, str]]:
    c1, c2, cs = cols
    v1, v2, vs = table.data[c1], table.data[c2], table.data[cs]
    s1: list[str] = []
    s2: list[str] = []
    scores: list[float] = []
    skipped: Counter[str] = Counter()
    first: dict[str, str] = {}
    seen: dict[tuple[str, str], int] = {}

    def reject(reason: str, message: str) -> None:
        if not skip:
            raise DataError(f"{message}; {_SKIP_HINT}")
        skipped[reason] += 1
        first.setdefault(reason, message)

    for i in range(len(table)):
        problem = next(((c, p) for c, p in ((c1, _sentence(v1[i])), (c2, _sentence(v2[i]))) if p), None)
        if problem is not None:
            reject(EMPTY_SENTENCE, f"{table.where(i, [problem[0]])}: {problem[1]}")
            continue
        score, reason, what = _score(vs[i])
        if score is None:
            reject(reason, f"{table.where(i, [cs])}: {what}")
            continue
        pair = (v1[i], v2[i])
        if pair in seen:
            reject(DUPLICATE, f"{table.where(i, [c1, c2])}: the same pair as {table.row(seen[pair])}")
            continue
        seen[pair] = i
        s1.append(v1[i])
        s2.append(v2[i])
        scores.append(score)
    return s1, s2, scores, dict(skipped), first
