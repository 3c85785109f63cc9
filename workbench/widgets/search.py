"""Semantic search and paraphrase mining over a small corpus, as widgets.

The ranking is :func:`workbench.similarity.top_k` / :func:`workbench.similarity.
paraphrase_pairs` of the encoder's embeddings; the corpus is encoded once, queries through a
cache.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go

from workbench.similarity import SIMILARITY_FUNCTIONS, canonical_fn_name, paraphrase_pairs, top_k
from workbench.widgets._common import EmbeddingCache, View, figure_widget, html_table, widget_texts

_BAR_LABEL_CHARS = 40


def _fn_dropdown(fn: str) -> widgets.Dropdown:
    return widgets.Dropdown(options=list(SIMILARITY_FUNCTIONS), value=canonical_fn_name(fn), description="fn")


class SemanticSearch(View):
    """Type a query, get the ``k`` most similar corpus texts with their scores.

    Controls: ``query`` (submits on enter: its value changes on enter or when it loses focus),
    ``button`` (Search), ``k`` and ``fn``. Results: ``results`` (a list of
    ``(score, index, text)``, best first), the ``table`` HTML and the ``fig`` bar chart.

    Args:
        encoder: a workbench model, a SentenceTransformer or a function ``texts -> array``.
        corpus: the texts to search.
        k: how many results.
        fn: similarity function name.
        query: an initial query (searched at once).

    Raises:
        TypeError: ``corpus`` is unordered (a set, a dict) or holds a non-string (named by index).
        ValueError: ``corpus`` is empty.

    Example:
        >>> import numpy as np
        >>> encode = lambda texts: np.array([[t.count("a"), t.count("b")] for t in texts], dtype=float)
        >>> w = SemanticSearch(encode, ["aa", "bb", "ab"], k=2)
        >>> w.query.value = "aaa"
        >>> [text for _, _, text in w.results]
        ['aa', 'ab']
    """

    def __init__(
        self, encoder: Any, corpus: Sequence[str], k: int = 5, fn: str = "cosine", query: str = ""
    ) -> None:
        super().__init__()
        self.corpus = widget_texts(corpus, "corpus", "SemanticSearch")
        self._cache = EmbeddingCache(encoder)
        self.corpus_emb = self._cache(self.corpus)  # (c, dim), encoded once
        self.results: list[tuple[float, int, str]] = []
        self.query = widgets.Text(value=query, placeholder="a query, then Enter", continuous_update=False)
        self.button = widgets.Button(description="Search", button_style="primary")
        self.k = widgets.IntSlider(
            value=min(k, len(self.corpus)), min=1, max=min(max(k, 50), len(self.corpus)), description="k"
        )
        self.fn = _fn_dropdown(fn)
        self.table = widgets.HTML()
        self.fig = figure_widget(
            data=[go.Bar(orientation="h", x=[], y=[])],
            layout=go.Layout(
                height=260,
                margin=dict(l=10, r=10, t=40, b=10),
                yaxis=dict(autorange="reversed", automargin=True),
            ),
        )
        guard = self.log.guard
        self.button.on_click(guard(lambda button: self.run(), "search"))
        for control in (self.query, self.k, self.fn):
            control.observe(guard(lambda change: self.run(), "search"), names=["value"])
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.query, self.button]),
                widgets.HBox([self.k, self.fn]),
                self.table,
                self.fig,
                self.log.output,
            ]
        )
        if query:
            guard(self.run, "search")()

    def run(self, query: str | None = None) -> list[tuple[float, int, str]]:
        """Search for ``query`` (default: the text box's value) and show the results."""
        if query is not None and query != self.query.value:
            self.query.value = query  # the observer runs the search
            return self.results
        q = self.query.value.strip()
        if not q:
            self.results = []
        else:
            scores, idx = top_k(self._cache([q]), self.corpus_emb, k=self.k.value, fn=self.fn.value)
            self.results = [
                (float(s), int(i), self.corpus[i]) for s, i in zip(scores[0], idx[0], strict=True)
            ]
        self._draw(q)
        return self.results

    def _draw(self, q: str) -> None:
        fn = self.fn.value
        rows = [(r + 1, text, score) for r, (score, _, text) in enumerate(self.results)]
        self.table.value = (
            html_table(["#", "text", fn], rows, caption=f"top {len(rows)} for: {q}") if q else ""
        )
        labels = [
            f"{r + 1}. {t[:_BAR_LABEL_CHARS]}" + ("…" if len(t) > _BAR_LABEL_CHARS else "")
            for r, (_, _, t) in enumerate(self.results)
        ]
        with self.fig.batch_update():
            bar = self.fig.data[0]
            bar.x = [s for s, _, _ in self.results]
            bar.y = [html.escape(label) for label in labels]
            bar.hovertext = [html.escape(t) for _, _, t in self.results]
            bar.hovertemplate = f"%{{hovertext}}<br>{fn}: %{{x:.4f}}<extra></extra>"
            self.fig.layout.title = dict(text=html.escape(f"{fn} similarity to: {q}") if q else "")
            self.fig.layout.height = 120 + 28 * max(len(labels), 1)


class ParaphraseMiner(View):
    """The most similar pairs of distinct texts in a corpus, in a table.

    Controls: ``top`` (how many pairs) and ``fn``. ``pairs`` holds ``(score, i, j)`` with
    ``i < j`` (indices into ``corpus``), best first: exactly the ``top`` best pairs of distinct
    texts (see :func:`workbench.similarity.paraphrase_pairs`); a text repeated in the corpus is
    taken once, at its first place.

    Args:
        encoder: a workbench model, a SentenceTransformer or a function ``texts -> array``.
        corpus: the texts.
        top: how many pairs to show.
        fn: similarity function name.

    Raises:
        TypeError: ``corpus`` is unordered (a set, a dict) or holds a non-string (named by index).
        ValueError: ``corpus`` has fewer than two texts (no pair to show).

    Example:
        >>> import numpy as np
        >>> encode = lambda texts: np.array([[t.count("a"), t.count("b")] for t in texts], dtype=float)
        >>> w = ParaphraseMiner(encode, ["aa", "bb", "a", "ab"], top=1)
        >>> w.pairs
        [(1.0, 0, 2)]
    """

    def __init__(self, encoder: Any, corpus: Sequence[str], top: int = 20, fn: str = "cosine") -> None:
        super().__init__()
        self.corpus = widget_texts(corpus, "corpus", "ParaphraseMiner", at_least=2)  # a pair needs two
        # A text repeated in the corpus is mined once (at its first place): else it pairs with itself at 1.0.
        first: dict[str, int] = {}
        for i, text in enumerate(self.corpus):
            first.setdefault(text, i)
        self._rows = list(first.values())  # corpus index of each distinct text
        self.repeated = len(self.corpus) - len(self._rows)
        if len(self._rows) < 2:
            raise ValueError(f"ParaphraseMiner: the corpus holds {len(self._rows)} distinct text; a pair needs two")
        self.emb = EmbeddingCache(encoder)([self.corpus[i] for i in self._rows])  # (distinct texts, dim), encoded once
        self.pairs: list[tuple[float, int, int]] = []
        self.top = widgets.IntSlider(value=max(1, top), min=1, max=max(top, 200), description="pairs")
        self.fn = _fn_dropdown(fn)
        self.table = widgets.HTML()
        for control in (self.top, self.fn):
            control.observe(self.log.guard(lambda change: self.run(), "mine"), names=["value"])
        self.widget = widgets.VBox([widgets.HBox([self.top, self.fn]), self.table, self.log.output])
        self.log.guard(self.run, "mine")()

    def run(self) -> list[tuple[float, int, int]]:
        """Mine the pairs for the current controls and show them."""
        top, fn = self.top.value, self.fn.value
        # With max_pairs <= top_k the result is exactly the best pairs overall.
        self.pairs = [(s, self._rows[i], self._rows[j]) for s, i, j in paraphrase_pairs(self.emb, top_k=top, fn=fn, max_pairs=top)]
        rows = [(r + 1, self.corpus[i], self.corpus[j], s) for r, (s, i, j) in enumerate(self.pairs)]
        repeated = f"; {self.repeated} repeated text{'s' if self.repeated != 1 else ''} counted once" if self.repeated else ""
        self.table.value = html_table(
            ["#", "text", "paraphrase", fn], rows, caption=f"{len(rows)} most similar pairs ({fn}){repeated}"
        )
        return self.pairs
