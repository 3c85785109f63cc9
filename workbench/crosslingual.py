"""Where an English model breaks: STS-B test in 11 languages, and a sentence against its translations.

The STS-B test set machine-translated into de es fr it ja nl pl pt ru zh (``stsb/stsb-<lang>-test.tsv``
under ``WORKBENCH_DATA``; DeepL translations of PhilipMay/stsb-multi-mt) keeps the English rows'
order: row ``i`` of each file is the translation of English row ``i``, with the same gold score.
:func:`load_translations` checks that (same row count, same score on every row) before anything
relies on it.

Example:
    >>> s = CrosslingualScores({"all-MiniLM-L6-v2": {"en": 0.82, "de": 0.36}}, ("en", "de"), 1379)
    >>> print(s.table())
    | language | all-MiniLM-L6-v2 |
    |---|---:|
    | en (English) | 82.00 |
    | de (German) | 36.00 |
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import plotly.graph_objects as go

from workbench.data.catalog import STSB_LANGUAGES, load_stsb
from workbench.data.sources import DataError, SampleDataWarning, source
from workbench.evaluation import STSEvaluator
from workbench.similarity import similarity_matrix

LANGUAGE_NAMES = {
    "en": "English", "de": "German", "es": "Spanish", "fr": "French", "it": "Italian", "ja": "Japanese",
    "nl": "Dutch", "pl": "Polish", "pt": "Portuguese", "ru": "Russian", "zh": "Chinese",
}


@dataclass(frozen=True)
class CrosslingualScores:
    """STS-B test Spearman (cosine) per model and language.

    Attributes:
        spearman: ``{model name: {language: spearman}}`` (0–1 correlation, not ×100).
        languages: the languages, in order.
        pairs: the pairs scored per language.
        sample: whether the built-in sample stood in for the real data (the numbers then mean nothing).
    """

    spearman: dict[str, dict[str, float]]
    languages: tuple[str, ...]
    pairs: int
    sample: bool = False
    sources: dict[str, str] = field(default_factory=dict)

    def table(self) -> str:
        """A markdown table: a row per language, a column per model, Spearman × 100."""
        names = list(self.spearman)
        lines = ["| language | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
        for lang in self.languages:
            cells = " | ".join(f"{100 * self.spearman[n][lang]:.2f}" for n in names)
            lines.append(f"| {lang} ({LANGUAGE_NAMES.get(lang, lang)}) | {cells} |")
        return "\n".join(lines)


def load_translations(languages: Sequence[str] = STSB_LANGUAGES, path: Any = None, limit: int | None = None) -> dict[str, Any]:
    """The STS-B test sets of ``languages`` (``datasets.Dataset`` each), checked to be row-aligned.

    Args:
        languages: language codes of :data:`workbench.data.catalog.STSB_LANGUAGES`.
        path: a folder laid out like ``shared/data`` (or its ``stsb`` folder); ``WORKBENCH_DATA`` by default.
        limit: keep the first ``limit`` rows of each.

    Raises:
        ValueError: no or unknown languages, or a bad ``limit``.
        DataError: a file has another number of rows than the English one, or a different gold score
            on some row (then its rows are not translations of the English rows).
    """
    langs = _languages(languages)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 2):
        raise ValueError(f"limit must be an integer of at least 2 (pairs to score), got {limit!r}")
    sets = {lang: load_stsb("test", lang, path) for lang in dict.fromkeys(("en", *langs))}
    english = np.asarray(sets["en"]["score"])
    for lang, ds in sets.items():
        scores = np.asarray(ds["score"])
        if len(scores) != len(english):
            raise DataError(f"STS-B {lang} test has {len(scores)} rows but the English one {len(english)}: "
                            f"its rows cannot be translations of the English rows ({source(ds)})")
        differ = np.flatnonzero(scores != english)
        if differ.size:
            i = int(differ[0])
            raise DataError(f"STS-B {lang} test row {i} has gold score {5 * scores[i]:g}, the English row {5 * english[i]:g} "
                            f"({differ.size} rows differ): the files are not row-aligned ({source(ds)})")
    if limit is not None:
        sets = {lang: ds.select(range(min(limit, ds.num_rows))) for lang, ds in sets.items()}
    return {lang: sets[lang] for lang in langs}


def crosslingual_sts(
    encoders: Any, languages: Sequence[str] = STSB_LANGUAGES, path: Any = None, limit: int | None = None,
    batch_size: int = 32,
) -> CrosslingualScores:
    """STS-B test Spearman (cosine) per language for one or more encoders.

    Args:
        encoders: an encoder (a workbench model, a SentenceTransformer or a function ``texts -> array``)
            or ``{name: encoder}``.
        languages: which of the 11 languages.
        path: where the data is (see :func:`load_translations`).
        limit: score only the first ``limit`` pairs of each language (a quick look).
        batch_size: passed to the encoders' ``encode``.

    Returns:
        A :class:`CrosslingualScores`; each number is :class:`workbench.evaluation.STSEvaluator`'s
        ``spearman_cosine`` on that language's file.
    """
    from workbench.widgets._common import encoder_name

    named = dict(encoders) if isinstance(encoders, Mapping) else {encoder_name(encoders): encoders}
    if not named:
        raise ValueError("crosslingual_sts needs at least one encoder")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SampleDataWarning)
        sets = load_translations(languages, path, limit)
    sample = any(issubclass(w.category, SampleDataWarning) for w in caught) or any(source(d).is_sample for d in sets.values())
    for w in caught:  # pass the warnings on
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    evaluators = {lang: STSEvaluator.from_dataset(ds, name=f"sts-{lang}", fns=["cosine"], batch_size=batch_size)
                  for lang, ds in sets.items()}
    spearman = {name: {lang: float(ev(enc)[ev.primary_metric]) for lang, ev in evaluators.items()}
                for name, enc in named.items()}
    pairs = next(iter(sets.values())).num_rows
    return CrosslingualScores(spearman, tuple(sets), pairs, sample, {lang: str(source(d)) for lang, d in sets.items()})


def crosslingual_figure(scores: CrosslingualScores, title: str | None = None) -> go.Figure:
    """A bar chart of :func:`crosslingual_sts`: languages along x, one bar per model, Spearman × 100.

    Example:
        >>> s = CrosslingualScores({"m": {"en": 0.8, "de": 0.4}}, ("en", "de"), 1379)
        >>> fig = crosslingual_figure(s)
        >>> [round(y, 1) for y in fig.data[0].y], list(fig.data[0].x)
        ([80.0, 40.0], ['en', 'de'])
    """
    fig = go.Figure()
    langs = list(scores.languages)
    for name, by_lang in scores.spearman.items():
        ys = [100 * by_lang[lang] for lang in langs]
        fig.add_trace(go.Bar(
            x=langs, y=ys, name=html.escape(name), text=[f"{y:.1f}" for y in ys], textposition="outside",
            customdata=[LANGUAGE_NAMES.get(lang, lang) for lang in langs],
            hovertemplate="%{customdata}: %{y:.2f}<extra>" + html.escape(name) + "</extra>",
        ))
    note = " · <b>built-in sample, not STS-B</b>" if scores.sample else ""
    fig.update_layout(
        barmode="group", title=title or f"STS-B test Spearman (cosine × 100) per language · {scores.pairs} pairs{note}",
        yaxis=dict(title="Spearman × 100", range=[min(0, *(t for tr in fig.data for t in tr.y)), 100]),
        xaxis=dict(title="language"), margin=dict(l=10, r=10, t=60, b=10), legend=dict(orientation="h"),
    )
    return fig


def translations(index: int, column: str = "sentence1", languages: Sequence[str] = STSB_LANGUAGES,
                 path: Any = None) -> dict[str, str]:
    """Row ``index``'s ``sentence1`` (or ``sentence2``) of STS-B test in each language: ``{lang: text}``."""
    if column not in ("sentence1", "sentence2"):
        raise ValueError(f"column must be 'sentence1' or 'sentence2', got {column!r}")
    sets = load_translations(languages, path)
    rows = next(iter(sets.values())).num_rows
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < rows:
        raise ValueError(f"index must be a row number in 0..{rows - 1}, got {index!r}")
    return {lang: ds[int(index)][column] for lang, ds in sets.items()}


def translation_figure(encoder: Any, index: int = 0, column: str = "sentence1",
                       languages: Sequence[str] = STSB_LANGUAGES, path: Any = None) -> go.Figure:
    """The cosine of an English STS-B sentence and its translations, every one against every other.

    A multilingual model shows a bright block; an English one is bright on the English row only
    near languages that share its words and tokens.
    """
    from workbench.encoding import as_encode_fn
    from workbench.figures import similarity_figure

    texts = translations(index, column, languages, path)
    labels = [f"{lang}: {text}" for lang, text in texts.items()]
    matrix = similarity_matrix(as_encode_fn(encoder)(list(texts.values())), fn="cosine")
    return similarity_figure(matrix, labels, title=f"STS-B test row {index} ({column}) and its translations: cosine")


def _languages(languages: Sequence[str]) -> tuple[str, ...]:
    if isinstance(languages, str):
        languages = (languages,)
    langs = tuple(dict.fromkeys(languages))
    bad = [lang for lang in langs if lang not in STSB_LANGUAGES]
    if bad or not langs:
        raise ValueError(f"unknown STS-B languages {bad or list(langs)}; choose from {', '.join(STSB_LANGUAGES)}")
    return langs
