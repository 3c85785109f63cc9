"""Encoding a large corpus to disk: streamed in chunks, bounded memory, resumable, split across processes.

    result = encode_corpus(model, "sentences.txt", "embeddings.npy")   # millions of lines
    emb = result.array()                                                # a read-only memmap (n, dim)

The texts are read a chunk at a time (a list, a ``datasets.Dataset``/``IterableDataset``, a
generator, or a .txt/.tsv/.csv/.jsonl/.parquet file, never loaded whole), each chunk is
encoded with ``model.encode`` and written into its rows of a ``.npy`` memory-mapped beside the
target (``embeddings.npy.partial``), and a small ``embeddings.npy.progress.json`` records
which chunks are on disk, each with a digest of its texts. A run that is killed continues at
the first unfinished chunk: finished ones are only re-read to check their digest, never
re-encoded. When every chunk is done the file is renamed into place.

With several CUDA GPUs, one worker process per GPU takes every k-th chunk; on a CPU,
``num_workers`` processes can share the cores. Worker processes are started with ``spawn``:
in a script, call :func:`encode_corpus` under ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import os
import queue
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.atomic import atomic_write_text
from workbench.digest import hash_tensors, texts_digest
from workbench.encoding import as_encode_fn

CHUNK_SIZE = 4096
_FORMAT = "workbench-corpus-v2"  # v2: sha256 chunk digests (workbench.digest)
_END = object()
_TEXT_SUFFIXES = {
    ".txt": "txt",
    ".text": "txt",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


@dataclass(frozen=True)
class ChunkDone:
    """One chunk is on disk (sent to ``callbacks``).

    Attributes:
        chunk: the chunk's index (rows ``chunk * chunk_size`` onwards).
        rows: texts in the chunk.
        encoded: ``False`` when an interrupted run had already written it (only its digest was checked).
        done: texts on disk so far, of ``total``.
        total: texts in the corpus.
        elapsed_s: seconds since the call started.
    """

    chunk: int
    rows: int
    encoded: bool
    done: int
    total: int
    elapsed_s: float


@dataclass(frozen=True)
class CorpusResult:
    """What :func:`encode_corpus` wrote.

    Attributes:
        path: the ``.npy`` file, float32 ``(rows, dim)``.
        rows: texts in the corpus.
        dim: embedding size.
        encoded: texts encoded by this call.
        reused: texts an interrupted run had already encoded.
        seconds: wall time of the call.
        workers: processes that encoded (1: this one).
    """

    path: Path
    rows: int
    dim: int
    encoded: int
    reused: int
    seconds: float
    workers: int

    def array(self, mmap: bool = True) -> np.ndarray:
        """The embeddings: a read-only memory map by default (nothing is read until used)."""
        return np.load(self.path, mmap_mode="r" if mmap else None)


# ----- the entry point -------------------------------------------------------------------------
def encode_corpus(
    model: Any,
    source: Any,
    out_path: str | os.PathLike[str],
    column: str = "sentence",
    chunk_size: int = CHUNK_SIZE,
    batch_size: int = 64,
    normalize: bool = False,
    precision: str = "fp32",
    prompt_name: str | None = None,
    resume: bool = True,
    progress: bool | None = None,
    num_workers: int = 1,
    devices: Sequence[str | int] | None = None,
    total: int | None = None,
    callbacks: Sequence[Callable[[ChunkDone], None]] = (),
) -> CorpusResult:
    """Encode a corpus of any size into a ``.npy`` file, a chunk at a time; resumable.

    Memory stays bounded by one chunk of texts and its embeddings (plus one Parquet row group
    for Parquet files): texts are streamed from the source and each chunk is written straight
    into its rows of a memory-mapped file.

    Args:
        model: a workbench ``EmbeddingModel``, or any encoder (an object with ``encode(texts)``
            or a function ``texts -> array``; ``batch_size``, ``precision`` and ``prompt_name``
            apply to workbench models only).
        source: a list of texts, a ``datasets.Dataset`` or ``IterableDataset``, an iterator of
            texts (give ``total``), or a path: ``.txt`` (one text per line; blank lines are
            skipped, as ``workbench encode --file`` does), ``.tsv``/``.csv``/``.jsonl``/``.parquet``.
        out_path: the ``.npy`` file to write (replaced when complete).
        column: the text column of a table source; a table with one column needs none.
        chunk_size: texts encoded, written and checkpointed at a time.
        batch_size: texts per forward pass.
        normalize: scale each embedding to unit length.
        precision: ``"fp32"``, or ``"fp16"``/``"bf16"`` autocast on a GPU.
        prompt_name: a key of ``model.prompts`` to prepend.
        resume: continue an interrupted run into the same ``out_path`` (its chunks are checked
            against the source's texts); ``False`` starts over.
        progress: show a progress bar; by default when there is more than one chunk.
        num_workers: encode in this many processes (on a CPU, torch's threads are divided among
            them); used when ``devices`` is not given and there are not several GPUs.
        devices: one worker process per device, e.g. ``["cuda:0", "cuda:1"]``; by default every
            GPU when there are several.
        total: the number of texts of an iterator source (which can be read only once), or of
            an ``IterableDataset`` to skip counting it.
        callbacks: functions receiving a :class:`ChunkDone` as each chunk is written (one that
            raises stops the run; the chunks written so far are kept for a resume).

    Returns:
        A :class:`CorpusResult`; ``result.array()`` maps the embeddings.

    Example:
        >>> import tempfile
        >>> out = tempfile.mkdtemp() + "/e.npy"
        >>> result = encode_corpus(lambda t: [[len(s), 1.0] for s in t], ["a", "bb", "ccc"], out, chunk_size=2,
        ...                        progress=False)
        >>> result.array().tolist(), result.encoded
        ([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0]], 3)
    """
    t0 = time.perf_counter()
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    texts = TextSource(source, column=column, total=total)
    n = len(texts)
    out = Path(out_path).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    partial, progress_path = _side_files(out)
    settings = {"normalize": bool(normalize), "precision": precision, "prompt_name": prompt_name}
    dim = _embedding_dim(model, settings)
    header = {
        "format": _FORMAT,
        "rows": n,
        "dim": dim,
        "chunk_size": chunk_size,
        "model": _model_key(model),
        "settings": settings,
    }
    if n == 0:
        with open(partial, "wb") as fh:
            np.save(fh, np.zeros((0, dim), dtype=np.float32))
        os.replace(partial, out)
        return CorpusResult(
            path=out, rows=0, dim=dim, encoded=0, reused=0, seconds=time.perf_counter() - t0, workers=0
        )
    n_chunks = -(-n // chunk_size)
    workers = _worker_devices(devices, num_workers, n_chunks)
    if len(workers) > 1 and not texts.rereadable:
        raise ValueError(
            "an iterator can be read only once, so it cannot be split across processes; "
            "pass a list, a dataset or a file, or num_workers=1"
        )
    done, offset = _open_partial(partial, progress_path, header, resume)  # {chunk: digest} already on disk

    from tqdm.auto import tqdm

    state = {"done": dict(done), "encoded": 0, "reused": 0, "rows_done": 0}
    show = progress if progress is not None else n_chunks > 1
    bar = tqdm(total=n, desc="encode corpus", unit="text", disable=not show, leave=False)

    def record(chunk: int, digest: str, rows: int, encoded: bool) -> None:
        state["encoded" if encoded else "reused"] += rows
        state["rows_done"] += rows
        if encoded:
            state["done"][chunk] = digest
            _write_progress(progress_path, header, state["done"])
        bar.update(rows)
        event = ChunkDone(
            chunk=chunk,
            rows=rows,
            encoded=encoded,
            done=state["rows_done"],
            total=n,
            elapsed_s=time.perf_counter() - t0,
        )
        for cb in callbacks:
            cb(event)

    job = _Job(
        source=texts,
        partial=str(partial),
        offset=offset,
        rows=n,
        dim=dim,
        chunk_size=chunk_size,
        batch_size=batch_size,
        settings=settings,
        done=done,
    )
    try:
        if len(workers) == 1:
            _encode_share(model, job, 0, 1, workers[0], record)
        else:
            _run_workers(model, job, workers, record)
    finally:
        bar.close()
    if state["rows_done"] != n:  # pragma: no cover - every chunk reports once
        raise RuntimeError(f"{state['rows_done']} of {n} texts were written; run again to finish")
    os.replace(partial, out)
    progress_path.unlink(missing_ok=True)
    return CorpusResult(
        path=out,
        rows=n,
        dim=dim,
        encoded=state["encoded"],
        reused=state["reused"],
        seconds=time.perf_counter() - t0,
        workers=len(workers),
    )


# ----- reading texts a chunk at a time -----------------------------------------------------------
class TextSource:
    """Texts from a list, a dataset, an iterator or a file, read a chunk at a time.

    The number of texts is known up front (from ``len``, Parquet metadata, ``total``, or one
    counting pass over a file), so the output can be allocated before anything is encoded.

    Args:
        source: see :func:`encode_corpus`.
        column: the text column of a table source.
        total: the number of texts of an iterator source.

    Example:
        >>> src = TextSource(["a", "b", "c"])
        >>> len(src), [(i, t) for i, t in src.chunks(2)]
        (3, [(0, ['a', 'b']), (1, ['c'])])
    """

    def __init__(self, source: Any, column: str = "sentence", total: int | None = None):
        self.column = column
        self.path: Path | None = None
        self.obj: Any = None
        if isinstance(source, (str, os.PathLike)):
            self.path = Path(source).expanduser()
            self.kind = _TEXT_SUFFIXES.get(self.path.suffix.lower())
            if self.kind is None:
                raise ValueError(
                    f"{self.path}: unknown file type; use .txt (one text per line), "
                    f".tsv, .csv, .jsonl or .parquet"
                )
            if not self.path.is_file():
                from workbench.data import DataError

                raise DataError(f"{self.path}: no such file")
            self._n = self._count_file() if total is None else int(total)
        elif (
            hasattr(source, "column_names")
            and hasattr(source, "__len__")
            and hasattr(source, "select_columns")
        ):
            self.kind = "dataset"  # a datasets.Dataset: random access to any chunk
            self.column = _pick_column(list(source.column_names), column, "the dataset")
            self.obj = source.select_columns([self.column])
            self._n = len(source)
        elif hasattr(source, "column_names") and hasattr(source, "__iter__") and hasattr(source, "features"):
            self.kind = "iterable_dataset"
            names = list(source.column_names or [])
            self.column = _pick_column(names, column, "the dataset") if names else column
            self.obj = source
            self._n = int(total) if total is not None else sum(1 for _ in self._rows())
        elif isinstance(source, (bytes, dict)):
            raise TypeError(f"source must be texts, a dataset or a file path, not {type(source).__name__}")
        elif hasattr(source, "__len__") and hasattr(source, "__getitem__"):
            self.kind = "sequence"
            self.obj = source
            self._n = len(source)
        elif hasattr(source, "__iter__"):
            self.kind = "iterator"
            self.obj = source
            if total is None:
                if iter(source) is source:
                    raise ValueError("an iterator has no length: pass total= (the number of texts it yields)")
                total = sum(1 for _ in source)
            self._n = int(total)
        else:
            raise TypeError(f"source must be texts, a dataset or a file path, not {type(source).__name__}")

    def __len__(self) -> int:
        return self._n

    @property
    def rereadable(self) -> bool:
        """Whether the texts can be read again (by another process): not so for a one-shot iterator."""
        return not (self.kind == "iterator" and iter(self.obj) is self.obj)

    def __repr__(self) -> str:
        where = str(self.path) if self.path is not None else type(self.obj).__name__
        return f"TextSource({self.kind}: {where}, {self._n} texts)"

    def chunks(
        self, chunk_size: int, wanted: Callable[[int], bool] | None = None
    ) -> Iterator[tuple[int, list[str]]]:
        """``(index, texts)`` of each chunk that ``wanted`` accepts (all by default), in order.

        Lists and datasets read only the wanted chunks; streams are read through, holding one
        chunk at a time. Raises if the source holds more or fewer texts than counted.
        """
        n = self._n
        n_chunks = -(-n // chunk_size)
        want = wanted or (lambda c: True)
        if self.kind in ("sequence", "dataset"):
            for c in range(n_chunks):
                if want(c):
                    a, b = c * chunk_size, min((c + 1) * chunk_size, n)
                    part = self.obj[a:b][self.column] if self.kind == "dataset" else self.obj[a:b]
                    yield c, _checked(part, a)
            return
        stream = iter(self._stream(chunk_size))
        for c in range(n_chunks):
            a, b = c * chunk_size, min((c + 1) * chunk_size, n)
            part = list(itertools.islice(stream, b - a))
            if len(part) < b - a:
                raise ValueError(
                    f"{self!r} ended after {a + len(part)} texts; {n} were counted (did it change?)"
                )
            if want(c):
                yield c, _checked(part, a)
        if next(stream, _END) is not _END:
            raise ValueError(f"{self!r} holds more than the {n} texts counted (did it change?)")

    # -- streams --
    def _stream(self, batch: int = CHUNK_SIZE) -> Iterable[Any]:
        if self.kind in ("iterator",):
            return self.obj
        if self.kind == "iterable_dataset":
            return (row[self.column] for row in self._rows())
        if self.kind == "txt":
            return self._txt_lines()
        if self.kind in ("tsv", "csv"):
            return self._delimited()
        if self.kind == "jsonl":
            return self._jsonl()
        return self._parquet(batch)

    def _rows(self) -> Iterator[dict[str, Any]]:
        for row in self.obj:
            if self.column not in row:
                raise ValueError(f"no column {self.column!r} in the dataset (columns: {', '.join(row)})")
            yield row

    def _open(self) -> Any:
        # newline="": lines end at \n, \r\n or \r, and come back with their ending, which is removed.
        return open(self.path, encoding="utf-8-sig", newline="")

    def _txt_lines(self) -> Iterator[str]:
        with self._open() as fh:
            for line in fh:
                if line.strip():
                    yield line.rstrip("\r\n")

    def _delimited(self) -> Iterator[str]:
        import csv

        from workbench.data import DataError

        with self._open() as fh:
            if self.kind == "tsv":  # quote characters are literal text, as workbench.data reads TSV
                reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE, strict=True)
            else:
                reader = csv.reader(fh, strict=True)
            header: list[str] | None = None
            index = 0
            try:
                for fields in reader:
                    if not fields or fields == [""]:
                        continue
                    if header is None:
                        header = [f.strip() for f in fields]
                        index = header.index(_pick_column(header, self.column, str(self.path)))
                        continue
                    if len(fields) != len(header):
                        raise DataError(
                            f"{self.path}, line {reader.line_num}: expected {len(header)} fields "
                            f"({', '.join(header)}), found {len(fields)}"
                        )
                    yield fields[index]
            except csv.Error as err:
                raise DataError(
                    f"{self.path}, line {reader.line_num}: malformed {self.kind.upper()}: {err}"
                ) from None

    def _jsonl(self) -> Iterator[Any]:
        from workbench.data import DataError

        with self._open() as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as err:
                    raise DataError(f"{self.path}, line {number}: invalid JSON: {err.msg}") from None
                if not isinstance(obj, dict) or self.column not in obj:
                    raise DataError(
                        f"{self.path}, line {number}: expected an object with a {self.column!r} field"
                    )
                yield obj[self.column]

    def _parquet(self, batch: int) -> Iterator[Any]:
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(self.path)
        name = _pick_column(list(pf.schema_arrow.names), self.column, str(self.path))
        for record_batch in pf.iter_batches(batch_size=batch, columns=[name]):
            yield from record_batch.column(0).to_pylist()

    def _count_file(self) -> int:
        if self.kind == "parquet":
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(self.path)
            _pick_column(list(pf.schema_arrow.names), self.column, str(self.path))
            return pf.metadata.num_rows
        return sum(1 for _ in self._stream())


def _pick_column(names: list[str], column: str, where: str) -> str:
    if column in names:
        return column
    if column == "sentence" and len(names) == 1:
        return names[0]  # the default column name, and only one column to choose from
    raise ValueError(f"no column {column!r} in {where} (columns: {', '.join(names)}); pass column=")


def _checked(part: Any, start: int) -> list[str]:
    texts = list(part)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"text {start + i} is {type(text).__name__} ({text!r:.60}), not a string")
    return texts


# ----- the output file and its progress record ---------------------------------------------------
def _side_files(out: Path) -> tuple[Path, Path]:
    return out.with_name(out.name + ".partial"), out.with_name(out.name + ".progress.json")


def _open_partial(
    partial: Path, progress_path: Path, header: dict[str, Any], resume: bool
) -> tuple[dict[int, str], int]:
    """The chunks an interrupted run left on disk ({} when starting over) and the data offset of
    the partial .npy, which exists after this."""
    if resume and partial.is_file() and progress_path.is_file():
        try:
            record = json.loads(progress_path.read_text(encoding="utf-8"))
            mm = np.lib.format.open_memmap(partial, mode="r")
            fits = mm.shape == (header["rows"], header["dim"]) and mm.dtype == np.float32
            offset = mm.offset
            del mm
        except (OSError, ValueError, TypeError):
            record, fits = {}, False
        same = {k: record.get(k) for k in header} == header
        if fits and same:
            return {int(c): str(d) for c, d in record.get("done", {}).items()}, offset
        changed = sorted(k for k in header if record.get(k) != header[k]) or ["the partial file"]
        warnings.warn(
            f"{partial} was written with other settings ({', '.join(changed)} differ); starting over",
            UserWarning,
            stacklevel=3,
        )
    mm = np.lib.format.open_memmap(
        partial, mode="w+", dtype=np.float32, shape=(header["rows"], header["dim"])
    )
    offset = mm.offset
    del mm  # a sparse file of the full size; chunks map their own rows
    _write_progress(progress_path, header, {})
    return {}, offset


def _write_progress(path: Path, header: dict[str, Any], done: dict[int, str]) -> None:
    record = {**header, "done": {str(c): d for c, d in sorted(done.items())}}
    atomic_write_text(path, json.dumps(record) + "\n")


def _write_rows(partial: str, offset: int, start: int, emb: np.ndarray) -> None:
    """Write ``emb`` into rows ``start..`` of the .npy (data from byte ``offset``) through a map of just those rows."""
    rows = np.memmap(
        partial, dtype=np.float32, mode="r+", offset=offset + start * emb.shape[1] * 4, shape=emb.shape
    )
    rows[:] = emb
    rows.flush()
    del rows  # unmapped: pages written so far never add up in this process's memory


# ----- the model ---------------------------------------------------------------------------------
def _is_workbench_model(model: Any) -> bool:
    from workbench.models import EmbeddingModel

    return isinstance(model, EmbeddingModel)


def _embedding_dim(model: Any, settings: dict[str, Any]) -> int:
    if _is_workbench_model(model):
        return int(model.dim)
    for name in ("get_sentence_embedding_dimension", "get_embedding_dimension"):
        if callable(getattr(model, name, None)) and getattr(model, name)():
            return int(getattr(model, name)())
    if isinstance(getattr(model, "dim", None), int):
        return int(model.dim)
    return int(as_encode_fn(model)(["dimension probe"]).shape[1])


def _model_key(model: Any) -> str:
    """Enough of the model to tell a resumed run that its chunks came from the same one.

    The bytes of up to 65,536 evenly spaced values of each tensor (moved off a GPU in small
    pieces): exact across processes and thread counts, and changed by any training step. Not a
    cryptographic fingerprint of every weight.
    """
    if not isinstance(model, torch.nn.Module):
        inner = getattr(model, "__wrapped__", model)
        return f"{type(inner).__module__}.{getattr(inner, '__qualname__', type(inner).__qualname__)}"
    h = hashlib.sha256(repr(model).encode())
    with torch.no_grad():
        hash_tensors(h, model.state_dict(), max_values=65536)
    return h.hexdigest()[:32]


def _encoder(
    model: Any, batch_size: int, settings: dict[str, Any], device: str | None
) -> Callable[[list[str]], np.ndarray]:
    if _is_workbench_model(model):

        def encode(texts: list[str]) -> np.ndarray:
            return model.encode(
                texts,
                batch_size=batch_size,
                normalize=settings["normalize"],
                device=device,
                progress=False,
                precision=settings["precision"],
                prompt_name=settings["prompt_name"],
            )

        return encode
    if device is not None and isinstance(model, torch.nn.Module):
        model.to(device)
    fn = as_encode_fn(model)
    if not settings["normalize"]:
        return fn

    def normalized(texts: list[str]) -> np.ndarray:
        emb = fn(texts)
        return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)

    return normalized


# ----- the work, in one or several processes -----------------------------------------------------
@dataclass(frozen=True)
class _Job:
    """Everything a worker needs (picklable)."""

    source: TextSource
    partial: str
    offset: int  # where the .npy's data begins
    rows: int
    dim: int
    chunk_size: int
    batch_size: int
    settings: dict[str, Any]
    done: dict[int, str]


def _encode_share(
    model: Any,
    job: _Job,
    rank: int,
    world: int,
    device: str | None,
    report: Callable[[int, str, int, bool], None],
) -> None:
    """Encode chunks ``rank, rank + world, ...``, skipping those already on disk with the same texts."""
    encode = _encoder(model, job.batch_size, job.settings, device)
    for c, texts in job.source.chunks(job.chunk_size, wanted=lambda c: c % world == rank):
        digest = texts_digest(texts)
        if job.done.get(c) == digest:
            report(c, digest, len(texts), False)
            continue
        emb = np.asarray(encode(texts), dtype=np.float32)  # (chunk, dim)
        if emb.shape != (len(texts), job.dim):
            raise ValueError(
                f"the encoder returned shape {emb.shape} for {len(texts)} texts; expected "
                f"({len(texts)}, {job.dim})"
            )
        _write_rows(job.partial, job.offset, c * job.chunk_size, emb)
        rows = len(texts)
        del texts, emb
        _return_freed_memory()
        report(c, digest, rows, True)


def _return_freed_memory() -> None:
    """Give memory freed by the last chunk back to the system (glibc only; elsewhere nothing).

    glibc's allocator keeps freed blocks for reuse, and the tensors of padded batches come in many
    sizes: without this, resident memory of encoding all-MiniLM-L6-v2 rose chunk after chunk
    (680 to 895 MiB over the first 60,000 texts) before levelling off; with it, it stays where the
    first chunk left it (about 510 MiB). It takes well under a millisecond per chunk.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # musl and other C libraries have no malloc_trim
        return None


def _worker_devices(devices: Sequence[str | int] | None, num_workers: int, n_chunks: int) -> list[str | None]:
    """One entry per process: a device, or ``None`` for the one ``encode`` picks."""
    if devices is not None:
        found = [f"cuda:{d}" if isinstance(d, int) else str(d) for d in devices]
        if not found:
            raise ValueError("devices is empty")
    elif torch.cuda.is_available() and torch.cuda.device_count() > 1:
        found = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    else:
        if num_workers < 1:
            raise ValueError(f"num_workers must be at least 1, got {num_workers}")
        found = [None] * num_workers
    return found[: max(1, n_chunks)]  # no idle processes for a small corpus


def _run_workers(
    model: Any, job: _Job, devices: list[str | None], record: Callable[[int, str, int, bool], None]
) -> None:
    """Spawn one process per device; this process keeps the only record of progress."""
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    messages = ctx.Queue()
    on_cpu = all(d is None or str(d).startswith("cpu") for d in devices)
    threads = max(1, torch.get_num_threads() // len(devices)) if on_cpu else 0
    procs = [
        ctx.Process(
            target=_worker, args=(model, job, rank, len(devices), dev, threads, messages), daemon=True
        )
        for rank, dev in enumerate(devices)
    ]
    for p in procs:
        p.start()
    finished = 0
    try:
        while finished < len(procs):
            try:
                msg = messages.get(timeout=0.5)
            except queue.Empty:
                dead = [(i, p.exitcode) for i, p in enumerate(procs) if p.exitcode not in (None, 0)]
                if dead:
                    raise RuntimeError(
                        f"encode_corpus worker {dead[0][0]} died (exit code {dead[0][1]}); "
                        "the chunks written so far are kept: run again to resume"
                    ) from None
                continue
            if msg[0] == "chunk":
                record(*msg[1:])
            elif msg[0] == "finished":
                finished += 1
            else:
                raise RuntimeError(
                    f"encode_corpus worker {msg[1]} ({devices[msg[1]] or 'cpu'}) failed:\n{msg[2]}"
                )
    finally:
        for p in procs:
            if p.is_alive() and finished < len(procs):
                p.terminate()
            p.join()


def _worker(
    model: Any, job: _Job, rank: int, world: int, device: str | None, threads: int, messages: Any
) -> None:
    if threads:
        torch.set_num_threads(threads)
    try:
        _encode_share(
            model,
            job,
            rank,
            world,
            device,
            lambda c, digest, rows, encoded: messages.put(("chunk", c, digest, rows, encoded)),
        )
        messages.put(("finished", rank))
    except BaseException:
        messages.put(("error", rank, traceback.format_exc()))


# ----- embeddings kept on disk for a view ---------------------------------------------------------
def cached_embeddings(
    model: Any, texts: Sequence[str], path: str | os.PathLike[str], **kwargs: Any
) -> np.ndarray:
    """The embeddings of ``texts``, read from ``path`` when it holds them for this model, else encoded there.

    :func:`encode_corpus` writes ``path`` (streamed, resumable); a small ``path + ".json"``
    records which texts and model it holds (digests). A re-opened notebook with the same texts
    and model reads the file instead of encoding again; other texts or a changed model encode
    anew.

    Args:
        model: as for :func:`encode_corpus`.
        texts: the texts.
        path: the ``.npy`` file.
        **kwargs: for :func:`encode_corpus` (``batch_size``, ``normalize``, ...).

    Returns:
        A read-only memory map ``(len(texts), dim)``.

    Example:
        >>> import tempfile
        >>> path = tempfile.mkdtemp() + "/e.npy"
        >>> calls = []
        >>> enc = lambda t: calls.append(len(t)) or [[len(s), 1.0] for s in t]
        >>> cached_embeddings(enc, ["a", "bb"], path).tolist()
        [[1.0, 1.0], [2.0, 1.0]]
        >>> calls_before = len(calls)
        >>> cached_embeddings(enc, ["a", "bb"], path).tolist(), len(calls) == calls_before  # read, not encoded
        ([[1.0, 1.0], [2.0, 1.0]], True)
    """
    out = Path(path).expanduser()
    stamp_path = out.with_name(out.name + ".json")
    stamp = {
        "format": "workbench-cached-embeddings-v1",
        "texts": texts_digest(list(texts)),
        "rows": len(texts),
        "model": _model_key(model),
        "settings": {k: repr(v) for k, v in sorted(kwargs.items())},
    }
    if out.is_file() and stamp_path.is_file():
        try:
            if json.loads(stamp_path.read_text()) == stamp:
                return np.load(out, mmap_mode="r")
        except (OSError, ValueError):
            pass  # unreadable: encode again
    stamp_path.unlink(missing_ok=True)
    kwargs.setdefault("progress", len(texts) > CHUNK_SIZE)
    result = encode_corpus(model, list(texts), out, resume=True, **kwargs)
    atomic_write_text(stamp_path, json.dumps(stamp))
    return result.array()
