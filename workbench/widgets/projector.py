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

import html
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import ipywidgets as widgets
import numpy as np
from plotly.graph_objects import FigureWidget  # noqa: F401 - not lazily: its import takes seconds, once

from workbench.figures import (
    MAX_GROUPS,
    WEBGL_ABOVE,
    group_indices,
    hover_texts,
    place_labels,
    projection_figure,
    scatter_trace,
)
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
_SELECTION_ROWS = 20  # rows of a selection shown in its table (all of them are in selected_rows())
_CLUSTER_COLUMN = "cluster"
# Seconds per point × epoch × neighbour of a UMAP layout, for the estimate in the status line:
# measured here (100,000 points, 200 epochs, 15 neighbours: 41 s on 2 cores), then the last large
# layout in this process.
_layout_rate = [41.0 / (100_000 * 200 * 15)]


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

    Large corpora (tested to 100,000 points): above 2,000 points the points are drawn with WebGL,
    above 20,000 the kNN graph is approximate (faiss HNSW) and UMAP starts from the PCA view; the
    status line says what is being computed (kNN graph → layout → clusters), how far it is and,
    for the graph, what is left. ``cache="corpus.npy"`` keeps the embeddings on disk (written by
    :func:`workbench.corpus.encode_corpus`), so the same texts and model are not encoded again.

    Clusters (``clusters=True``): HDBSCAN on each UMAP layout (:mod:`workbench.clusters`), each
    named by its most distinctive words; the names are drawn at the clusters' centres, "cluster"
    joins the colour choices, and ``cluster_table`` lists sizes and example texts. Select points
    with the box or lasso tool: ``selection_table`` shows them and :meth:`selected_rows` returns
    them (every column) as a DataFrame. :meth:`export_html` writes the map as one HTML file that
    opens offline.

    Args:
        encoder: a workbench model, a SentenceTransformer or a function ``texts -> array``;
            may be ``None`` when ``embeddings`` is given.
        texts: the texts to show: a list, or a pandas ``DataFrame`` / ``datasets.Dataset`` whose
            ``text_column`` holds them (every other column can colour and filter the map).
        labels: one label per text, or ``{"column": labels, ...}`` to choose from (numbers with
            more than 20 distinct values are shown in 8 ranges).
        text_column: the text column of a table (by default ``text``, ``sentence`` or its only
            string column).
        clusters: find and name clusters on each UMAP layout.
        cache: a ``.npy`` path to keep the embeddings in (see above); ignored with ``embeddings``.
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
        ValueError: ``texts`` is empty, a labels column's length differs from it, a table has no
            such ``text_column``, an embedding row holds NaN or infinity (rows named).
        MemoryError: the map would need more memory than the machine has (said before trying).

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
        text_column: str | None = None,
        clusters: bool = False,
        cache: str | None = None,
    ) -> None:
        super().__init__()
        texts, table = _table_input(texts, text_column)
        self.texts = widget_texts(texts, "texts", "Projector")
        n = len(self.texts)
        if method not in ("umap", "pca") or dim not in (2, 3):
            raise ValueError(f"method must be 'umap' or 'pca' and dim 2 or 3, got {method!r}, {dim!r}")
        self.table = table  # the table given as texts (DataFrame or Dataset), else None
        if embeddings is not None:
            emb = np.asarray(embeddings)
        elif cache is not None:
            from workbench.corpus import cached_embeddings

            emb = cached_embeddings(encoder, self.texts, cache)
        else:
            emb = np.asarray(EmbeddingCache(encoder)(self.texts))
        if emb.ndim != 2 or emb.shape[0] != n:
            raise ValueError(f"{emb.shape[0] if emb.ndim else 0} embeddings for {n} texts")
        check_memory(n, emb.shape[1], max_neighbors)
        self.projection = Projection(emb, metric=metric, max_neighbors=max_neighbors)
        self.columns = _label_columns(labels, n)
        if table is not None:
            for name, values in _table_columns(table, text_column_of(table, text_column)).items():
                self.columns.setdefault(name, values)
            if labels is None and len(self.columns) > 1:
                self.columns.pop("")  # the table's columns colour it
        self.find_clusters = clusters
        self.clusters = None  # the Clusters of the layout on screen (workbench.clusters)
        self._names_key: tuple[Any, ...] | None = None  # what the cluster names were placed for
        self._clusters_by_layout: dict[Layout, Any] = {}
        self.selection = np.zeros(0, dtype=np.int64)
        self._selection_parts: dict[int, np.ndarray] = {}
        self.visible: np.ndarray | None = None  # a filter: the points shown (None: all)
        self.duplicates = n - len(set(self.texts))
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
        self.dim_control = widgets.ToggleButtons(
            options=[("2-D", 2), ("3-D", 3)], value=dim, description="dim"
        )
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
        if clusters and self.color_by is None:
            self.color_by = widgets.Dropdown(options=names, value=names[0], description="colour")
        self.filter_by = widgets.Dropdown(
            options=["(all points)", *[c for c in names if c]], description="show only"
        )
        self.filter_value = widgets.Dropdown(
            options=[], description="=", layout=widgets.Layout(width="260px")
        )
        self.filter_value.layout.display = "none"
        self.status = widgets.HTML()
        self.neighbors = widgets.HTML("<i>click a point to list its nearest neighbours</i>")
        self.cluster_table = widgets.HTML()
        self.selection_table = widgets.HTML(
            "<i>select points with the box or lasso tool (top right of the map) to list them here</i>"
        )
        self.fig = figure_widget(projection_figure(np.zeros((0, 2)), [], title=title))  # traces: _rebuild
        self.fig.layout.dragmode = "pan" if n > WEBGL_ABOVE else "zoom"
        self.webgl = n > WEBGL_ABOVE

        guard = self.log.guard
        for control in (self.method_control, self.dim_control, self.n_neighbors, self.min_dist):
            control.observe(guard(lambda change: self.refresh(), "refresh"), names=["value"])
        self.search.observe(guard(lambda change: self.highlight(change["new"]), "search"), names=["value"])
        if self.color_by is not None:
            self.color_by.observe(guard(lambda change: self._rebuild(), "colour"), names=["value"])
        self.filter_by.observe(guard(lambda change: self._filter_column_chosen(), "filter"), names=["value"])
        self.filter_value.observe(
            guard(lambda change: self._filter_value_chosen(), "filter"), names=["value"]
        )
        rows = [
            [self.method_control, self.dim_control], [self.n_neighbors, self.min_dist],
            [self.search, self.color_by], [self.filter_by, self.filter_value],
        ]  # fmt: skip
        self.controls = widgets.VBox([widgets.HBox([c for c in row if c is not None]) for row in rows])
        self.widget = widgets.VBox([
            self.controls, self.status, self.fig, self.cluster_table, self.neighbors, self.selection_table,
            self.log.output,
        ])  # fmt: skip
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

    def _say(self, stage: str) -> None:
        self.status.value = f"<i>{self._describe()}{self._size_note()} · {stage}</i>"

    def _size_note(self) -> str:
        n = self.projection.n
        return f" · {n:,} points" if n > WEBGL_ABOVE else ""

    def _knn_progress(self, start: float) -> Callable[[int, int], None]:
        kind = "approximate (faiss HNSW)" if self.projection.approximate else "exact"
        last = [0.0]

        def report(done: int, total: int) -> None:
            now = time.perf_counter()
            if now - last[0] < 0.5 and done < total:
                return
            last[0] = now
            spent = now - start
            left = f" · ~{duration(spent * (total - done) / done)} left" if 0 < done < total else ""
            self._say(f"1/3 kNN graph, {kind}: {done / total:.0%}{left}")

        return report

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
        if not self.projection.has_knn(params.n_neighbors):
            self.projection.knn(params.n_neighbors, on_progress=self._knn_progress(start))
        epochs = max(50, self.n_epochs // 2) if warm else self.n_epochs
        work = self.projection.n * epochs * params.n_neighbors
        guess = f", ~{duration(work * _layout_rate[0])}" if self.projection.n > WEBGL_ABOVE else ""
        self._say(f"2/3 UMAP layout {_params_text(params)}, {epochs} epochs{guess}…")
        began = time.perf_counter()
        coords = self.projection.umap(
            params.dim,
            params.n_neighbors,
            params.min_dist,
            seed=self.seed,
            n_epochs=epochs,
            init=self.coords if warm else "auto",
        )
        if self.projection.n > WEBGL_ABOVE:  # small layouts are mostly fixed costs: they would mislead
            _layout_rate[0] = (time.perf_counter() - began) / work
        self.umap_runs += 1
        if len(self._layouts) >= _CACHED_LAYOUTS:
            gone = next(iter(self._layouts))
            self._layouts.pop(gone)
            self._clusters_by_layout.pop(gone, None)
        self._layouts[params] = coords
        if self.find_clusters and params.dim == 2:
            self._say("3/3 clusters (HDBSCAN) and their names…")
            from workbench.clusters import cluster_map

            self._clusters_by_layout[params] = cluster_map(self.texts, coords)
        if (
            not self._job.superseded()
            and self.method_control.value == "umap"
            and self.layout_params() == params
        ):
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
            found = self._clusters_by_layout.get(params) if params is not None else None
            if found is not None and found is not self.clusters:
                self._set_clusters(found)
                rebuild = rebuild or (self.color_by is not None and self.color_by.value == _CLUSTER_COLUMN)
            if rebuild:
                self._rebuild()
            else:
                with self.fig.batch_update():
                    for trace, idx in zip(self.fig.data, self._groups, strict=False):
                        _set_xyz(trace, coords[idx])
                    self._draw_overlays()
        took = f" · {duration(seconds)}" if seconds is not None else ""
        found = f" · {len(self.clusters)} clusters" if self.clusters is not None and kind == "umap" else ""
        dup = f" · {self.duplicates:,} repeated texts" if self.duplicates else ""
        self.status.value = f"{self._describe()}{self._size_note()}{found}{dup}{took}"

    def _describe(self) -> str:
        if self.shown == "pca" or self.projection.n < MIN_UMAP_POINTS:
            few = self.method_control.value == "umap" and self.projection.n < MIN_UMAP_POINTS
            return "PCA" + (" (too few points for UMAP)" if few else "")
        return f"UMAP {_params_text(self._shown_params)}" if self._shown_params else "UMAP"

    def _rebuild(self) -> None:
        """Replace all traces (needed when the dimension or the colouring changes)."""
        with self._fig_lock:
            groups = group_indices(self.label_column())
            if self.visible is not None:
                groups = [(name, idx[self.visible[idx]]) for name, idx in groups]
                groups = [(name, idx) for name, idx in groups if len(idx)]
            self._groups = [idx for _, idx in groups]
            self._selection_parts = {}
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
            for i, trace in enumerate(self.fig.data[: len(self._groups)]):
                trace.on_selection(self.log.guard(self._selection_handler(i), "selection"))
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
        self._draw_cluster_names()

    def _draw_cluster_names(self) -> None:
        """The cluster names at the clusters' centres on the current 2-D coordinates.

        Placed once per layout, filter and clustering (the overlays redraw on every search
        keystroke; the medians of 100,000 points are not recomputed then).
        """
        if self.clusters is None or self.coords.shape[1] != 2:
            key = None
        else:
            key = (self.coords, self.visible, self.clusters)
        last = self._names_key
        if (key is None and last is None) or (
            key is not None and last is not None and all(a is b for a, b in zip(key, last, strict=True))
        ):
            return
        self._names_key = key
        if key is None:
            self.fig.layout.annotations = []
            return
        labels = self.clusters.labels
        names, centres, sizes = [], [], []
        for c, name in self.clusters.names.items():
            idx = np.flatnonzero(labels == c)
            if self.visible is not None:
                idx = idx[self.visible[idx]]
            if len(idx):
                names.append(name)
                centres.append(np.median(self.coords[idx], axis=0))
                sizes.append(len(idx))
        placed = place_labels(names, np.array(centres).reshape(-1, 2), sizes, self.coords)
        self.fig.layout.annotations = [
            dict(
                x=float(x), y=float(y), text=html.escape(name), showarrow=False, font=dict(size=13, color="#111"),
                bgcolor="rgba(255,255,255,0.75)", borderpad=2,
            )
            for name, (x, y) in zip(names, placed, strict=True)
        ]  # fmt: skip

    def _set_clusters(self, found: Any) -> None:
        self.clusters = found
        self.columns[_CLUSTER_COLUMN] = found.label_column()
        if self.color_by is not None and _CLUSTER_COLUMN not in self.color_by.options:
            self.color_by.options = [*self.color_by.options, _CLUSTER_COLUMN]
        if _CLUSTER_COLUMN not in self.filter_by.options:
            self.filter_by.options = [*self.filter_by.options, _CLUSTER_COLUMN]
        rows = found.rows(self.texts, examples=2)
        noise = f" · {found.noise:,} points in no cluster" if found.noise else ""
        caption = (
            f"{len(found)} clusters found by HDBSCAN on the layout, named by their distinctive words{noise}"
        )
        self.cluster_table.value = html_table(["#", "name", "points", "texts near its centre"], rows, caption)

    # ----- filters and selections -------------------------------------------------------------
    def show_only(self, column: str | None, values: Sequence[Any] | None = None) -> int:
        """Show only the points whose ``column`` is one of ``values`` (``None``: every point); how many.

        Raises:
            KeyError: no such column (the columns are named).
        """
        if column is None:
            self.visible = None
        else:
            if column not in self.columns:
                raise KeyError(f"no column {column!r}; the columns are {[c for c in self.columns if c]}")
            wanted = {str(v) for v in (values or [])}
            self.visible = np.array([v in wanted for v in self.columns[column]], dtype=bool)
        self._rebuild()
        return self.projection.n if self.visible is None else int(self.visible.sum())

    def _filter_column_chosen(self) -> None:
        column = self.filter_by.value
        if column == "(all points)":
            self.filter_value.layout.display = "none"
            self.show_only(None)
            return
        values = [name for name, _ in group_indices(self.columns[column], max_groups=10_000)]
        self.filter_value.options = values
        self.filter_value.layout.display = None
        if self.filter_value.value is not None:
            self.show_only(column, [self.filter_value.value])

    def _filter_value_chosen(self) -> None:
        if self.filter_by.value != "(all points)" and self.filter_value.value is not None:
            self.show_only(self.filter_by.value, [self.filter_value.value])

    def _selection_handler(self, trace_index: int) -> Callable[[Any, Any, Any], None]:
        def handle(trace: Any, points: Any, selector: Any) -> None:
            idx = np.asarray(trace.customdata, dtype=np.int64)[np.asarray(points.point_inds, dtype=np.int64)]
            self._selection_parts[trace_index] = idx
            # plotly calls every trace's handler for one selection, the last trace's last.
            if trace_index == len(self._groups) - 1:
                chosen = [p for p in self._selection_parts.values() if len(p)]
                self.set_selection(np.sort(np.concatenate(chosen)) if chosen else [])

        return handle

    def set_selection(self, indices: Sequence[int]) -> None:
        """Select these points (as the box/lasso tool does) and list them in ``selection_table``."""
        self.selection = np.asarray(indices, dtype=np.int64)
        n = len(self.selection)
        if n == 0:
            self.selection_table.value = "<i>nothing selected</i>"
            return
        names = [c for c in self.columns if c]
        rows = [
            [int(i), self.texts[i], *[self.columns[c][i] for c in names]]
            for i in self.selection[:_SELECTION_ROWS]
        ]
        more = f" (the first {_SELECTION_ROWS} shown; all in .selected_rows())" if n > _SELECTION_ROWS else ""
        caption = f"{n:,} points selected{more}"
        self.selection_table.value = html_table(["#", "text", *names], rows, caption)

    def selected_rows(self) -> Any:
        """The selected points as a pandas DataFrame: ``index``, ``text``, every column, ``x``/``y``."""
        import pandas as pd

        idx = self.selection
        frame = pd.DataFrame({"index": idx, "text": [self.texts[i] for i in idx]})
        for name in self.columns:
            if name:
                frame[name] = [self.columns[name][i] for i in idx]
        frame["x"], frame["y"] = self.coords[idx, 0], self.coords[idx, 1]
        return frame

    # ----- sharing ----------------------------------------------------------------------------
    def export_html(self, path: str, title: str | None = None) -> str:
        """Write the map as it is shown (points, colours, cluster names, hover texts) to one HTML file.

        The file holds plotly.js itself, so it opens offline, in any browser, without a kernel.

        Returns:
            The path written.
        """
        import plotly.graph_objects as go

        with self._fig_lock:
            fig = go.Figure(self.fig.to_dict())
        fig.layout.width, fig.layout.autosize = None, True
        if title is not None:
            fig.layout.title.text = title
        from workbench.atomic import atomic_write_text

        atomic_write_text(
            path, fig.to_html(include_plotlyjs=True, full_html=True, config={"scrollZoom": True})
        )
        return path

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


def _table_input(texts: Any, text_column: str | None) -> tuple[Any, Any]:
    """``(texts, table)``: the text column of a DataFrame or Dataset, and the table; else ``(texts, None)``."""
    is_frame = hasattr(texts, "columns") and hasattr(texts, "iloc")
    is_dataset = hasattr(texts, "column_names") and hasattr(texts, "select_columns")
    if not (is_frame or is_dataset):
        if text_column is not None:
            raise TypeError("text_column is for a DataFrame or Dataset; texts is a list")
        return texts, None
    column = text_column_of(texts, text_column)
    values = texts[column].tolist() if is_frame else list(texts[column])
    return values, texts


def text_column_of(table: Any, text_column: str | None) -> str:
    """The text column of a table: the one named, else ``text``/``sentence``, else the only string column."""
    names = [str(c) for c in (table.columns if hasattr(table, "iloc") else table.column_names)]
    if text_column is not None:
        if text_column not in names:
            raise ValueError(f"the table has no column {text_column!r}; its columns are {names}")
        return text_column
    for guess in ("text", "sentence", "texts", "sentences"):
        if guess in names:
            return guess
    if hasattr(table, "iloc"):
        strings = [c for c in names if table[c].map(lambda v: isinstance(v, str)).all()]
    else:
        strings = [
            c for c, f in table.features.items() if getattr(f, "dtype", None) in ("string", "large_string")
        ]
    if len(strings) == 1:
        return strings[0]
    raise ValueError(f"which column holds the texts? give text_column= (the columns are {names})")


def _table_columns(table: Any, text_column: str) -> dict[str, list[str]]:
    """Every column but the texts, as labels (numbers with many values in ranges)."""
    out = {}
    names = [str(c) for c in (table.columns if hasattr(table, "iloc") else table.column_names)]
    for name in names:
        if name == text_column:
            continue
        values = table[name].tolist() if hasattr(table, "iloc") else list(table[name])
        out[name] = _as_labels(values)
    return out


def _as_labels(values: list[Any], bins: int = 8) -> list[str]:
    """Strings for colouring: numbers with more than MAX_GROUPS distinct values become ranges."""
    numeric = all(
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in values
    )
    if numeric and len(set(values)) > MAX_GROUPS:
        x = np.asarray(values, dtype=np.float64)
        finite = x[np.isfinite(x)]
        edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1))) if finite.size else np.zeros(1)
        which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, max(len(edges) - 2, 0))
        names = [
            f"{edges[i]:.4g}–{edges[i + 1]:.4g}" if i + 1 < len(edges) else f"{edges[i]:.4g}"
            for i in range(len(edges))
        ]
        return [names[w] if np.isfinite(v) else "(missing)" for w, v in zip(which, x, strict=True)]
    return [
        "(missing)" if v is None or (isinstance(v, float) and not np.isfinite(v)) else str(v) for v in values
    ]


def check_memory(n: int, dim: int, neighbors: int) -> None:
    """Refuse, before trying, a map that would need more than 80% of this machine's memory."""
    need = n * dim * 4 * 3 + n * max(neighbors, 15) * 12 * 3 + n * 400  # embeddings (+copies), graph, texts
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not Linux/macOS
        return
    if need > 0.8 * total:
        raise MemoryError(
            f"a map of {n:,} points of dimension {dim} needs about {need / 2**30:.1f} GiB; this machine has "
            f"{total / 2**30:.1f} GiB: show a sample (e.g. texts[:{int(n * 0.5 * total / need):,}])"
        )
