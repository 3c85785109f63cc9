"""Reading tabular files (TSV, CSV, JSON Lines, JSON, Parquet) with errors that name the line.

Every reader here returns a :class:`Records` (column names, column values, and where each
row sits in the file) or raises :class:`DataError` whose message names the file, the line and
what is wrong. :func:`load_file` turns a user's file into a ``datasets.Dataset``.

TSV is read with quote processing off (``csv.QUOTE_NONE``): a quote character is literal text.
CSV is read with normal CSV quoting.

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "pairs.tsv"
    >>> _ = p.write_text('text\\tscore\\n"Quoted," she said.\\t4.5\\n', encoding="utf-8")
    >>> ds = load_file(p, columns=["text", "score"])
    >>> ds[0]
    {'text': '"Quoted," she said.', 'score': 4.5}
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import Dataset

from .sources import DataError, tag

FORMATS = ("tsv", "csv", "jsonl", "json", "parquet")
_EXTENSIONS = {
    ".tsv": "tsv",
    ".tab": "tsv",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}


_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_INT = re.compile(r"\s*[+-]?\d+\s*", re.ASCII)
_FLOAT = re.compile(r"\s*[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|nan|inf|infinity)\s*", re.ASCII | re.IGNORECASE)


@dataclass(frozen=True)
class Records:
    """The rows of one file, column by column.

    Attributes:
        path: the file read.
        columns: column names in file order.
        data: column name -> list of values (strings for TSV/CSV).
        lines: 1-based line number of each row in the file, or ``None`` for formats without
            lines (JSON arrays, Parquet), where rows are named by their 1-based position.
    """

    path: Path
    columns: list[str]
    data: dict[str, list[Any]]
    lines: list[int] | None

    def __len__(self) -> int:
        return len(self.data[self.columns[0]]) if self.columns else 0

    def where(self, index: int) -> str:
        """Where row ``index`` (0-based) sits, for messages: ``"path, line 7"``."""
        if self.lines is not None:
            return f"{self.path}, line {self.lines[index]}"
        return f"{self.path}, row {index + 1}"

    def error(self, index: int, message: str) -> DataError:
        """A :class:`DataError` about row ``index`` (0-based)."""
        return DataError(f"{self.where(index)}: {message}")


def detect_format(path: str | os.PathLike[str], format: str | None = None) -> str:
    """The file format, from ``format`` if given, else from the file's extension.

    Args:
        path: the file.
        format: one of ``tsv``, ``csv``, ``jsonl``, ``json``, ``parquet``, or ``None``.

    Returns:
        The format name.

    Raises:
        DataError: the format or the extension is not supported.
    """
    if format is not None:
        fmt = format.lower().lstrip(".")
        if fmt not in FORMATS:
            raise DataError(f"{path}: unsupported format {format!r}; supported: {', '.join(FORMATS)}")
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix not in _EXTENSIONS:
        raise DataError(
            f"{path}: unsupported file extension {suffix or '(none)'!r}; supported: "
            f"{', '.join(sorted(_EXTENSIONS))} (or pass format=...)"
        )
    return _EXTENSIONS[suffix]


def read_records(
    path: str | os.PathLike[str], columns: Sequence[str] | None = None, format: str | None = None
) -> Records:
    """Read a TSV/CSV/JSONL/JSON/Parquet file and check its columns.

    Args:
        path: the file.
        columns: column names that must be present (others are kept too).
        format: the format, if the extension does not say it (see :func:`detect_format`).

    Returns:
        The file's :class:`Records`.

    Raises:
        DataError: the file is missing, unreadable, empty, not UTF-8 (or holds NUL characters:
            UTF-16 without a byte-order mark), malformed (wrong number of fields, invalid JSON) or
            lacks a required column.
    """
    path = Path(path)
    fmt = detect_format(path, format)
    if fmt == "parquet":
        records = _read_parquet(path)
    else:
        text = _read_text(path)
        if fmt in ("tsv", "csv"):
            records = _read_delimited(path, text, fmt)
        elif fmt == "jsonl":
            records = _read_jsonl(path, text)
        else:
            records = _read_json(path, text)
    if len(records) == 0:
        raise DataError(f"{path}: no data rows (columns found: {', '.join(records.columns)})")
    require_columns(records, columns or ())
    return records


def require_columns(records: Records, columns: Sequence[str]) -> None:
    """Raise a :class:`DataError` naming any of ``columns`` that ``records`` lacks."""
    missing = [c for c in columns if c not in records.data]
    if missing:
        where = f"{records.path}, line 1 (header)" if records.lines is not None else str(records.path)
        raise DataError(
            f"{where}: missing column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}; "
            f"columns found: {', '.join(map(repr, records.columns))}"
        )


def load_file(
    path: str | os.PathLike[str], columns: Sequence[str] | None = None, format: str | None = None
) -> Dataset:
    """Load a user's csv/tsv/jsonl/json/parquet file as a ``datasets.Dataset``.

    TSV is read with quoting off (quote characters are literal text), CSV with normal CSV
    quoting. In TSV/CSV a column whose every value is an integer becomes ``int64``, one whose
    every value is a number becomes ``float64``; other columns stay strings.

    Args:
        path: the file.
        columns: names of required columns; the dataset keeps all the file's columns.
        format: ``tsv``, ``csv``, ``jsonl``, ``json`` or ``parquet``; by default from the
            extension.

    Returns:
        The dataset; ``dataset.info.description`` says where it came from (see
        :func:`workbench.data.source`).

    Raises:
        DataError: see :func:`read_records`.
    """
    path = Path(path)
    fmt = detect_format(path, format)
    if fmt == "parquet":
        # Straight from the Arrow table, so Parquet types (lists, ints, floats) are kept.
        table = _parquet_table(path)
        names = list(table.column_names)
        if table.num_rows == 0:
            raise DataError(f"{path}: no data rows (columns found: {', '.join(names)})")
        require_columns(Records(path, names, {name: [] for name in names}, None), columns or ())
        ds = Dataset(_in_memory(table))
    else:
        records = read_records(path, columns, fmt)
        data = records.data
        if fmt in ("tsv", "csv"):
            data = {name: _infer(values) for name, values in data.items()}
        try:
            ds = Dataset.from_dict(data)
        except Exception as exc:  # pyarrow type errors: mixed types in one JSON field
            raise DataError(f"{path}: cannot build a table from it: {exc}") from None
    return tag(ds, "file", str(path.resolve()), f"{path.name} from {path} ({ds.num_rows} rows)")


# --- readers -------------------------------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file: {exc.strerror or exc}") from None


def _read_text(path: Path) -> str:
    raw = _read_bytes(path)
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataError(f"{path}, line 1: the file is UTF-16; save it as UTF-8")
    if raw.startswith(codecs.BOM_UTF8):  # Excel writes one; it is not part of the first column name
        raw = raw[len(codecs.BOM_UTF8) :]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{path}, line {line}: not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save the file as UTF-8"
        ) from None
    if not text.strip():
        raise DataError(f"{path}: the file is empty (expected a header line)")
    if "\x00" in text:
        line = len(_LINE_BREAK.findall(text, 0, text.index("\x00"))) + 1
        raise DataError(
            f"{path}, line {line}: holds a NUL character, which text files do not; the file looks like "
            "UTF-16 without a byte-order mark, or binary data. Save it as UTF-8"
        )
    return text


def _read_delimited(path: Path, text: str, fmt: str) -> Records:
    if fmt == "tsv":
        # The shared TSVs hold literal quote characters; QUOTE_NONE keeps a sentence that
        # begins with '"' from swallowing the tab after it.
        reader = csv.reader(
            io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE, strict=True
        )
        kind = "tab-separated"
    else:
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        kind = "comma-separated"
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    end = 0  # last physical line consumed; a quoted CSV field may span several lines
    try:
        for fields in reader:
            start, end = end + 1, reader.line_num
            if not fields or fields == [""]:
                continue  # blank line
            if header is None:
                header = _check_header(path, fields)
                continue
            if len(fields) != len(header):
                raise DataError(
                    f"{path}, line {start}: expected {len(header)} {kind} fields "
                    f"({', '.join(header)}), found {len(fields)}"
                )
            rows.append(fields)
            lines.append(start)
    except csv.Error as exc:
        raise DataError(f"{path}, line {reader.line_num}: malformed {fmt.upper()}: {exc}") from None
    if header is None:
        raise DataError(f"{path}: the file is empty (expected a header line)")
    data = {name: [row[i] for row in rows] for i, name in enumerate(header)}
    return Records(path, header, data, lines)


def _check_header(path: Path, fields: list[str]) -> list[str]:
    header = [f.strip() for f in fields]
    for i, name in enumerate(header):
        if not name:
            raise DataError(f"{path}, line 1: column {i + 1} of the header has no name")
        if name in header[:i]:
            raise DataError(f"{path}, line 1: column {name!r} appears twice in the header")
    return header


def _read_jsonl(path: Path, text: str) -> Records:
    objects: list[dict[str, Any]] = []
    lines: list[int] = []
    # Records end at \n, \r\n or \r only: str.splitlines() would also cut at U+2028, U+2029 and
    # U+0085, which JSON allows unescaped inside strings (json.dumps(ensure_ascii=False) writes them).
    for number, line in enumerate(_LINE_BREAK.split(text), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}, line {number}: invalid JSON: {exc.msg} (column {exc.colno})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}, line {number}: expected a JSON object, found {type(obj).__name__}")
        objects.append(obj)
        lines.append(number)
    return _from_objects(path, objects, lines)


def _read_json(path: Path, text: str) -> Records:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}, line {exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})") from None
    if isinstance(obj, list):
        for i, item in enumerate(obj):
            if not isinstance(item, dict):
                raise DataError(f"{path}, row {i + 1}: expected a JSON object, found {type(item).__name__}")
        return _from_objects(path, obj, None)
    if isinstance(obj, dict) and obj and all(isinstance(v, list) for v in obj.values()):
        lengths = {name: len(values) for name, values in obj.items()}
        if len(set(lengths.values())) > 1:
            raise DataError(f"{path}: columns have different lengths: {lengths}")
        return Records(path, list(obj), dict(obj), None)
    raise DataError(f"{path}: expected a list of records or an object of equal-length column lists")


def _from_objects(path: Path, objects: list[dict[str, Any]], lines: list[int] | None) -> Records:
    columns: list[str] = []
    for obj in objects:  # union of keys, in order of first appearance
        columns.extend(k for k in obj if k not in columns)
    data = {name: [obj.get(name) for obj in objects] for name in columns}
    return Records(path, columns, data, lines)


def _parquet_table(path: Path) -> Any:
    import pyarrow.parquet as pq

    _read_bytes(path)  # the missing / folder / unreadable checks
    try:
        return pq.read_table(path)
    except Exception as exc:  # ArrowInvalid, OSError: not a Parquet file, truncated
        raise DataError(f"{path}: not a readable Parquet file: {exc}") from None


def _read_parquet(path: Path) -> Records:
    table = _parquet_table(path)
    return Records(path, list(table.column_names), table.to_pydict(), None)


def _in_memory(table: Any) -> Any:
    from datasets.table import InMemoryTable

    return InMemoryTable(table)


def is_number(text: str) -> bool:
    """Whether a table cell reads as a number: ASCII digits with an optional sign, decimal point and
    exponent, or nan/inf. (``float()`` also takes ``"1_000"`` and non-ASCII digits, which in a
    data file are more likely text.)"""
    return _FLOAT.fullmatch(text) is not None


def _infer(values: list[str]) -> list[Any]:
    """Strings -> ints or floats when every value is one (pandas-like), else unchanged."""
    if all(_INT.fullmatch(v) for v in values):
        return [int(v) for v in values]
    if all(_FLOAT.fullmatch(v) for v in values):
        return [float(v) for v in values]
    return values
