"""Why are these two similar? Two text boxes, the token × token terms of their cosine, live.

The numbers drawn are exactly :func:`workbench.explain.token_similarity`'s; the widget keeps the
last explanation and only re-views it (words joined, special tokens hidden) when a checkbox changes.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go

from workbench.explain import TokenSimilarity, token_similarity
from workbench.figures import short_label
from workbench.widgets._common import View, encoder_name, figure_widget

_EMPTY = "type a sentence in both boxes"


def _color(value: float, scale: float) -> str:
    """A background for a token's contribution: red for positive, blue for negative, paler when small."""
    strength = min(abs(value) / scale, 1.0) if scale > 0 else 0.0
    rgb = "214,39,40" if value >= 0 else "31,119,180"
    return f"rgba({rgb},{0.85 * strength:.3f})"


def token_spans(tokens: tuple[str, ...], contributions: np.ndarray, scale: float | None = None) -> str:
    """The tokens as HTML spans coloured by their contribution (the hover says the number).

    Example:
        >>> token_spans(("a", "<b>"), np.array([0.5, -0.25]))[:61]
        "<span title='+0.5000' style='background:rgba(214,39,40,0.850)"
    """
    scale = float(np.abs(contributions).max()) if scale is None and len(contributions) else (scale or 0.0)
    return " ".join(
        f"<span title='{c:+.4f}' style='background:{_color(float(c), scale)};padding:1px 3px;border-radius:3px'>"
        f"{html.escape(t)}</span>" for t, c in zip(tokens, contributions, strict=True)
    )


def method_line(r: TokenSimilarity) -> str:
    """One line naming the method: exact, or approximate with its completeness error."""
    if r.exact:
        return f"exact decomposition (terms sum to the cosine; rounding {r.completeness_error:.1e})"
    return (f"approximate: integrated gradients, {r.steps} steps; completeness error {r.completeness_error:.2e}; "
            f"the all-zero reference explains {r.baseline:+.4f} of the cosine")


class ExplainPair(View):
    """The cosine of two sentences split into token × token terms: heatmap, coloured tokens, top pairs.

    Controls: ``text_a``, ``text_b`` (one sentence each), ``words`` (join subword tokens into words)
    and ``hide_special`` (hide [CLS]/[SEP]; the summary says what share of the cosine they held).
    ``fig`` is the heatmap (``fig.data[0].z`` is the result's matrix), ``tokens`` the coloured
    tokens, ``summary`` the cosine and the method, ``pairs`` the top terms; ``result`` is the
    :class:`~workbench.explain.TokenSimilarity` on screen.

    Args:
        model: a workbench transformer model or a SentenceTransformer (not a plain function:
            the explanation reads the token vectors).
        a: the first sentence.
        b: the second sentence.
        method: ``"auto"``, ``"exact"`` or ``"integrated-gradients"`` (see :func:`~workbench.explain.token_similarity`).
        steps: integration steps of the approximate method.
        top: how many top pairs to list.

    Example:
        >>> from workbench import load_model
        >>> w = ExplainPair(load_model("all-MiniLM-L6-v2", device="cpu"), "a dog bites a man", "a man bites a dog")
        >>> w.text_b.value = "The film was not good."
        >>> bool(np.isclose(np.sum(w.fig.data[0].z), w.result.cosine, atol=1e-5)), w.result.tokens_b[1]
        (True, 'the')
    """

    def __init__(self, model: Any, a: str = "a dog bites a man", b: str = "a man bites a dog", *,
                 method: str = "auto", steps: int = 32, top: int = 5) -> None:
        super().__init__()
        from workbench.explain import _as_workbench_model

        self.name = encoder_name(model)
        self.model = _as_workbench_model(model)  # refuses a plain function here, not on every keystroke
        self.method, self.steps, self.top = method, steps, int(top)
        box = dict(layout=widgets.Layout(width="100%"), continuous_update=False)
        self.text_a = widgets.Text(value=a, description="a", placeholder="first sentence", **box)
        self.text_b = widgets.Text(value=b, description="b", placeholder="second sentence", **box)
        self.words = widgets.Checkbox(value=False, description="join subwords into words", indent=False)
        self.hide_special = widgets.Checkbox(value=False, description="hide [CLS]/[SEP]", indent=False)
        self.summary, self.tokens, self.pairs = widgets.HTML(), widgets.HTML(), widgets.HTML()
        fig = go.Figure(go.Heatmap(z=[[0.0]], colorscale="RdBu_r", zmid=0.0, texttemplate="%{z:.3f}"),
                        layout=go.Layout(margin=dict(l=10, r=10, t=50, b=10), yaxis=dict(autorange="reversed", automargin=True),
                                         xaxis=dict(automargin=True, tickangle=-30, side="top")))
        self.fig = figure_widget(fig)
        self.raw: TokenSimilarity | None = None  # the full explanation (tokens, specials shown)
        self.result: TokenSimilarity | None = None  # what is on screen
        for control in (self.text_a, self.text_b):
            control.observe(self.log.guard(lambda _: self.update(), "update"), names=["value"])
        for control in (self.words, self.hide_special):
            control.observe(self.log.guard(lambda _: self.redraw(), "redraw"), names=["value"])
        self.widget = widgets.VBox([
            self.text_a, self.text_b, widgets.HBox([self.words, self.hide_special]), self.summary, self.tokens,
            self.fig, self.pairs, self.log.output,
        ], layout=widgets.Layout(width="100%"))
        self.log.guard(self.update, "update")()

    def update(self) -> None:
        """Explain the two texts again and redraw."""
        a, b = self.text_a.value, self.text_b.value
        self.raw = (token_similarity(self.model, a, b, method=self.method, steps=self.steps)  # type: ignore[arg-type]
                    if a.strip() and b.strip() else None)
        self.redraw()

    def view(self) -> TokenSimilarity | None:
        """The explanation as the checkboxes ask: specials hidden first, then subwords joined."""
        r = self.raw
        if r is None:
            return None
        if self.hide_special.value:
            r = r.hide_special()
        return r.join_words() if self.words.value else r

    def redraw(self) -> None:
        """Draw :meth:`view` into the heatmap and the text panels."""
        r = self.view()
        self.result = r
        if r is None:
            with self.fig.batch_update():
                self.fig.data[0].update(z=[[0.0]], x=[0], y=[0], text=None)
                self.fig.layout.title = dict(text=_EMPTY)
            self.summary.value, self.tokens.value, self.pairs.value = f"<i>{_EMPTY}</i>", "", ""
            return
        z = np.asarray(r.matrix) + 0.0
        bound = float(np.abs(z).max()) if z.size else 1.0
        ra, rb = r.contributions_a, r.contributions_b
        with self.fig.batch_update():
            self.fig.data[0].update(
                z=z, x=list(range(len(r.tokens_b))), y=list(range(len(r.tokens_a))), zmin=-bound, zmax=bound,
                text=[[f"{html.escape(ta)} · {html.escape(tb)}" for tb in r.tokens_b] for ta in r.tokens_a],
                texttemplate="%{z:.3f}" if z.size <= 225 else "",
                hovertemplate="%{text}<br>term %{z:.4f}<extra></extra>",
            )
            for axis, labels in ((self.fig.layout.yaxis, r.tokens_a), (self.fig.layout.xaxis, r.tokens_b)):
                axis.update(tickmode="array", tickvals=list(range(len(labels))), ticktext=[short_label(t, 20) for t in labels])
            self.fig.layout.title = dict(text=f"token × token terms of the cosine · {html.escape(self.name)} · "
                                              f"sum {z.sum():.4f}")
            self.fig.layout.height = max(320, 140 + 30 * len(r.tokens_a))
        scale = max(float(np.abs(ra).max(initial=0)), float(np.abs(rb).max(initial=0)))
        self.tokens.value = (f"<div style='line-height:1.9'>a: {token_spans(r.tokens_a, ra, scale)}<br>"
                             f"b: {token_spans(r.tokens_b, rb, scale)}</div>")
        notes = []
        if r.hidden:
            notes.append(f"special tokens hidden: they held {r.hidden:+.4f} of the cosine")
        for side, cut in zip("ab", r.cut, strict=True):
            if cut:
                notes.append(f"{side} was truncated at max_seq_length: {cut} tokens cut, not explained")
        self.summary.value = (f"<b>cosine {r.cosine:.4f}</b> · {html.escape(method_line(r))}"
                              + "".join(f"<br>{html.escape(n)}" for n in notes))
        items = "".join(f"<li>{html.escape(ta)} · {html.escape(tb)}: {v:+.4f}</li>" for ta, tb, v in r.top_pairs(self.top))
        self.pairs.value = f"<b>top pairs</b><ol style='margin:2px 0'>{items}</ol>"
