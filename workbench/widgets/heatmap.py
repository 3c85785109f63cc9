"""Similarity heatmaps: sentences × sentences, queries × corpus, and two models side by side.

The numbers drawn are exactly :func:`workbench.similarity.similarity_matrix` of the encoder's
embeddings; the widgets only cache embeddings (per model and sentence) and draw, with the figure
builders of :mod:`workbench.figures` (the report's too). Colour scales are fixed so that two
pictures can be compared: cosine always spans [−1, 1]; the other functions take their range from
the data on screen, and the title says so.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.figures import (
    color_range,
    colorscale,
    draw_similarity,
    fill_heatmap,
    label_ticks,
    short_label,
    similarity_figure,
)
from workbench.similarity import SIMILARITY_FUNCTIONS, canonical_fn_name, similarity_matrix
from workbench.widgets._common import (
    EmbeddingCache,
    View,
    encoder_name,
    figure_widget,
    resolve_models,
    two_names,
    widget_texts,
)

EXAMPLE_SENTENCES: tuple[str, ...] = (
    "A man is playing a guitar.",
    "Someone is playing an instrument.",
    "A woman is slicing an onion.",
    "A person is cutting vegetables.",
    "The stock market fell sharply today.",
)

_EMPTY_TITLE = "no sentences: type one per line above"


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _sentences(sentences: Any, name: str, owner: str) -> list[str]:
    """The sentences for a text box of one sentence per line: strings, at least one not blank,
    none with a line break (it would silently become two rows)."""
    items = widget_texts(sentences, name, owner)
    for i, text in enumerate(items):
        if len(text.splitlines()) > 1:
            raise ValueError(f"{name}[{i}] ({text!r:.60}) has a line break; {owner} shows one sentence per line")
    if not _lines("\n".join(items)):
        raise ValueError(f"{owner} needs at least one non-blank sentence in {name}, got only blank ones")
    return items


def _textarea(sentences: Sequence[str], placeholder: str) -> widgets.Textarea:
    return widgets.Textarea(
        value="\n".join(sentences),
        placeholder=placeholder,
        layout=widgets.Layout(width="100%", height="140px"),
    )


class SimilarityHeatmap(View):
    """Similarity of every sentence with every other (or queries × corpus), live.

    Controls (ipywidgets, drive them by setting ``.value``): ``text`` (one sentence per line;
    the queries when ``corpus`` is given), ``corpus_text`` (only with ``corpus``), ``fn`` (the
    similarity function) and ``model`` (only with several models). ``fig`` is the
    ``plotly.graph_objects.FigureWidget``; its single heatmap's ``z`` is
    ``similarity_matrix(encode(rows), encode(cols), fn)``. Every change redraws it in place.

    Args:
        encoder: a workbench model, a SentenceTransformer or a function ``texts -> array``;
            may be ``None`` when ``models`` is given.
        sentences: the initial sentences (a few examples when ``None``).
        fn: similarity function: ``"cosine"``, ``"dot"``, ``"euclidean"`` or ``"manhattan"``.
        models: more encoders by name, to switch between with the ``model`` dropdown.
        corpus: turns on query-vs-corpus mode: rows are ``sentences``, columns these.

    Raises:
        TypeError: ``sentences`` or ``corpus`` is not an ordered list, or holds a non-string
            (named by index).
        ValueError: an empty or all-blank list, or a sentence with a line break (the text box
            holds one per line). A text box emptied later shows a message in the figure's title.

    Example:
        >>> import numpy as np
        >>> encode = lambda texts: np.array([[len(t), t.count("a") + 1.0] for t in texts])
        >>> w = SimilarityHeatmap(encode, ["a cat", "a dog", "bananas"])
        >>> w.text.value = "a cat\\nbananas"
        >>> w.fig.data[0].z.shape
        (2, 2)
    """

    def __init__(
        self,
        encoder: Any = None,
        sentences: Sequence[str] | None = None,
        fn: str = "cosine",
        models: Mapping[str, Any] | None = None,
        corpus: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        self.models = resolve_models(encoder, models)
        self._caches: dict[str, EmbeddingCache] = {}
        rows = _sentences(sentences, "sentences", "SimilarityHeatmap") if sentences is not None else EXAMPLE_SENTENCES
        cols = _sentences(corpus, "corpus", "SimilarityHeatmap") if corpus is not None else None
        self.text = _textarea(rows, "one sentence per line")
        self.corpus_text = _textarea(cols, "corpus: one sentence per line") if cols is not None else None
        self.fn = widgets.Dropdown(
            options=list(SIMILARITY_FUNCTIONS), value=canonical_fn_name(fn), description="fn"
        )
        names = list(self.models)
        self.model = (
            widgets.Dropdown(options=names, value=names[0], description="model") if len(names) > 1 else None
        )
        self.fig = figure_widget(similarity_figure(np.zeros((0, 0)), []))
        self.z = np.zeros((0, 0))
        controls = [c for c in (self.fn, self.model) if c is not None]
        for control in (self.text, self.corpus_text, *controls):
            if control is not None:
                control.observe(self.log.guard(self._on_change, "update"), names=["value"])
        texts = [self.text] if self.corpus_text is None else [self.text, self.corpus_text]
        self.widget = widgets.VBox([widgets.HBox(controls), widgets.HBox(texts), self.fig, self.log.output])
        self.log.guard(self.update, "update")()

    @property
    def model_name(self) -> str:
        """The name of the encoder in use."""
        return self.model.value if self.model is not None else next(iter(self.models))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts`` under the current model, through the per-model cache."""
        name = self.model_name
        if name not in self._caches:
            self._caches[name] = EmbeddingCache(self.models[name])
        return self._caches[name](texts)

    def rows_and_cols(self) -> tuple[list[str], list[str]]:
        """The sentences on the two axes: (rows, columns)."""
        rows = _lines(self.text.value)
        return rows, (_lines(self.corpus_text.value) if self.corpus_text is not None else rows)

    def _on_change(self, change: dict[str, Any]) -> None:
        self.update()

    def update(self) -> None:
        """Recompute the matrix and redraw the figure in place."""
        rows, cols = self.rows_and_cols()
        fn = self.fn.value
        if rows and cols:
            a = self.encode(rows)
            z = similarity_matrix(a, None if self.corpus_text is None else self.encode(cols), fn=fn)
            z = z + 0.0  # −0.0 (a negated zero distance) would be written "−0.00"
        else:
            z = np.zeros((len(rows), len(cols)), dtype=np.float32)
        title = f"{fn} similarity · {html.escape(self.model_name)}" if rows and cols else _EMPTY_TITLE
        with self.fig.batch_update():
            draw_similarity(self.fig, z, rows, cols, fn, title=title)
        self.z = z


# The difference panel's colour scale: ±this share of the similarity scale's span (±0.25 for cosine).
# It does not follow the difference itself, so a student that got closer to its teacher looks paler.
DIFF_SHARE = 0.125


class CompareHeatmaps(View):
    """Two encoders' similarity matrices on the same sentences, and their difference.

    Panels: model A, model B (the same fixed colour scale, one colour bar), and A − B on a
    diverging scale centred at 0 whose range is **fixed**, not taken from the difference: ±0.25
    for cosine (±1/8 of the similarity scale's span for the other functions, or ``diff_range``),
    so that two of these widgets (a student before and after distillation) can be compared by
    eye: the paler difference is the closer model. A larger difference is drawn in the darkest
    colour and the title says how large the largest one is. The axes are numbered; the numbered
    sentences are listed above the figure (and each cell's hover has both texts).
    Controls: ``text``, ``fn``.

    Args:
        encoder_a: the first encoder (e.g. a teacher).
        encoder_b: the second encoder (e.g. its student); the dims may differ.
        sentences: the sentences (a few examples when ``None``).
        labels: the two panel names (an empty one: the encoder's name).
        fn: similarity function name.
        diff_range: the difference colour scale, ±``diff_range``; ``None``: as above.

    Raises:
        TypeError: ``sentences`` holds a non-string or is unordered; ``labels`` is not two strings.
        ValueError: ``sentences`` is empty or all blank, a sentence has a line break, or
            ``diff_range`` is not a positive number.

    Example:
        >>> import numpy as np
        >>> a = lambda texts: np.array([[len(t), 1.0] for t in texts])
        >>> b = lambda texts: np.array([[1.0, len(t)] for t in texts])
        >>> w = CompareHeatmaps(a, b, ["x", "yy", "zzz"])
        >>> np.allclose(w.fig.data[2].z, w.fig.data[0].z - w.fig.data[1].z)
        True
        >>> w.fig.data[2].zmin, w.fig.data[2].zmax
        (-0.25, 0.25)
    """

    def __init__(
        self,
        encoder_a: Any,
        encoder_b: Any,
        sentences: Sequence[str] | None = None,
        labels: tuple[str, str] = ("teacher", "student"),
        fn: str = "cosine",
        diff_range: float | None = None,
    ) -> None:
        super().__init__()
        name_a, name_b = two_names(labels, "labels", "CompareHeatmaps")
        self.labels = (name_a or encoder_name(encoder_a), name_b or encoder_name(encoder_b))
        if diff_range is not None and (
            isinstance(diff_range, bool) or not isinstance(diff_range, (int, float)) or not 0 < diff_range < np.inf
        ):
            raise ValueError(f"CompareHeatmaps: diff_range must be a positive number, got {diff_range!r}")
        self.diff_range = None if diff_range is None else float(diff_range)
        rows = _sentences(sentences, "sentences", "CompareHeatmaps") if sentences is not None else EXAMPLE_SENTENCES
        self._caches = (EmbeddingCache(encoder_a), EmbeddingCache(encoder_b))
        self.text = _textarea(rows, "one sentence per line")
        self.fn = widgets.Dropdown(
            options=list(SIMILARITY_FUNCTIONS), value=canonical_fn_name(fn), description="fn"
        )
        la, lb = (short_label(x, _PANEL_CHARS) for x in self.labels)
        half = (_PANEL_CHARS - 3) // 2  # the difference's title: both names, each cut to half the room
        difference = (f"{la} − {lb}" if len(self.labels[0] + self.labels[1]) + 3 <= _PANEL_CHARS
                      else f"{short_label(self.labels[0], half)} − {short_label(self.labels[1], half)}")
        fig = make_subplots(rows=1, cols=3, subplot_titles=(la, lb, difference), horizontal_spacing=0.05)
        for col in (1, 2, 3):
            fig.add_trace(go.Heatmap(z=[[0.0]], showscale=col != 2, textfont=dict(size=15)), row=1, col=col)
        fig.update_yaxes(autorange="reversed")
        fig.update_annotations(font_size=16)  # the panel titles
        fig.update_layout(margin=dict(l=30, r=10, t=90, b=90), font_size=14, autosize=True)
        self.fig = figure_widget(fig)
        self.fig.layout.title = dict(y=0.97, yref="container", yanchor="top", font_size=15)
        self.key = widgets.HTML()  # the numbered sentences of the axes
        self.a = self.b = self.diff = np.zeros((0, 0))
        for control in (self.text, self.fn):
            control.observe(self.log.guard(self._on_change, "update"), names=["value"])
        self.widget = widgets.VBox(
            [self.fn, self.text, self.key, self.fig, self.log.output], layout=widgets.Layout(width="100%")
        )
        self.log.guard(self.update, "update")()

    @property
    def sentences(self) -> list[str]:
        """The non-empty lines of the text box."""
        return _lines(self.text.value)

    def difference_range(self, zmin: float, zmax: float) -> float:
        """The difference panel's colour range ±r for a similarity colour range [zmin, zmax]."""
        return self.diff_range if self.diff_range is not None else DIFF_SHARE * (zmax - zmin)

    def _on_change(self, change: dict[str, Any]) -> None:
        self.update()

    def update(self) -> None:
        """Recompute both matrices and the difference; redraw in place."""
        rows, fn = self.sentences, self.fn.value
        if rows:
            a = similarity_matrix(self._caches[0](rows), fn=fn) + 0.0  # no −0.0 in the cells
            b = similarity_matrix(self._caches[1](rows), fn=fn) + 0.0
        else:
            a = b = np.zeros((0, 0), dtype=np.float32)
        diff = a - b
        zmin, zmax, note = color_range(fn, a, b)
        bound = self.difference_range(zmin, zmax)
        largest = float(np.abs(diff).max()) if diff.size else 0.0
        clipped = " (darkest cells: beyond the scale)" if largest > bound else ""
        title = (
            f"{fn} similarity"
            + (" = −distance (0: identical)" if fn in ("euclidean", "manhattan") else "")
            + (f" · {note}" if note else "")
            + f"<br>difference colours fixed at ±{bound:.3g}; largest difference here {largest:.2f}{clipped}"
        ) if rows else _EMPTY_TITLE
        bar = dict(orientation="h", y=-0.1, yanchor="top", len=0.6, thickness=12)
        with self.fig.batch_update():
            for trace, z in zip(self.fig.data, (a, b, diff), strict=True):
                fill_heatmap(trace, z, rows, rows, fn)
            la, lb = (html.escape(x) for x in self.labels)
            self.fig.data[2].hovertemplate = f"%{{text}}<br>{la} − {lb}: %{{z:.4f}}<extra></extra>"
            for i in range(3):
                numbers = [str(k + 1) for k in range(len(rows))]
                for axis in ("xaxis", "yaxis"):
                    name = axis if i == 0 else f"{axis}{i + 1}"
                    label_ticks(self.fig.layout[name], numbers, len(rows))
            # A and B share one fixed scale (one colour bar); the difference is symmetric around 0.
            for trace in self.fig.data[:2]:
                trace.update(zmin=zmin, zmax=zmax, colorscale=colorscale(fn), colorbar={**bar, "x": 0.34})
            self.fig.data[2].update(
                zmin=-bound, zmax=bound, colorscale="RdBu_r", colorbar={**bar, "x": 0.84, "len": 0.3}
            )
            self.fig.layout.title.text = title  # no user text in it: the fn name and numbers
            self.fig.layout.height = max(440, 200 + 40 * len(rows))
        self.key.value = _numbered(rows)
        self.a, self.b, self.diff = a, b, diff


_PANEL_CHARS = 34  # a panel title longer than this would run into its neighbour's


def _numbered(rows: Sequence[str]) -> str:
    """The sentences of the axes, numbered as the ticks are, in two columns when there are many."""
    items = "".join(f"<li>{html.escape(t)}</li>" for t in rows)
    columns = "columns: 2;" if len(rows) > 6 else ""
    return f'<ol style="margin: 4px 0 0 0; font-size: 15px; line-height: 1.35; {columns}">{items}</ol>'
