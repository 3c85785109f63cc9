"""The HTML report and short text summaries of a run.

The report is one self-contained HTML file: plotly.js is embedded once, so it opens offline in
any browser, and every figure stays interactive (hover, zoom). The figures are drawn from plain
numbers (a similarity matrix, projected coordinates, a :class:`~workbench.training.RunHistory`);
nothing here encodes or trains.

Example:
    >>> import numpy as np
    >>> fig = similarity_figure(np.eye(2), ["a", "b"])
    >>> fig.data[0].z.tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    >>> html = render_report("demo", [Section("Similarity", "Cosine of every pair.", figure=fig)])
    >>> html.count('class="plotly-graph-div"')
    1
"""

from __future__ import annotations

import html
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.training.events import RunHistory

PRIMARY = "sts-dev_spearman_cosine"
_LABEL_CHARS = 40


# ----- figures ---------------------------------------------------------------------------------
def similarity_figure(matrix: Any, labels: Sequence[str], title: str = "cosine similarity") -> go.Figure:
    """A heatmap of an ``(n, n)`` similarity matrix; cosine keeps its fixed [-1, 1] colour scale.

    Args:
        matrix: the scores, e.g. :func:`workbench.similarity.similarity_matrix` of embeddings.
        labels: one text per row/column (shortened on the axes, whole in the hover).
        title: the figure title.
    """
    z = np.asarray(matrix, dtype=np.float64)  # (n, n)
    if z.ndim != 2 or z.shape != (len(labels), len(labels)):
        raise ValueError(f"a {len(labels)} x {len(labels)} matrix is needed for {len(labels)} labels, got {z.shape}")
    short = [_short(t) for t in labels]
    hover = [[f"{html.escape(a)}<br>{html.escape(b)}" for b in labels] for a in labels]
    fig = go.Figure(go.Heatmap(
        z=z, x=list(range(len(labels))), y=list(range(len(labels))), zmin=-1.0, zmax=1.0, colorscale="RdBu_r",
        text=hover, texttemplate="%{z:.2f}", hovertemplate="%{text}<br>score %{z:.4f}<extra></extra>",
    ))
    fig.update_layout(title=title, height=160 + 38 * len(labels), margin=dict(l=10, r=10, t=50, b=10))
    fig.update_xaxes(tickmode="array", tickvals=list(range(len(labels))), ticktext=short, tickangle=-35)
    fig.update_yaxes(tickmode="array", tickvals=list(range(len(labels))), ticktext=short, autorange="reversed")
    return fig


def projection_figure(
    coords: Any, texts: Sequence[str], groups: Sequence[str] | None = None, title: str = "2-D projection"
) -> go.Figure:
    """A scatter of ``(n, 2)`` coordinates, one trace per group, the text in the hover.

    Args:
        coords: the projected points, e.g. :func:`workbench.projection.pca` of embeddings.
        texts: one text per point.
        groups: one group name per point (the legend); ``None`` draws one trace.
        title: the figure title.
    """
    xy = np.asarray(coords, dtype=np.float64)  # (n, 2)
    if xy.ndim != 2 or xy.shape[1] != 2 or xy.shape[0] != len(texts):
        raise ValueError(f"coords must be ({len(texts)}, 2), got {xy.shape}")
    names = list(groups) if groups is not None else ["texts"] * len(texts)
    if len(names) != len(texts):
        raise ValueError(f"{len(names)} groups for {len(texts)} texts")
    fig = go.Figure()
    for name in dict.fromkeys(names):  # legend in order of first appearance
        idx = [i for i, g in enumerate(names) if g == name]
        fig.add_scatter(
            x=xy[idx, 0], y=xy[idx, 1], mode="markers", name=str(name), marker=dict(size=6, opacity=0.8),
            text=[html.escape(texts[i]) for i in idx], hovertemplate="%{text}<extra>" + html.escape(str(name)) + "</extra>",
        )
    fig.update_layout(title=title, height=520, margin=dict(l=10, r=10, t=50, b=10), legend=dict(itemsizing="constant"))
    return fig


def curves_figure(history: RunHistory, metric: str = PRIMARY, title: str = "training") -> go.Figure:
    """Training loss and one evaluation metric against the step, side by side.

    Args:
        history: the run's curves (filled from its events, or ``RunHistory.from_jsonl``).
        metric: the evaluation metric (the run's primary metric when this one is absent).
        title: the figure title.
    """
    key = _metric_key(history, metric)
    steps, values = history.metric(key)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("training loss", key))
    fig.add_scatter(x=history.steps, y=history.losses, mode="lines+markers", name="loss", row=1, col=1)
    fig.add_scatter(x=steps, y=values, mode="lines+markers", name=key, row=1, col=2)
    fig.update_xaxes(title_text="step")
    fig.update_layout(title=title, height=380, margin=dict(l=40, r=10, t=70, b=40), showlegend=False)
    return fig


# ----- text summaries --------------------------------------------------------------------------
def curve_summary(history: RunHistory, metric: str = PRIMARY) -> str:
    """One line saying how an evaluation metric moved during a run: first, last and best.

    Example:
        >>> from workbench.training import Eval
        >>> h = RunHistory()
        >>> for step, v in [(0, 0.70), (20, 0.74), (40, 0.73)]:
        ...     h.on_event(Eval(step=step, epoch=0.0, metrics={PRIMARY: v}))
        >>> curve_summary(h)
        'sts-dev_spearman_cosine: 0.7000 at step 0 -> 0.7300 at step 40 (+0.0300); best 0.7400 at step 20'
    """
    key = _metric_key(history, metric)
    steps, values = history.metric(key)
    if not values:
        return f"{key}: no evaluations"
    best = int(np.argmax(values))
    return (f"{key}: {values[0]:.4f} at step {steps[0]} -> {values[-1]:.4f} at step {steps[-1]} "
            f"({values[-1] - values[0]:+.4f}); best {values[best]:.4f} at step {steps[best]}")


def card_text(model_path: str | os.PathLike[str], front_matter: bool = False) -> str:
    """The model card (``README.md``) of a saved model, for display as Markdown.

    Args:
        model_path: the model folder.
        front_matter: keep the YAML front matter (machine-readable metadata, shown as plain
            text by Markdown renderers); dropped by default.
    """
    text = Path(model_path, "README.md").read_text(encoding="utf-8")
    if not front_matter and text.startswith("---"):
        end = text.find("\n---", 3)
        if end != -1:
            text = text[end + 4 :].lstrip("\n")
    return text


def _metric_key(history: RunHistory, metric: str) -> str:
    if any(metric in e.metrics for e in history.evals):
        return metric
    return history.primary or metric


def _short(text: str, n: int = _LABEL_CHARS) -> str:
    return html.escape(text if len(text) <= n else text[: n - 1] + "…")


# ----- the report ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Section:
    """One part of the report: a heading, paragraphs, an optional figure and fixed-width text.

    Args:
        title: the heading.
        text: plain text; blank lines separate paragraphs (escaped, not HTML).
        figure: a plotly figure, drawn interactive.
        pre: fixed-width text below the figure, e.g. :func:`workbench.evaluation.format_metrics`.
    """

    title: str
    text: str = ""
    figure: go.Figure | None = None
    pre: str = ""


_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.9em; }
.note { color: #666; font-size: 0.9em; }
"""


def render_report(title: str, sections: Sequence[Section], note: str = "") -> str:
    """The report as one HTML document, plotly.js embedded (it works offline).

    Args:
        title: the page title and top heading.
        sections: the parts, in order.
        note: a line under the title (e.g. when and how it was made).
    """
    from plotly.offline import get_plotlyjs

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style>",
        f'<script type="text/javascript">{get_plotlyjs()}</script>',
        "</head>",
        "<body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if note:
        parts.append(f'<p class="note">{html.escape(note)}</p>')
    for i, section in enumerate(sections):
        parts.append(f'<h2 id="section-{i + 1}">{html.escape(section.title)}</h2>')
        parts += [f"<p>{html.escape(p.strip())}</p>" for p in section.text.split("\n\n") if p.strip()]
        if section.figure is not None:
            parts.append(section.figure.to_html(full_html=False, include_plotlyjs=False,
                                                config={"responsive": True, "displaylogo": False}))
        if section.pre:
            parts.append(f"<pre>{html.escape(section.pre)}</pre>")
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def write_report(path: str | os.PathLike[str], title: str, sections: Sequence[Section], note: str | None = None) -> Path:
    """Write :func:`render_report` to ``path`` (written aside, then renamed into place).

    Args:
        path: the HTML file to write (its folder is created).
        title: the page title.
        sections: the parts, in order.
        note: a line under the title; by default the time it was written.

    Returns:
        The file written.
    """
    from workbench.training.runs import atomic_write_text

    path = Path(path)
    note = note if note is not None else f"written {time.strftime('%Y-%m-%d %H:%M:%S')} by workbench"
    atomic_write_text(path, render_report(title, sections, note))
    return path
