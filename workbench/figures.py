"""Plotly figures drawn from plain numbers: similarity heatmaps, projections and training curves.

The HTML report (:mod:`workbench.report`) shows these figures as they are; the notebook widgets
wrap them in a ``FigureWidget`` and redraw them in place with the same ``draw_*`` / ``fill_*``
functions, so a figure in the report and in a notebook look alike. Nothing here encodes,
projects or trains: the numbers come from :func:`workbench.similarity.similarity_matrix`,
:mod:`workbench.projection` and a :class:`~workbench.training.RunHistory`.

Colour scales are fixed so that two pictures can be compared: cosine always spans [−1, 1].
The other similarity functions have no natural bound, so their range is taken from the data
shown (and the title says so): dot products symmetric around 0, negated distances from the
lowest value to 0.

Example:
    >>> fig = similarity_figure(np.array([[1.0, 0.2], [0.2, 1.0]]), ["a cat", "a dog"])
    >>> fig.data[0].z.tolist(), (fig.data[0].zmin, fig.data[0].zmax), fig.layout.title.text
    ([[1.0, 0.2], [0.2, 1.0]], (-1.0, 1.0), 'cosine similarity')
    >>> fig = projection_figure(np.zeros((3, 2)), ["a", "b", "c"], groups=["x", "y", "x"])
    >>> [(t.name, t.customdata.tolist()) for t in fig.data]
    [('x', [0, 2]), ('y', [1])]
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.similarity import canonical_fn_name
from workbench.training.events import RunHistory

# Above this many cells the values are not written into the heatmap's cells (they would not fit).
MAX_ANNOTATED_CELLS = 400
# More label values than this are drawn as the largest groups plus one "other" trace.
MAX_GROUPS = 20
# Above this many points 2-D scatters use WebGL (Scattergl): SVG gets slow to hover.
WEBGL_ABOVE = 2000
_LABEL_CHARS = 32


# ----- similarity heatmaps ----------------------------------------------------------------------
def color_range(fn: str, *matrices: np.ndarray) -> tuple[float, float, str]:
    """The colour range for similarity scores of function ``fn``.

    Args:
        fn: a similarity function name.
        *matrices: the score matrices that share the scale (for the data-based ranges).

    Returns:
        ``(zmin, zmax, note)``; ``note`` is empty for the fixed cosine range and otherwise says
        that the range comes from the data shown.

    Example:
        >>> color_range("cosine"), color_range("dot", np.array([[2.0, -0.5]]))
        ((-1.0, 1.0, ''), (-2.0, 2.0, 'colour range ±2 from the data shown'))
    """
    name = canonical_fn_name(fn)
    if name == "cosine":
        return -1.0, 1.0, ""
    values = (
        np.concatenate([np.asarray(m, dtype=np.float64).ravel() for m in matrices])
        if matrices
        else np.zeros(1)
    )
    values = values[np.isfinite(values)]
    if values.size == 0:
        values = np.zeros(1)
    if name == "dot":
        bound = float(np.abs(values).max()) or 1.0
        return -bound, bound, f"colour range ±{bound:.3g} from the data shown"
    low = float(values.min())  # negated distances: 0 is identical
    low = low if low < 0 else -1.0
    return low, 0.0, f"colour range [{low:.3g}, 0] from the data shown"


def colorscale(fn: str) -> str:
    """A diverging scale around 0 for signed scores (cosine, dot), a sequential one for negated distances."""
    return "RdBu_r" if canonical_fn_name(fn) in ("cosine", "dot") else "Viridis"


def short_label(text: str, n: int = _LABEL_CHARS) -> str:
    """An axis label: at most ``n`` characters, HTML-escaped (the whole text goes in the hover)."""
    return html.escape(text if len(text) <= n else text[: n - 1] + "…")


def fill_heatmap(trace: Any, z: np.ndarray, rows: Sequence[str], cols: Sequence[str], fn: str) -> None:
    """Write a score matrix into a heatmap trace, with both texts of a cell in its hover.

    Call it inside ``fig.batch_update()`` on a ``FigureWidget``.
    """
    r = [html.escape(t) for t in rows]
    c = [html.escape(t) for t in cols]
    trace.z = z
    trace.x = list(range(len(cols)))
    trace.y = list(range(len(rows)))
    trace.text = [[f"{a}<br>{b}" for b in c] for a in r]
    trace.texttemplate = "%{z:.2f}" if np.size(z) <= MAX_ANNOTATED_CELLS else ""
    trace.hovertemplate = f"%{{text}}<br>{canonical_fn_name(fn)}: %{{z:.4f}}<extra></extra>"


def label_ticks(axis: Any, labels: Sequence[str] | None, n: int) -> None:
    """Put ``labels`` (shortened), or the numbers 0..n-1, on a heatmap axis's ``n`` ticks."""
    axis.tickmode = "array"
    axis.tickvals = list(range(n))
    axis.ticktext = [short_label(t) for t in labels] if labels is not None else [str(i) for i in range(n)]


def draw_similarity(
    fig: Any, matrix: Any, rows: Sequence[str], cols: Sequence[str] | None = None, fn: str = "cosine",
    title: str | None = None,
) -> None:
    """Draw a similarity matrix into the first heatmap of ``fig`` (a Figure or a FigureWidget), in place.

    Args:
        fig: a figure made by :func:`similarity_figure`.
        matrix: the ``(len(rows), len(cols))`` scores.
        rows: the texts of the rows.
        cols: the texts of the columns; ``None``: the rows.
        fn: the similarity function the scores are of (sets the colour range and scale).
        title: the title (HTML); by default ``"<fn> similarity"``. A data-based colour range is
            said under it.
    """
    cols = rows if cols is None else cols
    z = np.asarray(matrix, dtype=np.float64) + 0.0  # −0.0 (a negated zero distance) would read "−0.00"
    if z.shape != (len(rows), len(cols)):
        raise ValueError(f"a {len(rows)} x {len(cols)} matrix is needed for these labels, got {z.shape}")
    zmin, zmax, note = color_range(fn, z)
    if title is None:  # a distance-based score says what its numbers are: −1.46 is a distance of 1.46
        name = canonical_fn_name(fn)
        title = f"{name} similarity" + (f" = −{name} distance (0: identical)" if name in ("euclidean", "manhattan") else "")
    fill_heatmap(fig.data[0], z, rows, cols, fn)
    label_ticks(fig.layout.yaxis, rows, len(rows))
    label_ticks(fig.layout.xaxis, cols, len(cols))
    fig.data[0].update(zmin=zmin, zmax=zmax, colorscale=colorscale(fn))
    fig.layout.title = dict(text=title + (f"<br><sup>{note}</sup>" if note else ""))
    fig.layout.height = max(320, 120 + 36 * len(rows))


def similarity_figure(
    matrix: Any, labels: Sequence[str], title: str | None = None, *, cols: Sequence[str] | None = None,
    fn: str = "cosine",
) -> go.Figure:
    """A heatmap of a similarity matrix: every text of ``labels`` (rows) against every one of ``cols``.

    Args:
        matrix: the scores, e.g. :func:`workbench.similarity.similarity_matrix` of embeddings.
        labels: one text per row (and per column when ``cols`` is ``None``).
        title: the figure title; by default ``"<fn> similarity"``.
        cols: the texts of the columns, for a queries × corpus matrix.
        fn: the similarity function of the scores.
    """
    fig = go.Figure(
        go.Heatmap(z=[[0.0]]),
        layout=go.Layout(
            margin=dict(l=10, r=10, t=60, b=10),
            yaxis=dict(autorange="reversed", automargin=True),
            xaxis=dict(automargin=True, tickangle=-30),
        ),
    )
    draw_similarity(fig, matrix, labels, cols, fn, title)
    return fig


# ----- projections ------------------------------------------------------------------------------
def group_indices(column: Sequence[str], max_groups: int = MAX_GROUPS) -> list[tuple[str, np.ndarray]]:
    """``(name, indices)`` per label value, largest first; past ``max_groups`` the rest is ``"other"``.

    Example:
        >>> [(name, idx.tolist()) for name, idx in group_indices(["b", "a", "b"])]
        [('b', [0, 2]), ('a', [1])]
    """
    values, inverse, counts = np.unique(np.asarray(column, dtype=object), return_inverse=True, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    keep, rest = order[:max_groups], order[max_groups:]
    groups = [(str(values[g]), np.flatnonzero(inverse == g)) for g in keep]
    if len(rest):
        groups.append(("other", np.flatnonzero(np.isin(inverse, rest))))
    return groups


def hover_texts(texts: Sequence[str], idx: Sequence[int]) -> list[str]:
    """The hover texts of points ``idx`` (HTML-escaped: plotly renders hover text as HTML)."""
    return [html.escape(texts[i], quote=False) for i in idx]


def scatter_trace(
    coords: np.ndarray, texts: Sequence[str], idx: Sequence[int], name: str,
    marker: dict[str, Any] | None = None, webgl: bool = False,
) -> Any:
    """The points ``idx`` of ``(n, 2)`` or ``(n, 3)`` coordinates as one trace; ``customdata`` holds their indices.

    Args:
        coords: the coordinates of all points.
        texts: the text of every point (shown in the hover).
        idx: the points of this trace.
        name: the legend name.
        marker: the marker (small round dots by default).
        webgl: draw a 2-D trace with WebGL (for thousands of points).
    """
    idx = np.asarray(idx, dtype=np.int64)
    three = coords.shape[1] == 3
    kind = go.Scatter3d if three else (go.Scattergl if webgl else go.Scatter)
    xyz = coords[idx]
    extra = {"z": xyz[:, 2]} if three else {}
    return kind(
        x=xyz[:, 0], y=xyz[:, 1], **extra, mode="markers", name=name, customdata=idx,
        text=hover_texts(texts, idx), hovertemplate="%{text}<extra>%{fullData.name}</extra>",
        marker=marker or dict(size=3 if three else 6, opacity=0.8),
    )


def place_labels(
    names: Sequence[str],
    centres: np.ndarray,
    sizes: Sequence[int],
    coords: np.ndarray,
    plot_px: tuple[float, float] = (640.0, 440.0),
    char_px: float = 7.5,
    line_px: float = 20.0,
) -> np.ndarray:
    """Positions for text labels at ``centres`` that do not cover one another.

    The largest groups keep their centre; a label that would overlap one already placed moves
    up or down by whole lines, to the nearest free place within six lines, and stays at its
    centre when there is none. Label boxes are estimated from the text length and the data's
    range drawn on a plot of about ``plot_px`` pixels.

    Args:
        names: the label texts.
        centres: ``(m, 2)`` preferred positions, in data units.
        sizes: the groups' sizes (bigger groups are placed first).
        coords: the points drawn, for the data range.

    Returns:
        An ``(m, 2)`` float array of positions, in the order of ``names``.

    Example:
        >>> pts = np.array([[0.0, 0.0], [10.0, 10.0]])
        >>> place_labels(["big", "small"], np.array([[5.0, 5.0], [5.0, 5.0]]), [90, 10], pts).round(2).tolist()
        [[5.0, 5.0], [5.0, 4.55]]
    """
    centres = np.asarray(centres, dtype=float).reshape(-1, 2)
    placed = centres.copy()
    if len(centres) < 2:
        return placed
    span = np.ptp(np.asarray(coords, dtype=float)[:, :2], axis=0)
    per_px = np.where(span > 0, span, 1.0) / np.asarray(plot_px)  # data units per pixel on each axis
    half_w = np.array([len(n) * char_px / 2 for n in names]) * per_px[0]
    half_h = line_px / 2 * per_px[1]
    boxes: list[int] = []
    for i in np.argsort(-np.asarray(sizes), kind="stable"):
        for step in (0, -1, 1, -2, 2, -3, 3, -4, 4, -5, 5, -6, 6):
            x, y = centres[i, 0], centres[i, 1] + step * 2 * half_h
            clear = all(
                abs(x - placed[j, 0]) >= half_w[i] + half_w[j] or abs(y - placed[j, 1]) >= 2 * half_h
                for j in boxes
            )
            if clear:
                placed[i] = (x, y)
                break
        boxes.append(int(i))
    return placed


def projection_figure(
    coords: Any, texts: Sequence[str], groups: Sequence[Any] | None = None, title: str = "", *,
    webgl: bool | None = None,
) -> go.Figure:
    """A scatter of projected points, one trace per group (the legend), each text in its point's hover.

    Args:
        coords: the ``(n, 2)`` or ``(n, 3)`` points, e.g. :func:`workbench.projection.pca` of embeddings.
        texts: one text per point.
        groups: one group name per point; ``None`` draws one trace.
        title: the figure title.
        webgl: use WebGL for 2-D points; by default above :data:`WEBGL_ABOVE` points.
    """
    xy = np.asarray(coords, dtype=np.float64)  # (n, 2 or 3)
    if xy.ndim != 2 or xy.shape[1] not in (2, 3) or xy.shape[0] != len(texts):
        raise ValueError(f"coords must be ({len(texts)}, 2) or ({len(texts)}, 3), got {xy.shape}")
    names = [str(g) for g in groups] if groups is not None else ["texts"] * len(texts)
    if len(names) != len(texts):
        raise ValueError(f"{len(names)} groups for {len(texts)} texts")
    webgl = len(texts) > WEBGL_ABOVE if webgl is None else webgl
    fig = go.Figure(
        [scatter_trace(xy, texts, idx, name, webgl=webgl) for name, idx in group_indices(names)],
        # plotly's default 100 px top margin left an empty band above the points: a title needs 50, none 20.
        layout=go.Layout(title=dict(text=title, y=0.98, yanchor="top"), height=560, legend=dict(itemsizing="constant"),
                         margin=dict(l=40, r=10, t=50 if title else 20, b=40)),
    )
    if xy.shape[1] == 3:
        fig.layout.scene = dict(aspectmode="cube")
    return fig


# ----- training curves --------------------------------------------------------------------------
def metric_key(history: RunHistory, metric: str | None = None) -> str | None:
    """The evaluation metric to plot: ``metric`` when the run reports it, else the run's primary one."""
    if metric is not None and any(metric in e.metrics for e in history.evals):
        return metric
    return history.primary or metric


def curves_figure(
    history: RunHistory | None = None, metric: str | None = None, title: str = "", *,
    metric_title: str | None = None, name: str = "", legend: bool = False,
) -> go.Figure:
    """Training loss (left) and one evaluation metric (right) against the step.

    Args:
        history: the run's curves (filled from its events, or ``RunHistory.from_jsonl``); ``None``
            draws the empty panels only (add runs with :func:`add_curves`).
        metric: the evaluation metric (the run's primary metric when it does not report this one).
        title: the figure title.
        metric_title: the right panel's title; by default the metric's key.
        name: the run's name, in front of its traces' names.
        legend: show the legend (below the panels), e.g. when several runs share the figure.

    Example:
        >>> from workbench.training import Eval, Step
        >>> h = RunHistory()
        >>> h.on_event(Step(step=10, epoch=0.1, loss=2.0, lr=1e-5, examples_per_s=100.0, elapsed_s=1.0, total_steps=20))
        >>> h.on_event(Eval(step=10, epoch=0.1, metrics={"sts-dev_spearman_cosine": 0.8}, primary="sts-dev_spearman_cosine"))
        >>> fig = curves_figure(h)
        >>> [(t.x, t.y) for t in fig.data], fig.layout.annotations[1].text
        ([((10,), (2.0,)), ((10,), (0.8,))], 'sts-dev_spearman_cosine')
    """
    key = metric_key(history, metric) if history is not None else metric
    fig = make_subplots(rows=1, cols=2, subplot_titles=("training loss", metric_title or key or "primary metric"))
    fig.update_xaxes(title_text="step")
    fig.update_layout(
        title=title or None, height=360, margin=dict(l=40, r=10, t=70, b=40),
        showlegend=legend, legend=dict(orientation="h", y=-0.2),
    )
    if history is not None:
        add_curves(fig, history, name, metric)
    return fig


def add_curves(fig: Any, history: RunHistory, name: str, metric: str | None = None, loss_mode: str = "lines+markers") -> None:
    """Add one run's loss (left) and evaluation metric (right) to a :func:`curves_figure` as two traces."""
    key = metric_key(history, metric)
    steps, values = history.metric(key) if key else ([], [])
    label = f"{name}: " if name else ""
    fig.add_scatter(x=list(history.steps), y=list(history.losses), mode=loss_mode, name=f"{label}loss", row=1, col=1)
    fig.add_scatter(x=steps, y=values, mode="lines+markers", name=f"{label}{key or 'primary metric'}", row=1, col=2)


# ----- the speed/quality map --------------------------------------------------------------------
SPEED_FONT = 16  # readable from the back of a room


def speed_quality_figure(result: Any = None, *, title: str | None = None) -> go.Figure:
    """Sentences per second on this machine (log x) against STS quality (y), the Pareto front marked.

    Marker area grows with the size on disk (when known); each point is labelled with its name and
    its hover holds all the numbers. The Pareto front (the encoders no other beats on both) is a
    step line through its points, drawn larger: everything below and left of it is a worse choice.

    Args:
        result: a :class:`~workbench.speed.SpeedQualityResult`, or ``None`` for the empty figure a
            widget fills with :func:`draw_speed_quality`.
        title: the title; by default it names the machine the speeds were measured on.

    Example:
        >>> from workbench.speed import EncoderPoint, SpeedQualityResult, pareto_front
        >>> p = [EncoderPoint("big", 100.0, 0.87, "sts-dev_spearman_cosine", 90_000_000, 1.0, 100),
        ...      EncoderPoint("small", 1000.0, 0.80, "sts-dev_spearman_cosine", None, 0.1, 100),
        ...      EncoderPoint("bad", 500.0, 0.70, "sts-dev_spearman_cosine", None, 0.2, 100)]
        >>> fig = speed_quality_figure(SpeedQualityResult(p, pareto_front(p), baseline="big"))
        >>> [(t.name, list(t.text)) for t in fig.data]
        [('encoders (marker area: size on disk)', ['big', 'small', 'bad']), ('Pareto front', ['big', 'small'])]
        >>> fig.layout.xaxis.type
        'log'
    """
    fig = go.Figure(
        [
            go.Scatter(x=[], y=[], mode="markers+text", name="encoders (marker area: size on disk)",
                       textposition="top center", cliponaxis=False,
                       marker=dict(color="#4c78a8", opacity=0.75, line=dict(width=1, color="white"))),
            go.Scatter(x=[], y=[], mode="lines+markers", name="Pareto front", line=dict(shape="vh", color="#e45756", width=3),
                       marker=dict(symbol="star", size=18, color="#e45756"), hoverinfo="skip", cliponaxis=False),
        ],  # fmt: skip
        layout=go.Layout(
            font=dict(size=SPEED_FONT), height=560, margin=dict(l=80, r=30, t=90, b=70),
            xaxis=dict(type="log", title=dict(text="sentences per second, measured on this machine (log scale)")),
            yaxis=dict(title=dict(text="quality")), legend=dict(orientation="h", y=-0.18, x=0),
            hoverlabel=dict(font=dict(size=SPEED_FONT)),
        ),  # fmt: skip
    )
    draw_speed_quality(fig, result, title=title)
    return fig


def draw_speed_quality(fig: Any, result: Any, *, title: str | None = None) -> None:
    """Draw a result (or ``None``: nothing yet) into a :func:`speed_quality_figure`, in place.

    Call it inside ``fig.batch_update()`` on a ``FigureWidget``.
    """
    from workbench.speed import table_rows

    points = list(result.points) if result is not None else []
    rows = {r["name"]: r for r in table_rows(points, result.baseline if result is not None else None)}
    front = set(result.pareto) if result is not None else set()
    dots, line = fig.data[0], fig.data[1]
    dots.x = [p.sentences_per_s for p in points]
    dots.y = [p.quality if np.isfinite(p.quality) else None for p in points]  # undefined: not drawn
    dots.text = [html.escape(p.name) for p in points]
    dots.customdata = [[_speed_hover(p, rows[p.name])] for p in points]
    dots.hovertemplate = "%{customdata[0]}<extra></extra>"
    dots.marker.size = _marker_sizes([p.size_bytes for p in points])
    dots.marker.symbol = ["circle" if p.size_bytes is not None else "circle-open" for p in points]
    on_front = sorted((p for p in points if p.name in front), key=lambda p: (p.sentences_per_s, p.name))
    line.x = [p.sentences_per_s for p in on_front]
    line.y = [p.quality for p in on_front]
    line.text = [html.escape(p.name) for p in on_front]
    _pad_axes(fig, points)
    metric_name = result.metric if result is not None and result.metric else "STS spearman (cosine)"
    data = html.escape(result.data) if result is not None and result.data else ""
    sample = " · <b>SAMPLE data: these numbers mean nothing</b>" if result is not None and result.is_sample else ""
    fig.layout.yaxis.title.text = html.escape(metric_name)
    if title is None:
        machine = html.escape(result.machine) if result is not None and result.machine else "this machine"
        title = f"speed vs quality on {machine}"
        if data or sample:
            title += f"<br><sup>{data}{sample}</sup>"
    fig.layout.title = dict(text=title, font=dict(size=SPEED_FONT + 2))


def _pad_axes(fig: Any, points: Sequence[Any]) -> None:
    """Room around the points for their labels (log x: in decades); automatic when there are none."""
    speeds = [p.sentences_per_s for p in points if np.isfinite(p.sentences_per_s) and p.sentences_per_s > 0]
    qualities = [p.quality for p in points if np.isfinite(p.quality)]
    if not speeds or not qualities:
        fig.layout.xaxis.autorange, fig.layout.yaxis.autorange = True, True
        return
    low, high = np.log10(min(speeds)), np.log10(max(speeds))
    fig.layout.xaxis.range = [low - 0.3, high + 0.3]
    spread = max(max(qualities) - min(qualities), 0.05)
    fig.layout.yaxis.range = [min(qualities) - 0.08 * spread, max(qualities) + 0.15 * spread]


def _speed_hover(point: Any, row: dict[str, Any]) -> str:
    from workbench.speed import format_row

    cells = format_row(row)
    size = "unknown" if point.size_bytes is None else f"{cells[5]} MB" + (f" ({point.size_from})" if point.size_from else "")
    return (
        f"<b>{html.escape(point.name)}</b><br>{cells[1]} sentences/s ({cells[2]} the baseline)<br>"
        f"quality {cells[3]} (Δ {cells[4]})<br>size {size} · dim {point.dim}<br>"
        f"{point.n_sentences} sentences in {point.seconds:.3f} s (median of {len(point.timings)})"
        + ("<br>on the Pareto front" if row["pareto"] else "")
    )


def _marker_sizes(sizes: Sequence[int | None], low: float = 14.0, high: float = 44.0) -> list[float]:
    """Marker diameters whose area grows with the size (the largest known gets ``high``); unknown: ``low``."""
    known = [s for s in sizes if s is not None and s > 0]
    top = max(known) if known else 1
    return [low if s is None or s <= 0 else max(low, high * (s / top) ** 0.5) for s in sizes]
