"""What shrinking the vectors costs: fewer dimensions and a smaller number type, measured live.

:class:`CompressionExplorer` encodes its texts once per model (float32, every dimension) and
keeps the vectors. Each (dimension, precision) setting truncates, renormalises and quantizes
those cached vectors with numpy (:func:`workbench.similarity.quantize_embeddings`) and scores
them again (:func:`workbench.similarity.quantized_similarity`): a few tenths of a second each
for 1,500 captions, so all of them are measured when the explorer is made, and moving a control
afterwards only redraws (milliseconds).

Two measurements per setting, each shown beside the same model's full float32 vectors:

* STS-B dev: spearman between the similarity of each pair and the gold score;
* caption retrieval: every caption of a small, fixed set of Multi30k test images is a query
  against all the other captions; the relevant ones are the other captions of its image, and
  recall@10 is the share of them among its 10 most similar (ties broken by caption order).

Without ``WORKBENCH_DATA`` both come from the built-in samples: the widget says SAMPLE, and the
numbers mean nothing beyond showing that it works.
"""

from __future__ import annotations

import csv
import dataclasses
import html
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from scipy.stats import ConstantInputWarning, spearmanr

from workbench.similarity import (
    PRECISIONS,
    bytes_per_vector,
    quantization_ranges,
    quantize_embeddings,
    quantized_similarity,
)
from workbench.widgets._common import EmbeddingCache, View, encoder_name, figure_widget, html_table

_OWNER = "CompressionExplorer"
CAPTION_FILE = Path("multi30k-captions") / "captions-test_2016.tsv"
RECALL_K = 10
# uint8 codes are the int8 codes plus 128 and ubinary bytes the binary ones plus 128: their scores
# (quantized_similarity) are identical, so each pair is measured once.
_TWINS = {"uint8": "int8", "ubinary": "binary"}
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


# ----- the two tasks ---------------------------------------------------------------------------
@dataclass(frozen=True)
class CaptionTask:
    """Caption retrieval: ``captions[i]`` belongs to image ``image_of[i]``; ``what`` says where they came from."""

    captions: tuple[str, ...]
    image_of: tuple[int, ...]
    what: str
    is_sample: bool = False


def caption_task(images: int = 300, path: str | Path | None = None) -> CaptionTask:
    """The first ``images`` images of the Multi30k 2016 test captions (five captions each).

    Args:
        images: how many images, in file order (deterministic).
        path: the TSV (``image``, ``caption1`` ... ``caption5``); by default
            ``$WORKBENCH_DATA/multi30k-captions/captions-test_2016.tsv``, else the built-in sample.

    Example:
        >>> task = caption_task(images=3, path=_sample_captions())
        >>> len(task.captions), task.image_of[:6], task.is_sample
        (15, (0, 0, 0, 0, 0, 1), True)
    """
    if images < 2:
        raise ValueError(f"images must be at least 2 (a caption needs other images' captions to rank against), got {images}")
    is_sample = False
    if path is None:
        from workbench.data import data_dir

        folder = data_dir()
        path = folder / CAPTION_FILE if folder is not None and (folder / CAPTION_FILE).is_file() else None
        if path is None:
            path, is_sample = _sample_captions(), True
    path = Path(path)
    is_sample = is_sample or path == _sample_captions()
    captions, image_of = [], []
    with path.open(encoding="utf-8", newline="") as f:
        rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(rows, [])
        if not header or header[0] != "image":
            raise ValueError(f"{path}: expected a header 'image, caption1, ...', got {header[:3]}")
        for row in rows:
            texts = [t.strip() for t in row[1:] if t.strip()]
            if len(texts) < 2:
                continue  # an image with one caption has nothing relevant to find
            image = len(set(image_of))
            if image == images:
                break
            captions.extend(texts)
            image_of.extend([image] * len(texts))
    n = len(set(image_of))
    if n < 2:
        raise ValueError(f"{path}: fewer than 2 images with 2 or more captions")
    what = f"{'SAMPLE ' if is_sample else ''}captions of {n} images from {path.name} ({len(captions)} queries)"
    return CaptionTask(tuple(captions), tuple(image_of), what, is_sample)


def _sample_captions() -> Path:
    from workbench.data.sample import sample_file

    return sample_file("captions")


def recall_at_k(scores: np.ndarray, image_of: Sequence[int], k: int = RECALL_K) -> float:
    """Mean recall@k of every row as a query against all other rows (the diagonal is skipped).

    A candidate's rank is the number of other candidates scored higher, plus those scored equal
    that come earlier; the relevant candidates are the other rows of the query's image.

    Args:
        scores: ``(n, n)`` similarities of the captions with each other.
        image_of: the image of each caption.
        k: how many results count.

    Example:
        >>> s = np.array([[9, 5, 1, 5], [5, 9, 1, 0], [1, 1, 9, 8], [5, 0, 8, 9]], dtype=float)
        >>> recall_at_k(s, [0, 0, 1, 1], k=1)  # caption 0 ties 1 (relevant) with 3: the earlier wins
        1.0
    """
    s = np.array(scores, dtype=np.float64)  # a copy: the diagonal is changed
    img = np.asarray(image_of)
    n = len(img)
    np.fill_diagonal(s, -np.inf)  # a query never finds itself
    k = min(k, n - 1)
    kth = np.partition(s, n - k, axis=1)[:, n - k][:, None]  # (n, 1): each query's k-th best score
    above = s > kth  # (n, n): in the top k whatever the ties (fewer than k of them)
    tied = s == kth
    tied_before = np.cumsum(tied, axis=1) - tied  # equal scores earlier in the row
    top = above | (tied & (above.sum(axis=1, keepdims=True) + tied_before < k))  # (n, n): exactly k per row
    relevant = img[:, None] == img[None, :]
    np.fill_diagonal(relevant, False)
    counts = relevant.sum(axis=1)
    has = counts > 0  # a caption alone with its image has nothing to find: not a query
    return float(((top & relevant).sum(axis=1)[has] / counts[has]).mean())


def _sts_pairs(sts: Any, limit: int | None) -> tuple[list[str], list[str], np.ndarray, str, bool]:
    from workbench.data import SampleDataWarning, load_stsb, source
    from workbench.evaluation import STSEvaluator

    if sts is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SampleDataWarning)  # said in the status line instead
            sts = load_stsb("dev")
    info = source(sts) if hasattr(sts, "info") and hasattr(sts, "column_names") else None
    if isinstance(sts, (tuple, list)) and len(sts) == 3 and not isinstance(sts[0], str):
        checked = STSEvaluator(*sts)
    elif hasattr(sts, "keys") or hasattr(sts, "column_names"):
        checked = STSEvaluator.from_dataset(sts)
    else:
        raise TypeError(f"{_OWNER} takes sts as a dataset (or dict) with sentence1, sentence2 and score columns, "
                        f"or a (sentences1, sentences2, scores) triple; got {type(sts).__name__}")
    s1, s2, gold = list(checked.sentences1), list(checked.sentences2), np.asarray(checked.scores, dtype=np.float64)
    if limit is not None:
        s1, s2, gold = s1[:limit], s2[:limit], gold[:limit]
    if len(gold) < 3:
        raise ValueError(f"{_OWNER} needs at least 3 STS pairs, got {len(gold)}")
    is_sample = bool(info is not None and info.is_sample)
    if info is None:
        what = f"STS pairs ({len(gold)} pairs)"
    else:  # the source line counts the whole file's pairs; say how many are used when that is fewer
        used = f", the first {len(gold)} used" if len(gold) < len(checked.scores) else ""
        what = f"{'SAMPLE ' if is_sample else ''}{info}{used}"
    return s1, s2, gold, what, is_sample


# ----- the measurement ---------------------------------------------------------------------------
@dataclass(frozen=True)
class CompressionPoint:
    """One model at one dimension and precision."""

    model: str
    dim: int
    precision: str
    sts_spearman: float
    recall_at_10: float
    bytes_per_vector: int

    @property
    def mb_per_million(self) -> float:
        """Memory for 1,000,000 such vectors, in MB (10^6 bytes): numerically the bytes per vector."""
        return float(self.bytes_per_vector)


def truncate_normalize(emb: np.ndarray, dim: int) -> np.ndarray:
    """The first ``dim`` columns of ``emb``, each row scaled to unit length (a zero row stays zero).

    Example:
        >>> truncate_normalize(np.array([[0.0, 2.0, 5.0], [0.0, 0.0, 1.0]]), 2).tolist()
        [[0.0, 1.0], [0.0, 0.0]]
    """
    cut = np.asarray(emb, dtype=np.float32)[:, :dim]
    return cut / np.maximum(np.linalg.norm(cut, axis=1, keepdims=True), 1e-12)


@dataclass(frozen=True)
class _Vectors:
    """One model's float32 vectors of every text the explorer scores, encoded once."""

    sts1: np.ndarray  # (pairs, dim)
    sts2: np.ndarray  # (pairs, dim)
    captions: np.ndarray  # (captions, dim)

    @property
    def dim(self) -> int:
        return int(self.captions.shape[1])


def measure(vectors: _Vectors, gold: np.ndarray, image_of: Sequence[int], dim: int, precision: str,
            model: str = "") -> CompressionPoint:
    """STS spearman and caption recall@10 of ``vectors`` cut to ``dim`` and stored at ``precision``.

    int8/uint8 ranges are calibrated on all the vectors scored (STS sentences and captions) at that dim.
    """
    parts = [truncate_normalize(v, dim) for v in (vectors.sts1, vectors.sts2, vectors.captions)]
    ranges = quantization_ranges(np.concatenate(parts)) if precision in ("int8", "uint8") else None
    q1, q2, qc = (quantize_embeddings(p, precision, ranges=ranges) for p in parts)
    with warnings.catch_warnings():  # all scores equal (1 bit left, say): spearman is NaN, shown as such
        warnings.simplefilter("ignore", ConstantInputWarning)
        sts = float(spearmanr(quantized_similarity(q1, q2, precision, pairwise=True), gold).statistic)
    recall = recall_at_k(quantized_similarity(qc, None, precision), image_of)
    return CompressionPoint(model, dim, precision, sts, recall, bytes_per_vector(dim, precision))


def default_dims(full: Sequence[int]) -> list[int]:
    """The slider's dims: each model's full size and the powers of two from 32 below the largest, descending.

    Each precision's curve is measured at all of them when first chosen, so they are kept few.

    Example:
        >>> default_dims([384, 256])
        [384, 256, 128, 64, 32]
    """
    top = max(full)
    dims = set(full) | {2**p for p in range(5, 16) if 2**p < top}
    return sorted(dims, reverse=True)


# ----- the widget --------------------------------------------------------------------------------
class CompressionExplorer(View):
    """STS-B dev spearman and caption recall@10 as the vectors lose dimensions and precision, live.

    Each model's texts are encoded once (float32, all dimensions) and every (dim, precision)
    setting is measured on those vectors when the explorer is made. The slider picks a number of
    dimensions (the first ``d``, renormalised), the buttons a precision; the figure shows, per
    model, both metrics against the dimension at that precision (solid) and in float32 (dotted),
    with the chosen setting marked, and the table the numbers with the share kept of the
    model's full float32 score, bytes per vector and the memory for 1M vectors.

    Args:
        models: ``{name: encoder}`` (a workbench model, a SentenceTransformer, a function
            ``texts -> array``), or one encoder. Two twins (plain and Matryoshka-trained) on one
            plot show what the Matryoshka loss bought.
        sts: STS pairs (a dataset or dict with ``sentence1``/``sentence2``/``score``, or a triple);
            by default STS-B dev (from ``WORKBENCH_DATA``, else the built-in sample).
        captions: a :class:`CaptionTask`; by default :func:`caption_task` with ``images`` images.
        images: how many Multi30k test images the default caption task takes.
        sts_limit: use the first this many STS pairs only.
        dims: the slider's dimensions; by default :func:`default_dims`. A model narrower than a
            dim has no point there.
        precision: the precision shown first, one of :data:`~workbench.similarity.PRECISIONS`.

    Attributes:
        fig: the ``FigureWidget``: per model, traces named ``"<model> · <precision>"``,
            ``"<model> · float32"`` and ``"<model> · chosen"``, in the STS panel (``xaxis="x"``)
            and the retrieval panel (``xaxis="x2"``).
        dim, precision_buttons: the slider and the precision buttons. ``table``: the HTML table.
        points: ``{model: CompressionPoint}`` at the chosen setting; ``baseline``: each model's
            full float32 point.

    Example:
        >>> chars = lambda texts: np.array([[t.count(c) + 1.0 for c in "abcdeghilmnorstuwy "] for t in texts])
        >>> sts = (["a cat sits", "a man runs", "the sky is blue", "dogs bark"],
        ...        ["a kitten sits", "a woman walks", "stocks fell", "a dog barks"], [4.8, 2.5, 0.2, 4.0])
        >>> w = CompressionExplorer({"chars": chars}, sts=sts, captions=caption_task(3, _sample_captions()), dims=[19, 8])
        >>> w.dim.value = 8
        >>> w.precision_buttons.value = "binary"
        >>> p = w.points["chars"]
        >>> p.dim, p.precision, p.bytes_per_vector
        (8, 'binary', 1)
    """

    def __init__(
        self,
        models: Mapping[str, Any] | Any,
        sts: Any = None,
        captions: CaptionTask | None = None,
        *,
        images: int = 300,
        sts_limit: int | None = None,
        dims: Sequence[int] | None = None,
        precision: str = "float32",
    ) -> None:
        super().__init__()
        if not isinstance(models, Mapping):
            models = {encoder_name(models): models}
        if not models:
            raise ValueError(f"{_OWNER} needs at least one model: {{'name': encoder}}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
        s1, s2, self.gold, sts_what, sts_sample = _sts_pairs(sts, sts_limit)
        self.task = captions if captions is not None else caption_task(images)
        self.is_sample = sts_sample or self.task.is_sample
        self.vectors: dict[str, _Vectors] = {}
        for name, encoder in models.items():
            cache = EmbeddingCache(encoder)
            self.vectors[str(name)] = _Vectors(cache(s1), cache(s2), cache(list(self.task.captions)))
        full = [v.dim for v in self.vectors.values()]
        dims = sorted({int(d) for d in dims}, reverse=True) if dims is not None else default_dims(full)
        if not dims or min(dims) < 1 or max(dims) > max(full):
            raise ValueError(f"dims must lie in 1..{max(full)} (the widest model's dim), got {list(dims)}")
        self.dims = dims
        self._memo: dict[tuple[str, int, str], CompressionPoint] = {}
        # Every setting is measured now (numpy on the cached vectors; seconds for 1,500 captions), so
        # that moving a control only redraws.
        for name in self.vectors:
            for p in PRECISIONS:
                self.curve(name, p)
        self.baseline = {name: self.point(name, v.dim, "float32") for name, v in self.vectors.items()}
        self.points: dict[str, CompressionPoint] = {}

        self.dim = widgets.SelectionSlider(options=dims, value=dims[0], description="dimensions",
                                           continuous_update=False, layout=widgets.Layout(width="420px"))
        self.precision_buttons = widgets.ToggleButtons(options=list(PRECISIONS), value=precision,
                                                       description="precision", style={"button_width": "72px"})
        self.fig = figure_widget(self._figure())
        self.table = widgets.HTML()
        note = " · <b>SAMPLE data: the numbers mean nothing</b> (set WORKBENCH_DATA)" if self.is_sample else ""
        self.status = widgets.HTML(f"STS: {html.escape(sts_what)} · retrieval: {html.escape(self.task.what)}{note}")
        update = self.log.guard(lambda _change: self.update(), "compression")
        self.dim.observe(update, names=["value"])
        self.precision_buttons.observe(update, names=["value"])
        self.widget = widgets.VBox([self.status, self.dim, self.precision_buttons, self.fig, self.table, self.log.output])
        self.update()

    # ----- numbers ------------------------------------------------------------------------------
    def point(self, model: str, dim: int, precision: str) -> CompressionPoint | None:
        """The measurement of one model at one setting (memoised); ``None`` past the model's dim."""
        vectors = self.vectors[model]
        if dim > vectors.dim:
            return None
        key = (model, dim, precision)
        if key not in self._memo:
            twin = _TWINS.get(precision)
            if twin is not None:  # the same scores exactly: take the twin's numbers, with this precision's name
                self._memo[key] = dataclasses.replace(self.point(model, dim, twin), precision=precision)
            else:
                self._memo[key] = measure(vectors, self.gold, self.task.image_of, dim, precision, model)
        return self._memo[key]

    def curve(self, model: str, precision: str) -> list[CompressionPoint | None]:
        """The model's points at every slider dim, at ``precision``."""
        return [self.point(model, d, precision) for d in self.dims]

    # ----- drawing ------------------------------------------------------------------------------
    def _figure(self) -> go.Figure:
        fig = make_subplots(rows=1, cols=2, subplot_titles=("STS spearman", f"caption recall@{RECALL_K}"),
                            horizontal_spacing=0.1)
        for i, name in enumerate(self.vectors):
            color = _COLORS[i % len(_COLORS)]
            for col in (1, 2):
                legend = col == 1
                fig.add_trace(go.Scatter(name=f"{name} · float32", mode="lines", line={"color": color, "dash": "dot"},
                                         legendgroup=name, showlegend=legend), row=1, col=col)
                fig.add_trace(go.Scatter(name=f"{name} · {self.precision_buttons.value}", mode="lines+markers",
                                         line={"color": color}, legendgroup=name, showlegend=legend), row=1, col=col)
                fig.add_trace(go.Scatter(name=f"{name} · chosen", mode="markers", legendgroup=name, showlegend=False,
                                         marker={"color": color, "size": 14, "symbol": "circle-open", "line": {"width": 3}}),
                              row=1, col=col)
        for col in (1, 2):
            fig.update_xaxes(type="log", title_text="dimensions", tickvals=self.dims, row=1, col=col)
        fig.update_layout(height=440, margin={"t": 80, "b": 40, "l": 50, "r": 20}, template="plotly_white",
                          title={"y": 0.97, "yanchor": "top"})  # above the panel titles, not on them
        return fig

    def update(self) -> None:
        """Redraw for the slider's dim and the chosen precision (numpy on the cached vectors only)."""
        dim, precision = int(self.dim.value), self.precision_buttons.value
        self.points = {}
        rows = []
        with self.fig.batch_update():
            traces = iter(self.fig.data)
            for name in self.vectors:
                now = self.curve(name, precision)
                ref = self.curve(name, "float32")
                chosen = self.point(name, dim, precision)
                if chosen is not None:
                    self.points[name] = chosen
                for metric in ("sts_spearman", "recall_at_10"):
                    for trace, points, label in ((next(traces), ref, "float32"), (next(traces), now, precision)):
                        trace.name = f"{name} · {label}"
                        kept = [p for p in points if p is not None]
                        trace.x = [p.dim for p in kept]
                        trace.y = [getattr(p, metric) for p in kept]
                        trace.customdata = [p.bytes_per_vector for p in kept]
                        trace.hovertemplate = f"%{{x}} dims · %{{y:.4f}} · %{{customdata}} B/vector<extra>{html.escape(trace.name)}</extra>"
                    mark = next(traces)
                    mark.x = [dim] if chosen is not None else []
                    mark.y = [getattr(chosen, metric)] if chosen is not None else []
                base = self.baseline[name]
                if chosen is None:
                    rows.append([name, dim, precision, "—", "—", "—", "—"])
                    continue
                rows.append([
                    name, dim, precision,
                    f"{chosen.sts_spearman:.4f} ({_share(chosen.sts_spearman, base.sts_spearman)})",
                    f"{chosen.recall_at_10:.4f} ({_share(chosen.recall_at_10, base.recall_at_10)})",
                    f"{chosen.bytes_per_vector:,}", f"{chosen.mb_per_million:,.0f} MB",
                ])
        self.fig.layout.title.text = f"{dim} dimensions · {precision}" + (" · SAMPLE" if self.is_sample else "")
        self.table.value = html_table(
            ["model", "dims", "precision", "STS spearman (of float32 full)", f"recall@{RECALL_K} (of float32 full)",
             "bytes / vector", "1M vectors"], rows)


def _share(value: float, full: float) -> str:
    return f"{100 * value / full:.1f}%" if full else "—"
