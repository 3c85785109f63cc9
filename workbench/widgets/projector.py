"""Embedding projector: texts as points in 2-D/3-D, coloured by label, searchable, clickable.

The PCA view appears at once; the UMAP layout is computed in a background thread and replaces
it when ready, so the kernel stays responsive. The kNN graph (:class:`workbench.projection.
Projection`) is computed once: an ``n_neighbors`` change slices it, and a ``min_dist`` change
does not touch it. Either slider re-runs only the layout, continuing from the one on screen
with half the epochs (faster, and the picture does not jump); a layout therefore depends on
the path taken to it (with a seed, the same path gives the same picture). Layouts already
computed are kept, so returning to a slider value is instant.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import ipywidgets as widgets
import numpy as np
from plotly.graph_objects import FigureWidget  # noqa: F401 - not lazily: its import takes seconds, once

from workbench.figures import WEBGL_ABOVE, group_indices, hover_texts, projection_figure, scatter_trace
from workbench.formatting import duration
from workbench.projection import MIN_UMAP_POINTS, Projection
from workbench.widgets._common import (
    EmbeddingCache,
    LatestJob,
    View,
    figure_widget,
    html_table,
    two_names,
    widget_labels,
    widget_texts,
)

_CACHED_LAYOUTS = 16


class Layout(NamedTuple):
    """The parameters of one UMAP layout."""

    dim: int
    n_neighbors: int
    min_dist: float


class Projector(View):
    """Texts as points: PCA at once, UMAP when ready; colour by label, search, click for neighbours.

    Controls: ``method_control`` ("pca"/"umap"), ``n_neighbors``, ``min_dist``, ``dim_control`` (2 or 3),
    ``search`` (highlights texts containing it, case-insensitive, in a "matches" trace),
    ``color_by`` (only when ``labels`` is a mapping of columns). ``fig`` is the FigureWidget:
    one trace per label value (customdata holds each point's index into ``texts``), then the
    "matches" and "selected" traces. Clicking a point lists its nearest neighbours (from the
    kNN graph, with cosine similarity) in ``neighbors``.

    Args:
        encoder: a workbench model, a SentenceTransformer or a function ``texts -> array``;
            may be ``None`` when ``embeddings`` is given.
        texts: the texts to show.
        labels: one label per text, or ``{"column": labels, ...}`` to choose from.
        method: the view to show first, ``"umap"`` or ``"pca"``.
        dim: 2 or 3.
        embeddings: already computed ``(n, d)`` embeddings of ``texts`` (the encoder is then
            not called).
        n_neighbors: initial UMAP ``n_neighbors`` (the slider goes up to ``max_neighbors``).
        min_dist: initial UMAP ``min_dist``.
        seed: UMAP seed (reproducible, but single-threaded).
        n_epochs: UMAP epochs for a layout from scratch; a slider change runs half of them.
        background: compute UMAP in a background thread; ``False`` computes it inside the
            callback (for tests and scripts).
        max_neighbors: the kNN graph is computed once for this many neighbours.
        metric: kNN metric, ``"cosine"`` or ``"euclidean"``.
        k: how many neighbours a click lists.
        title: the figure title.

    Raises:
        TypeError: ``texts`` is unordered (a set, a dict) or holds a non-string, or a label is
            neither a string nor a number (named by index).
        ValueError: ``texts`` is empty, or a labels column's length differs from it.

    Example:
        >>> import numpy as np
        >>> texts = [f"text {i}" for i in range(30)]
        >>> emb = np.random.default_rng(0).normal(size=(30, 8))
        >>> w = Projector(None, texts, embeddings=emb, method="pca")
        >>> w.search.value = "text 1"
        >>> w.matches.tolist()
        [1, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]
    """

    def __init__(
        self,
        encoder: Any,
        texts: Sequence[str],
        labels: Sequence[Any] | Mapping[str, Sequence[Any]] | None = None,
        method: str = "umap",
        dim: int = 2,
        *,
        embeddings: Any = None,
        n_neighbors: int = 15,
        min_dist: float = 0.1,
        seed: int | None = None,
        n_epochs: int = 200,
        background: bool = True,
        max_neighbors: int = 50,
        metric: str = "cosine",
        k: int = 10,
        title: str = "",
    ) -> None:
        super().__init__()
        self.texts = widget_texts(texts, "texts", "Projector")
        n = len(self.texts)
        if method not in ("umap", "pca") or dim not in (2, 3):
            raise ValueError(f"method must be 'umap' or 'pca' and dim 2 or 3, got {method!r}, {dim!r}")
        emb = np.asarray(embeddings if embeddings is not None else EmbeddingCache(encoder)(self.texts))
        if emb.shape[0] != n:
            raise ValueError(f"{emb.shape[0]} embeddings for {n} texts")
        self.projection = Projection(emb, metric=metric, max_neighbors=max_neighbors)
        self.columns = _label_columns(labels, n)
        self.seed, self.n_epochs, self.k = seed, n_epochs, k
        self.umap_runs = 0
        self.coords = self.projection.pca(dim)  # (n, dim), what is on screen
        self.shown = "pca"
        self.matches = np.zeros(0, dtype=np.int64)
        self.selected: int | None = None
        self.neighbor_indices = np.zeros(0, dtype=np.int64)
        self._layouts: dict[Layout, np.ndarray] = {}
        self._shown_params: Layout | None = None
        self._has_labels = labels is not None
        self._select_listeners: list[Callable[[int], None]] = []
        self._fig_lock = threading.RLock()  # the figure is drawn from the UMAP thread too
        self._job = LatestJob(self._compute, self.log, self._failed, background)

        top = max(2, min(max_neighbors, n - 1))
        self.method_control = widgets.ToggleButtons(options=["pca", "umap"], value=method, description="view")
        self.dim_control = widgets.ToggleButtons(options=[("2-D", 2), ("3-D", 3)], value=dim, description="dim")
        once = dict(continuous_update=False)  # one layout when the slider is released, not per pixel
        value = min(max(n_neighbors, 2), top)
        self.n_neighbors = widgets.IntSlider(value=value, min=2, max=top, description="n_neighbors", **once)
        self.min_dist = widgets.FloatSlider(
            value=min_dist, min=0.0, max=0.99, step=0.01, description="min_dist", **once
        )
        self.search = widgets.Text(placeholder="highlight texts containing…", description="search")
        names = list(self.columns)
        self.color_by = (
            widgets.Dropdown(options=names, value=names[0], description="colour") if len(names) > 1 else None
        )
        self.status = widgets.HTML()
        self.neighbors = widgets.HTML("<i>click a point to list its nearest neighbours</i>")
        self.fig = figure_widget(projection_figure(np.zeros((0, 2)), [], title=title))  # traces: _rebuild
        self.webgl = n > WEBGL_ABOVE

        guard = self.log.guard
        for control in (self.method_control, self.dim_control, self.n_neighbors, self.min_dist):
            control.observe(guard(lambda change: self.refresh(), "refresh"), names=["value"])
        self.search.observe(guard(lambda change: self.highlight(change["new"]), "search"), names=["value"])
        if self.color_by is not None:
            self.color_by.observe(guard(lambda change: self._rebuild(), "colour"), names=["value"])
        rows = [[self.method_control, self.dim_control], [self.n_neighbors, self.min_dist], [self.search, self.color_by]]
        self.controls = widgets.VBox([widgets.HBox([c for c in row if c is not None]) for row in rows])
        self.widget = widgets.VBox([self.controls, self.status, self.fig, self.neighbors, self.log.output])
        self._rebuild()
        guard(self.refresh, "umap")()

    # ----- state ------------------------------------------------------------------------------
    def layout_params(self) -> Layout:
        """The UMAP parameters the controls ask for now."""
        return Layout(self.dim_control.value, self.n_neighbors.value, round(float(self.min_dist.value), 4))

    def refresh(self) -> None:
        """Show what the controls ask for: PCA at once, UMAP from cache or (re)computed."""
        params = self.layout_params()
        if self.method_control.value == "pca":
            self._show(self.projection.pca(params.dim), "pca")
            return
        if params in self._layouts:
            self._show(self._layouts[params], "umap", params)
            return
        if self.coords.shape[1] != params.dim:
            self._show(self.projection.pca(params.dim), "pca")  # a preview in the new dim meanwhile
        self.status.value = f"<i>{self._describe()} · computing UMAP {_params_text(params)}…</i>"
        self._job.submit(params)  # in the background; the latest request wins

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no UMAP layout is being computed; ``False`` on timeout."""
        return self._job.wait(timeout)

    def _failed(self, exc: BaseException) -> None:
        self.status.value = "<b>UMAP failed</b>: see the error below"

    def _compute(self, params: Layout) -> None:
        start = time.perf_counter()
        if params in self._layouts:  # asked for again while another layout was running
            self._show(self._layouts[params], "umap", params)
            return
        # A slider moved: continue from the layout on screen instead of starting over.
        warm = self.shown == "umap" and self.coords.shape[1] == params.dim
        coords = self.projection.umap(
            params.dim,
            params.n_neighbors,
            params.min_dist,
            seed=self.seed,
            n_epochs=max(50, self.n_epochs // 2) if warm else self.n_epochs,
            init=self.coords if warm else "spectral",
        )
        self.umap_runs += 1
        if len(self._layouts) >= _CACHED_LAYOUTS:
            self._layouts.pop(next(iter(self._layouts)))
        self._layouts[params] = coords
        if not self._job.superseded() and self.method_control.value == "umap" and self.layout_params() == params:
            self._show(coords, "umap", params, seconds=time.perf_counter() - start)

    def label_column(self) -> list[str]:
        """The labels the points are coloured by now."""
        return self.columns[self.color_by.value if self.color_by is not None else next(iter(self.columns))]

    # ----- drawing ----------------------------------------------------------------------------
    def _show(
        self, coords: np.ndarray, kind: str, params: Layout | None = None, seconds: float | None = None
    ) -> None:
        with self._fig_lock:
            rebuild = coords.shape[1] != self.coords.shape[1]
            self.coords, self.shown, self._shown_params = coords, kind, params
            if rebuild:
                self._rebuild()
            else:
                with self.fig.batch_update():
                    for trace, idx in zip(self.fig.data, self._groups, strict=False):
                        _set_xyz(trace, coords[idx])
                    self._draw_overlays()
        took = f" · {duration(seconds)}" if seconds is not None else ""
        self.status.value = f"{self._describe()}{took}"

    def _describe(self) -> str:
        if self.shown == "pca" or self.projection.n < MIN_UMAP_POINTS:
            few = self.method_control.value == "umap" and self.projection.n < MIN_UMAP_POINTS
            return "PCA" + (" (too few points for UMAP)" if few else "")
        return f"UMAP {_params_text(self._shown_params)}" if self._shown_params else "UMAP"

    def _rebuild(self) -> None:
        """Replace all traces (needed when the dimension or the colouring changes)."""
        with self._fig_lock:
            groups = group_indices(self.label_column())
            self._groups = [idx for _, idx in groups]
            size = 14 if self.coords.shape[1] == 2 else 7
            ring = dict(size=size, color="rgba(0,0,0,0)", line=dict(width=2, color="black"))
            traces = [self._scatter(name, idx) for name, idx in groups] + [
                self._scatter("matches", [], marker=ring),
                self._scatter("selected", [], marker=dict(size=size, symbol="diamond", color="crimson")),
            ]
            with self.fig.batch_update():
                self.fig.data = []
            self.fig.add_traces(traces)
            for trace in self.fig.data:
                trace.on_click(self.log.guard(self._on_click, "click"))
            self.fig.layout.scene = dict(aspectmode="cube") if self.coords.shape[1] == 3 else {}
            with self.fig.batch_update():
                self._draw_overlays()

    def _scatter(self, name: str, idx: Sequence[int], marker: dict[str, Any] | None = None) -> Any:
        return scatter_trace(self.coords, self.texts, idx, name, marker=marker, webgl=self.webgl)

    def _draw_overlays(self) -> None:
        """Move the "matches" and "selected" traces onto the current coordinates."""
        *_, matches, selected = self.fig.data
        chosen = ([] if self.selected is None else [self.selected]) + list(self.neighbor_indices)
        for trace, idx in ((matches, self.matches), (selected, np.asarray(chosen, dtype=np.int64))):
            _set_xyz(trace, self.coords[idx])
            trace.customdata = idx
            trace.text = hover_texts(self.texts, idx)
        matches.name = f"matches ({len(self.matches)})"

    # ----- interaction ------------------------------------------------------------------------
    def highlight(self, query: str) -> np.ndarray:
        """Mark the texts containing ``query`` (case-insensitive); returns their indices."""
        q = query.strip().lower()
        self.matches = np.array(
            [i for i, t in enumerate(self.texts) if q in t.lower()] if q else [], dtype=np.int64
        )
        with self._fig_lock, self.fig.batch_update():
            self._draw_overlays()
        return self.matches

    def _on_click(self, trace: Any, points: Any, state: Any) -> None:
        if points.point_inds:
            self.select(int(trace.customdata[points.point_inds[0]]))

    def select(self, i: int, notify: bool = True) -> None:
        """Select point ``i``: list its nearest neighbours and mark them in the figure."""
        idx, sims = self.projection.neighbors(i, self.k)
        self.selected, self.neighbor_indices = i, idx
        column = self.label_column() if self._has_labels else None
        rows = [
            (r + 1, self.texts[j], *([column[j]] if column else []), float(s))
            for r, (j, s) in enumerate(zip(idx, sims, strict=True))
        ]
        score = "cosine" if self.projection.metric == "cosine" else "−distance"
        header = ["#", "text", *(["label"] if column else []), score]
        self.neighbors.value = html_table(header, rows, caption=f"nearest neighbours of: {self.texts[i]}")
        with self._fig_lock, self.fig.batch_update():
            self._draw_overlays()
        if notify:
            for listener in self._select_listeners:
                listener(i)

    def on_select(self, callback: Callable[[int], None]) -> None:
        """Call ``callback(index)`` whenever a point is selected by a click."""
        self._select_listeners.append(callback)


class CompareProjector(View):
    """Two encoders' projections of the same texts, side by side, with shared controls.

    The controls (``method_control``, ``dim_control``, ``n_neighbors``, ``min_dist``, ``search``) drive both
    views; clicking a point in either lists its neighbours under both models.

    Args:
        encoder_a: the first encoder.
        encoder_b: the second encoder.
        texts: the texts to show.
        labels: as for :class:`Projector`.
        names: the two titles.
        embeddings: optional precomputed ``(emb_a, emb_b)``.
        **kwargs: passed to both :class:`Projector` s (``method``, ``seed``, ``background``…).

    Example:
        >>> import numpy as np
        >>> texts = [f"text {i}" for i in range(20)]
        >>> rng = np.random.default_rng(0)
        >>> emb = (rng.normal(size=(20, 4)), rng.normal(size=(20, 6)))
        >>> w = CompareProjector(None, None, texts, embeddings=emb, method="pca")
        >>> w.search.value = "text 2"
        >>> w.a.matches.tolist() == w.b.matches.tolist() == [2]
        True
    """

    def __init__(
        self,
        encoder_a: Any,
        encoder_b: Any,
        texts: Sequence[str],
        labels: Sequence[Any] | Mapping[str, Sequence[Any]] | None = None,
        names: tuple[str, str] = ("A", "B"),
        embeddings: tuple[Any, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        emb_a, emb_b = embeddings if embeddings is not None else (None, None)
        title_a, title_b = two_names(names, "names", "CompareProjector")
        self.a = Projector(encoder_a, texts, labels, embeddings=emb_a, title=title_a, **kwargs)
        self.b = Projector(encoder_b, texts, labels, embeddings=emb_b, title=title_b, **kwargs)
        for name in ("method_control", "dim_control", "n_neighbors", "min_dist", "search", "color_by"):
            if getattr(self.a, name) is not None:
                widgets.link((getattr(self.a, name), "value"), (getattr(self.b, name), "value"))
                setattr(self, name, getattr(self.a, name))
        self.a.on_select(lambda i: self.b.select(i, notify=False))
        self.b.on_select(lambda i: self.a.select(i, notify=False))
        for p in (self.a, self.b):
            p.fig.layout.height = 480
        self.widget = widgets.VBox(
            [
                self.a.controls,
                widgets.HBox([widgets.VBox([p.status, p.fig, p.neighbors]) for p in (self.a, self.b)]),
                self.a.log.output,
                self.b.log.output,
            ]
        )

    @property
    def errors(self) -> list[BaseException]:
        """Errors from both views."""
        return self.a.errors + self.b.errors

    def wait(self, timeout: float | None = None) -> bool:
        """Block until neither view is computing a layout; ``False`` on timeout."""
        return self.a.wait(timeout) and self.b.wait(timeout)


def _label_columns(labels: Any, n: int) -> dict[str, list[str]]:
    if labels is None:
        return {"": ["texts"] * n}
    if isinstance(labels, Mapping):
        columns = {name: (column, f"labels[{name!r}]") for name, column in labels.items()}
    else:
        columns = {"label": (labels, "labels")}
    out = {}
    for name, (column, arg) in columns.items():
        values = widget_labels(column, arg, "Projector")
        if len(values) != n:
            raise ValueError(f"labels column {name!r} has {len(values)} values for {n} texts")
        out[str(name)] = values
    return out


def _set_xyz(trace: Any, xyz: np.ndarray) -> None:
    trace.x, trace.y = xyz[:, 0], xyz[:, 1]
    if xyz.shape[1] == 3:
        trace.z = xyz[:, 2]


def _params_text(params: Layout | None) -> str:
    return "" if params is None else f"(n_neighbors={params.n_neighbors}, min_dist={params.min_dist:g})"
