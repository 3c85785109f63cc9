"""The HTML report and short text summaries of a run.

The report is one self-contained HTML file: plotly.js is embedded once, so it opens offline in
any browser, and every figure stays interactive (hover, zoom). The figures are drawn from plain
numbers (a similarity matrix, projected coordinates, a :class:`~workbench.training.RunHistory`) by
:mod:`workbench.figures`, the builders the notebook widgets draw with too (``similarity_figure``,
``projection_figure`` and ``curves_figure`` are importable from here as well); nothing here encodes
or trains.

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

import numpy as np
import plotly.graph_objects as go

from workbench.atomic import atomic_write_text
from workbench.figures import curves_figure, metric_key, projection_figure, similarity_figure
from workbench.training.events import RunHistory

__all__ = ["Section", "card_text", "curve_summary", "curves_figure", "projection_figure", "render_report",
           "similarity_figure", "write_report"]

# The metric a summary names when the run has none (a run that never evaluated).
PRIMARY = "sts-dev_spearman_cosine"


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
    key = metric_key(history, metric) or metric
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
    path = Path(path)
    note = note if note is not None else f"written {time.strftime('%Y-%m-%d %H:%M:%S')} by workbench"
    atomic_write_text(path, render_report(title, sections, note))
    return path
