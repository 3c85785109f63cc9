"""Models side by side: a grouped bar chart (data sets across, one bar per model) and a table.

The numbers are :func:`workbench.evaluation.compare`'s table (the primary metric of each data
set; any other metric it computed through :func:`~workbench.evaluation.metric_table`); the
figure is :func:`comparison_figure`'s, which ``workbench eval --report`` draws too. The widget
holds the table only: it never encodes or evaluates.
"""

from __future__ import annotations

import math
from typing import Any

import ipywidgets as widgets
import pandas as pd
import plotly.graph_objects as go

from workbench.evaluation import long_metrics, metric_table
from workbench.widgets._common import View, figure_widget, html_table

PRIMARY = "primary"  # the metric menu's first entry: each data set's own primary metric


def comparison_figure(table: pd.DataFrame, metric: str | None = None) -> go.Figure:
    """A grouped bar chart of a :func:`~workbench.evaluation.compare` table.

    Args:
        table: models × data sets (what ``compare`` returned, or :func:`metric_table` of it).
        metric: another metric to draw (``pearson_cosine``...); ``None``: the table as it is.

    Returns:
        A figure with one bar trace per model (``x``: the data sets, ``y``: the values; a missing
        value is a gap).

    Example:
        >>> t = pd.DataFrame([[0.8, 0.6], [0.7, 0.65]], index=["big", "small"], columns=["sts", "mine"])
        >>> fig = comparison_figure(t)
        >>> [(bar.name, list(bar.y)) for bar in fig.data]
        [('big', [0.8, 0.6]), ('small', [0.7, 0.65])]
    """
    fig = go.Figure()
    draw_comparison(fig, table, metric)
    return fig


def draw_comparison(fig: Any, table: pd.DataFrame, metric: str | None = None) -> pd.DataFrame:
    """Draw (or redraw) :func:`comparison_figure` into ``fig``, a ``Figure`` or ``FigureWidget``.

    Returns:
        The models × data sets values drawn.
    """
    shown = metric_table(table, metric) if metric is not None else table
    label = metric or _primary_label(table)
    models, data_sets = [str(m) for m in shown.index], [str(d) for d in shown.columns]
    if [trace.name for trace in fig.data] != models:  # traces are added outside a batch update
        fig.data = ()
        for model in models:
            fig.add_trace(go.Bar(name=model, textposition="outside"))
    with _batch(fig):
        for trace, (model, row) in zip(fig.data, shown.iterrows(), strict=True):
            values = [None if math.isnan(v) else float(v) for v in row.to_numpy(dtype=float)]
            trace.x, trace.y = data_sets, values
            trace.text = [f"{v:.3f}" if v is not None else "" for v in values]
            trace.hovertemplate = f"{model}<br>%{{x}}: %{{y:.4f}}<extra></extra>"
        fig.update_layout(
            barmode="group", title_text=f"{label}: {len(models)} model(s) × {len(data_sets)} data set(s)",
            xaxis_title_text="data set", yaxis_title_text=label, legend_title_text="model", height=460,
            # below the bars: model names are often paths, which beside the plot would squeeze it
            legend=dict(orientation="h", yanchor="top", y=-0.22, x=0), margin=dict(l=60, r=20, t=60, b=40),
        )  # fmt: skip
    return shown


class ModelComparison(View):
    """A :func:`~workbench.evaluation.compare` table as a grouped bar chart and a table.

    Args:
        table: what ``compare(models, evaluators)`` returned (its ``attrs`` hold every metric).

    Controls: ``metric`` (a ``Dropdown``: ``"primary"``, each data set's primary metric, or any
    metric every evaluator computed part of, e.g. ``pearson_cosine``). Set its ``.value`` to
    redraw.

    Attributes:
        fig: the ``FigureWidget`` (``fig.data[i]``: model ``i``'s bars). ``table_html``: the
            ``HTML`` widget with the numbers. ``table``: the ``compare`` table given. ``shown``:
            the models × data sets values drawn now.

    Raises:
        ValueError: the table is empty.

    Example:
        >>> import numpy as np
        >>> from workbench.evaluation import STSEvaluator, compare
        >>> ev = STSEvaluator(["a cat", "a man", "the sky"], ["a kitten", "a woman", "stocks"], [4.8, 3.0, 0.2], name="toy")
        >>> chars = lambda texts: np.array([[t.count(c) for c in "aeiost "] for t in texts], dtype=float)
        >>> w = ModelComparison(compare({"chars": chars}, [ev]))
        >>> w.metric.value = "pearson_cosine"
        >>> w.fig.data[0].name, w.fig.layout.yaxis.title.text
        ('chars', 'pearson_cosine')
    """

    def __init__(self, table: pd.DataFrame) -> None:
        super().__init__()
        if not isinstance(table, pd.DataFrame):
            raise TypeError(f"ModelComparison takes the DataFrame that compare() returns, got {type(table).__name__}")
        if table.empty:
            raise ValueError("ModelComparison needs a table with at least one model and one data set")
        self.table = table
        names = list(dict.fromkeys(long_metrics(table)["metric"])) if "metrics" in table.attrs else []
        self.metric = widgets.Dropdown(options=[PRIMARY, *names], value=PRIMARY, description="metric")
        self.fig = figure_widget()
        self.table_html = widgets.HTML()
        self.shown = table
        self.metric.observe(self.log.guard(lambda _change: self._draw(), "metric"), names=["value"])
        self._draw()
        self.widget = widgets.VBox([self.metric, self.fig, self.table_html, self.log.output])

    def _draw(self) -> None:
        metric = None if self.metric.value == PRIMARY else self.metric.value
        self.shown = draw_comparison(self.fig, self.table, metric)
        header = ["model", *[str(d) for d in self.shown.columns]]
        rows = [[str(m), *[float(v) if not math.isnan(v) else "-" for v in row.to_numpy(dtype=float)]]
                for m, row in self.shown.iterrows()]
        self.table_html.value = html_table(header, rows, caption=metric or _primary_label(self.table))


def _primary_label(table: pd.DataFrame) -> str:
    primary = table.attrs.get("primary", {})
    short = {key[len(str(d)) + 1:] if key.startswith(f"{d}_") else key for d, key in primary.items()}
    return short.pop() if len(short) == 1 else "primary metric"


class _batch:
    """``fig.batch_update()`` for a FigureWidget, nothing for a plain Figure."""

    def __init__(self, fig: Any) -> None:
        self.cm = fig.batch_update() if isinstance(fig, go.FigureWidget) else None

    def __enter__(self) -> None:
        if self.cm is not None:
            self.cm.__enter__()

    def __exit__(self, *exc: Any) -> None:
        if self.cm is not None:
            self.cm.__exit__(*exc)
