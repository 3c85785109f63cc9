"""The speed/quality map: how many sentences per second an encoder manages here, for what STS score.

:func:`measure_encoders` takes several encoders (a teacher, its pruned or distilled students, an
ONNX int8 export, a static model, any ``SentenceTransformer`` or function ``texts -> array``) and
measures each one the same way:

* **quality**: STS spearman of cosine similarity on the given pairs, computed by
  :class:`~workbench.evaluation.STSEvaluator` (STS-B dev by convention: choose on dev);
* **speed**: sentences per second encoding ``speed_texts`` (by default the distinct sentences of
  the pairs) with ``time.perf_counter``, after one warm-up call; the median of ``repeats`` timed
  runs. The encoders take turns, one run each per round, and every other round goes in reverse
  order, so that a burst of machine noise hits them all alike rather than the one measured last;
* **size**: the bytes of the weights it holds (see :func:`encoder_size`), or what ``sizes`` says.

:func:`pareto_front` names the encoders that no other beats on both speed and quality: the only
ones worth choosing. A :class:`SpeedQualityResult` holds the points, the front and a table with
speed relative to a baseline ("12× faster") and the quality it costs ("Δ −0.031").

Nothing here plots or displays: :func:`workbench.figures.speed_quality_figure` draws a result,
:class:`workbench.widgets.SpeedQualityMap` measures and draws live.

Example:
    >>> import numpy as np
    >>> s1 = ["a cat sits", "a man runs", "the sky is blue", "stocks fell"]
    >>> s2 = ["a kitten sits", "a woman runs", "a stone", "bananas"]
    >>> chars = lambda texts: np.array([[t.count(c) for c in "aeioust "] for t in texts], dtype=float)
    >>> result = measure_encoders({"chars": chars}, s1, s2, [4.8, 3.0, 0.5, 0.2], repeats=1, progress=False)
    >>> point = result.points[0]
    >>> point.name, point.metric, round(point.quality, 4), point.n_sentences, result.pareto
    ('chars', 'sts-dev_spearman_cosine', 0.8, 8, ['chars'])
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.encoding import EncodeFn, as_encode_fn, as_text_list
from workbench.evaluation import STSEvaluator
from workbench.formatting import metric

SizeSpec = int | str | os.PathLike
MIN_PAIRS = 3  # two pairs always have a spearman of ±1: no measurement at all

# The table's columns: (key in a row dict, header for people).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("name", "encoder"),
    ("sentences_per_s", "sentences/s"),
    ("speedup", "× faster"),
    ("quality", "quality"),
    ("delta_quality", "Δ quality"),
    ("size_mb", "size MB"),
    ("dim", "dim"),
    ("pareto", "Pareto front"),
)


@dataclass(frozen=True)
class EncoderPoint:
    """One encoder on the map: its speed here, its quality, its size.

    Attributes:
        name: the encoder's name (the key it was given under).
        sentences_per_s: ``n_sentences / seconds``.
        quality: the STS score (``metric``); ``nan`` when undefined (a constant encoder).
        metric: the evaluator's key of ``quality``, e.g. ``"sts-dev_spearman_cosine"``.
        size_bytes: the bytes of its weights (or what the caller said); ``None``: unknown.
        seconds: the median duration of the timed runs.
        n_sentences: how many texts each timed run encoded.
        dim: the embedding width.
        timings: every timed run's duration, in the order they ran.
        size_from: where ``size_bytes`` comes from: ``"given"``, ``"weights"`` (tensors held in
            memory, plus a graph file an ONNX module runs), ``"folder"`` (its ``source`` on disk)
            or ``""`` (unknown).
    """

    name: str
    sentences_per_s: float
    quality: float
    metric: str
    size_bytes: int | None
    seconds: float
    n_sentences: int
    dim: int = 0
    timings: tuple[float, ...] = ()
    size_from: str = ""

    @property
    def size_mb(self) -> float | None:
        """The size in megabytes (10⁶ bytes), or ``None``."""
        return None if self.size_bytes is None else self.size_bytes / 1e6

    def to_dict(self) -> dict[str, Any]:
        """Plain numbers and strings (JSON-ready; ``timings`` as a list)."""
        out = dataclasses.asdict(self)
        out["timings"] = list(self.timings)
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> EncoderPoint:
        """The point :meth:`to_dict` wrote."""
        values = dict(values)
        values["timings"] = tuple(values.get("timings", ()))
        return cls(**values)


def pareto_front(points: Iterable[Any]) -> list[str]:
    """The names of the points that no other point beats on both speed and quality, slowest first.

    A point is dominated when another is at least as fast and at least as good, and strictly
    better on one of the two. Points with equal numbers do not dominate each other (both stay).
    A point whose speed or quality is not a finite number (an undefined correlation) is never on
    the front.

    Args:
        points: :class:`EncoderPoint` objects, or ``(name, sentences_per_s, quality)`` triples.

    Returns:
        The names on the front, by increasing speed (then by name), so quality decreases along it.

    Raises:
        ValueError: two points share a name.

    Example:
        >>> pareto_front([("teacher", 100, 0.87), ("student", 400, 0.84), ("bad", 300, 0.80),
        ...               ("twin", 400, 0.84), ("static", 9000, 0.70), ("broken", 50000, float("nan"))])
        ['teacher', 'student', 'twin', 'static']
    """
    triples = [_triple(p) for p in points]
    names = [name for name, _, _ in triples]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"pareto_front needs one point per name; {duplicates} occur more than once")
    finite = [(n, s, q) for n, s, q in triples if math.isfinite(s) and math.isfinite(q)]
    front = [
        (s, n) for n, s, q in finite
        if not any(s2 >= s and q2 >= q and (s2 > s or q2 > q) for _, s2, q2 in finite)
    ]  # fmt: skip
    return [n for _, n in sorted(front)]


def table_rows(points: Sequence[EncoderPoint], baseline: str | None = None) -> list[dict[str, Any]]:
    """One row per point, slowest first: speed relative to ``baseline``, the quality it costs.

    Args:
        points: the measured points.
        baseline: the encoder the others are compared with; by default the slowest.

    Returns:
        Dicts with the keys of :data:`COLUMNS`: ``name``, ``sentences_per_s``, ``speedup``
        (× the baseline's speed), ``quality``, ``delta_quality`` (minus the baseline's),
        ``size_mb`` (``None`` when unknown), ``dim`` and ``pareto`` (``True`` on the front).

    Raises:
        ValueError: ``baseline`` is not one of the points.

    Example:
        >>> p = [EncoderPoint("big", 100.0, 0.87, "q", 90_000_000, 1.0, 100),
        ...      EncoderPoint("small", 1000.0, 0.80, "q", None, 0.1, 100)]
        >>> [(r["name"], r["speedup"], round(r["delta_quality"], 2), r["size_mb"]) for r in table_rows(p)]
        [('big', 1.0, 0.0, 90.0), ('small', 10.0, -0.07, None)]
    """
    if not points:
        return []
    base = _baseline(points, baseline)
    front = set(pareto_front(points))
    rows = []
    for p in sorted(points, key=lambda p: (p.sentences_per_s, p.name)):
        rows.append({
            "name": p.name,
            "sentences_per_s": p.sentences_per_s,
            "speedup": p.sentences_per_s / base.sentences_per_s,
            "quality": p.quality,
            "delta_quality": p.quality - base.quality,
            "size_mb": p.size_mb,
            "dim": p.dim,
            "pareto": p.name in front,
        })  # fmt: skip
    return rows


def format_row(row: Mapping[str, Any]) -> list[str]:
    """A :func:`table_rows` row as the strings a table shows, in :data:`COLUMNS` order.

    Example:
        >>> format_row({"name": "s", "sentences_per_s": 1234.5, "speedup": 12.34, "quality": 0.8,
        ...             "delta_quality": -0.0312, "size_mb": None, "dim": 384, "pareto": True})
        ['s', '1,234', '12.3×', '0.8000', '-0.0312', '-', '384', '★ yes']
    """
    quality = row["quality"]
    delta = row["delta_quality"]
    size = row["size_mb"]
    return [
        str(row["name"]),
        f"{row['sentences_per_s']:,.0f}",
        f"{row['speedup']:.3g}×" if row["speedup"] < 100 else f"{row['speedup']:,.0f}×",
        metric(quality) if math.isfinite(quality) else "undefined",
        f"{delta:+.4f}" if math.isfinite(delta) else "-",
        "-" if size is None else (f"{size:.1f}" if size >= 1 else f"{size:.2f}"),
        str(row["dim"]),
        "★ yes" if row["pareto"] else "",
    ]


@dataclass(frozen=True)
class SpeedQualityResult:
    """The measured map: points, the Pareto front, and where and on what it was measured.

    Attributes:
        points: one :class:`EncoderPoint` per encoder, in the order they were given.
        pareto: the names on the front (:func:`pareto_front`), slowest first.
        baseline: the encoder the table compares with (the slowest unless one was named).
        machine: what the speeds were measured on (:func:`machine_description`).
        data: the pairs the quality comes from, in words (e.g. ``source(ds)``); may be empty.
        n_pairs: how many STS pairs.
        batch_size: the batch size the encoders were given.
        repeats: timed runs per encoder.
        is_sample: the pairs are the built-in sample (the quality numbers mean nothing).

    Example:
        >>> p = [EncoderPoint("big", 100.0, 0.87, "sts-dev_spearman_cosine", None, 1.0, 100),
        ...      EncoderPoint("small", 1000.0, 0.80, "sts-dev_spearman_cosine", None, 0.1, 100)]
        >>> r = SpeedQualityResult(p, pareto=pareto_front(p), baseline="big", machine="a laptop")
        >>> print(r.text())
        encoder  sentences/s  × faster  quality  Δ quality  size MB  dim  Pareto front
        big              100        1×   0.8700    +0.0000        -    0         ★ yes
        small          1,000       10×   0.8000    -0.0700        -    0         ★ yes
    """

    points: list[EncoderPoint]
    pareto: list[str]
    baseline: str
    machine: str = ""
    data: str = ""
    n_pairs: int = 0
    batch_size: int = 32
    repeats: int = 0
    is_sample: bool = False

    def __post_init__(self) -> None:
        if self.points:
            _baseline(self.points, self.baseline)  # a baseline that is not a point fails here

    @property
    def metric(self) -> str:
        """The quality metric's key (all points share it)."""
        return self.points[0].metric if self.points else ""

    def point(self, name: str) -> EncoderPoint:
        """The point named ``name``.

        Raises:
            KeyError: no such encoder (the message lists them).
        """
        for p in self.points:
            if p.name == name:
                return p
        raise KeyError(f"no encoder {name!r} on this map; it has {[p.name for p in self.points]}")

    def table(self, baseline: str | None = None) -> list[dict[str, Any]]:
        """The table's rows (:func:`table_rows`), compared with ``baseline`` (default: :attr:`baseline`)."""
        return table_rows(self.points, baseline or self.baseline)

    def text(self, baseline: str | None = None) -> str:
        """The table as plain text, columns aligned (for a terminal or a log)."""
        header = [h for _, h in COLUMNS]
        body = [format_row(r) for r in self.table(baseline)]
        widths = [max(len(line[c]) for line in [header, *body]) for c in range(len(header))]
        lines = [
            "  ".join(cell.ljust(w) if c == 0 else cell.rjust(w) for c, (cell, w) in enumerate(zip(line, widths, strict=True)))
            for line in [header, *body]
        ]  # fmt: skip
        return "\n".join(line.rstrip() for line in lines)

    def to_dict(self) -> dict[str, Any]:
        """Everything, as JSON-ready plain values (:meth:`from_dict` reads it back)."""
        return {
            "points": [p.to_dict() for p in self.points],
            "pareto": list(self.pareto),
            "baseline": self.baseline,
            "machine": self.machine,
            "data": self.data,
            "n_pairs": self.n_pairs,
            "batch_size": self.batch_size,
            "repeats": self.repeats,
            "is_sample": self.is_sample,
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> SpeedQualityResult:
        """The result :meth:`to_dict` wrote (e.g. read back from a JSON file)."""
        values = dict(values)
        values["points"] = [EncoderPoint.from_dict(p) for p in values["points"]]
        return cls(**values)

    def __repr__(self) -> str:
        where = f" · {self.machine}" if self.machine else ""
        return f"SpeedQualityResult({len(self.points)} encoders, {self.n_pairs} pairs{where})\n{self.text()}"

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(repr(self))}</pre>"


def measure_encoders(
    encoders: Mapping[str, Any],
    sentences1: Sequence[str] | None = None,
    sentences2: Sequence[str] | None = None,
    scores: Sequence[float] | None = None,
    *,
    evaluator: Any = None,
    speed_texts: Sequence[str] | None = None,
    batch_size: int = 32,
    repeats: int = 3,
    sizes: Mapping[str, SizeSpec] | None = None,
    baseline: str | None = None,
    name: str = "sts-dev",
    data: str = "",
    is_sample: bool = False,
    progress: bool = True,
    callback: Callable[[EncoderPoint], None] | None = None,
) -> SpeedQualityResult:
    """Measure each encoder's speed on this machine and its STS quality (see the module docstring).

    Round 1 takes the encoders in the given order: each one's quality, one warm-up call on the
    first ``batch_size`` speed texts, and its first timed run. Rounds 2 to ``repeats`` time one
    run each, every other round in reverse order. The reported duration is the median.

    Args:
        encoders: ``{name: encoder}``; an encoder is a workbench model, a SentenceTransformer, any
            object with ``.encode(texts)``, or a function ``texts -> array``. An ``encode`` that
            takes ``batch_size`` is given ``batch_size``; a function gets the texts only.
        sentences1, sentences2, scores: the STS pairs and their gold scores (at least 3 pairs).
        evaluator: instead of the pairs, an evaluator (an :class:`STSEvaluator`, or anything called
            with an encoder that returns a dict holding its ``primary_metric``).
        speed_texts: the texts to time; by default the distinct sentences of the pairs.
        batch_size: given to encoders whose ``encode`` takes it.
        repeats: timed runs per encoder (at least 1).
        sizes: ``{name: bytes or a file or folder path}`` (a folder counts all its files) for
            the encoders whose size :func:`encoder_size` cannot tell (or tells wrong).
        baseline: the encoder the table compares with; by default the slowest.
        name: the evaluator's key prefix (``"sts-dev"`` gives ``sts-dev_spearman_cosine``).
        data: the pairs, in words, recorded in the result (e.g. ``str(source(ds))``).
        is_sample: the pairs are the built-in sample (recorded, so that figures can say so).
        progress: show a tqdm bar (one step per timed run).
        callback: called with an encoder's :class:`EncoderPoint` each time it is measured: after
            round 1 (one timed run), then after each further round with the median so far (the
            same name: replace the earlier point). The widget draws points as they come with it.

    Returns:
        A :class:`SpeedQualityResult`.

    Raises:
        TypeError: ``encoders`` is not a mapping, a name is not a string, an encoder is neither
            an object with ``.encode`` nor callable (both named).
        ValueError: no encoders, fewer than 3 pairs, pairs and an evaluator (or neither),
            ``repeats`` or ``batch_size`` below 1, a ``sizes`` or ``baseline`` name that is not an
            encoder, no speed texts.
    """
    from tqdm.auto import tqdm

    check_encoders(encoders, sizes, baseline, owner="measure_encoders")
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")

    evaluator, pair_texts, n_pairs = _quality_evaluator(evaluator, sentences1, sentences2, scores, name, batch_size)
    if speed_texts is None:
        if pair_texts is None:
            raise ValueError("give speed_texts: this evaluator does not say which sentences it encodes")
        texts = pair_texts
    else:
        texts = as_text_list(speed_texts, "speed_texts", "measure_encoders")
    if not texts:
        raise ValueError("measure_encoders needs at least one speed text")

    fns = {key: _encode_fn(encoder, batch_size) for key, encoder in encoders.items()}
    measured: dict[str, dict[str, Any]] = {}
    names = list(encoders)
    bar = tqdm(total=len(names) * repeats, desc="speed/quality", unit="run", disable=not progress)
    try:
        for round_ in range(repeats):
            for key in names if round_ % 2 == 0 else names[::-1]:
                bar.set_postfix_str(key, refresh=False)
                fn = fns[key]
                if round_ == 0:
                    metrics = evaluator(fn)
                    dim = int(fn(texts[:batch_size]).shape[1])  # the warm-up call
                    size, size_from = _size(key, encoders[key], sizes)
                    measured[key] = {"quality": float(metrics[evaluator.primary_metric]),
                                     "metric": evaluator.primary_metric, "dim": dim, "size": size,
                                     "size_from": size_from, "timings": []}  # fmt: skip
                start = time.perf_counter()
                fn(texts)
                measured[key]["timings"].append(time.perf_counter() - start)
                bar.update(1)
                if callback is not None:
                    callback(_point(key, measured[key], len(texts)))
    finally:
        bar.close()
    points = [_point(key, measured[key], len(texts)) for key in names]
    base = baseline if baseline is not None else min(points, key=lambda p: p.sentences_per_s).name
    return SpeedQualityResult(
        points, pareto=pareto_front(points), baseline=base, machine=machine_description(), data=data,
        n_pairs=n_pairs, batch_size=batch_size, repeats=repeats, is_sample=is_sample,
    )  # fmt: skip


def check_encoders(
    encoders: Any, sizes: Mapping[str, Any] | None = None, baseline: str | None = None, owner: str = "measure_encoders"
) -> None:
    """Refuse what :func:`measure_encoders` cannot measure, naming the culprit.

    Raises:
        TypeError: ``encoders`` is not a mapping, a name is not a string, an encoder is neither an
            object with ``.encode`` nor callable.
        ValueError: no encoders; a ``sizes`` or ``baseline`` name that is not an encoder.

    Example:
        >>> check_encoders({"ok": len, "bad": 42})
        Traceback (most recent call last):
        ...
        TypeError: encoder 'bad' is a int, neither an object with .encode(texts) nor a function texts -> array
    """
    if not isinstance(encoders, Mapping):
        raise TypeError(f"{owner} takes a mapping {{name: encoder}}, got {type(encoders).__name__}")
    if not encoders:
        raise ValueError(f"{owner} needs at least one encoder, got an empty mapping")
    for key, encoder in encoders.items():
        if not isinstance(key, str):
            raise TypeError(f"encoder names must be strings, got {type(key).__name__} {key!r:.60}")
        if isinstance(encoder, (str, bytes, os.PathLike)):  # str has an .encode: not the one meant
            raise TypeError(f"encoder {key!r} is the {type(encoder).__name__} {encoder!r:.80}, not a model: "
                            f"load it first, e.g. load_model({encoder!r:.80})")
        if not (callable(getattr(encoder, "encode", None)) or callable(encoder)):
            raise TypeError(
                f"encoder {key!r} is a {type(encoder).__name__}, neither an object with .encode(texts) "
                "nor a function texts -> array"
            )
    for label, names in (("sizes", list(sizes or {})), ("baseline", [] if baseline is None else [baseline])):
        unknown = [n for n in names if n not in encoders]
        if unknown:
            raise ValueError(f"{label} names {unknown}, which are not encoders; the encoders are {list(encoders)}")


def encoder_size(encoder: Any) -> tuple[int | None, str]:
    """How many bytes an encoder's weights take, and where that number comes from.

    * a torch module (a workbench model, a SentenceTransformer): the bytes of its parameters and
      buffers (each tensor once), what its ``model.safetensors`` takes on disk, plus the size of
      any graph file a submodule runs (an ONNX module's ``file``): ``"weights"``. This is right
      for a student copied from its teacher too, which still names the teacher's folder;
    * else a ``source`` or ``path`` attribute naming a file or folder on disk: its size
      (:func:`size_on_disk`): ``"folder"``;
    * else ``(None, "")``.

    Example:
        >>> import torch
        >>> encoder_size(torch.nn.Linear(10, 2))  # 22 float32 numbers
        (88, 'weights')
        >>> encoder_size(lambda texts: texts)
        (None, '')
    """
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        torch = None
    if torch is not None and isinstance(encoder, torch.nn.Module):
        seen: set[tuple[int, int]] = set()
        total = 0
        for tensor in [*encoder.parameters(), *encoder.buffers()]:
            key = (tensor.data_ptr(), tensor.numel())
            if key not in seen:  # tied weights are stored once
                seen.add(key)
                total += tensor.numel() * tensor.element_size()
        for module in encoder.modules():
            file = getattr(module, "file", None)
            if isinstance(file, (str, os.PathLike)) and Path(file).is_file():
                total += Path(file).stat().st_size
        if total:
            return total, "weights"
    for attr in ("source", "path"):
        value = getattr(encoder, attr, None)
        if isinstance(value, (str, os.PathLike)) and str(value) and Path(value).exists():
            return size_on_disk(value), "folder"
    return None, ""


def size_on_disk(path: str | os.PathLike) -> int:
    """The bytes of a file, or of every file under a folder (symlinks followed, as a copy would be).

    Raises:
        FileNotFoundError: nothing at ``path``.
    """
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    if not path.is_dir():
        raise FileNotFoundError(f"no file or folder at {path}")
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def machine_description() -> str:
    """What speeds were measured on: the CPU, its count, torch's threads (and a GPU if torch sees one).

    Example:
        >>> "CPUs" in machine_description()
        True
    """
    cpu = _cpu_name() or platform.processor() or platform.machine() or "unknown CPU"
    parts = [cpu, f"{os.cpu_count() or '?'} CPUs"]
    try:
        import torch

        parts.append(f"torch {torch.get_num_threads()} threads")
        if torch.cuda.is_available():
            parts.append(f"GPU {torch.cuda.get_device_name(0)}")
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return ", ".join(parts)


# ----- helpers ---------------------------------------------------------------------------------
def _triple(point: Any) -> tuple[str, float, float]:
    if isinstance(point, EncoderPoint):
        return point.name, float(point.sentences_per_s), float(point.quality)
    name, speed, quality = point
    return str(name), float(speed), float(quality)


def _baseline(points: Sequence[EncoderPoint], baseline: str | None) -> EncoderPoint:
    if baseline is None:
        return min(points, key=lambda p: (p.sentences_per_s, p.name))
    for p in points:
        if p.name == baseline:
            return p
    raise ValueError(f"baseline {baseline!r} is not one of the encoders {[p.name for p in points]}")


def _quality_evaluator(
    evaluator: Any, sentences1: Any, sentences2: Any, scores: Any, name: str, batch_size: int
) -> tuple[Any, list[str] | None, int]:
    """The evaluator to score quality with, the distinct texts of its pairs, and how many pairs."""
    given = [x is not None for x in (sentences1, sentences2, scores)]
    if evaluator is not None:
        if any(given):
            raise ValueError("give the STS pairs or an evaluator, not both")
        if not callable(evaluator) or not isinstance(getattr(evaluator, "primary_metric", None), str):
            raise TypeError(f"evaluator must be called with an encoder and have a primary_metric, got {evaluator!r:.80}")
    elif not all(given):
        raise ValueError("give the STS pairs (sentences1, sentences2, scores) or evaluator=")
    else:
        evaluator = STSEvaluator(sentences1, sentences2, scores, name=name, batch_size=batch_size, fns=("cosine",))
    n_pairs = len(getattr(evaluator, "scores", ())) if hasattr(evaluator, "scores") else 0
    if hasattr(evaluator, "scores") and n_pairs < MIN_PAIRS:
        raise ValueError(f"measure_encoders needs at least {MIN_PAIRS} STS pairs, got {n_pairs}")
    s1, s2 = getattr(evaluator, "sentences1", None), getattr(evaluator, "sentences2", None)
    texts = list(dict.fromkeys([*s1, *s2])) if s1 is not None and s2 is not None else None
    return evaluator, texts, n_pairs


def _encode_fn(encoder: Any, batch_size: int) -> EncodeFn:
    """``as_encode_fn``, with ``batch_size`` for an ``encode`` that takes it."""
    encode = getattr(encoder, "encode", None)
    if callable(encode) and _takes(encode, "batch_size"):
        return as_encode_fn(encoder, batch_size=batch_size)
    return as_encode_fn(encoder)


def _takes(fn: Callable[..., Any], name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature
        return False
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _size(key: str, encoder: Any, sizes: Mapping[str, SizeSpec] | None) -> tuple[int | None, str]:
    if sizes is None or key not in sizes:
        return encoder_size(encoder)
    value = sizes[key]
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, str, os.PathLike)):
        raise TypeError(f"sizes[{key!r}] must be a number of bytes or a path, got {type(value).__name__}")
    if isinstance(value, (int, np.integer)):
        if value < 0:
            raise ValueError(f"sizes[{key!r}] = {value} is negative")
        return int(value), "given"
    return size_on_disk(value), "given"


def _point(key: str, m: Mapping[str, Any], n: int) -> EncoderPoint:
    seconds = statistics.median(m["timings"])
    return EncoderPoint(
        name=key, sentences_per_s=n / seconds if seconds > 0 else math.inf, quality=m["quality"],
        metric=m["metric"], size_bytes=m["size"], seconds=seconds, n_sentences=n, dim=m["dim"],
        timings=tuple(m["timings"]), size_from=m["size_from"],
    )  # fmt: skip


def _cpu_name() -> str:
    """The CPU's model name on Linux (``platform.processor()`` often says only ``x86_64`` there)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return ""
