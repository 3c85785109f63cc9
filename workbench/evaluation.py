"""Evaluators: how well embeddings match gold similarity scores, a teacher, or triplets.

The math lives in pure functions on embeddings (:func:`sts_metrics`, :func:`mse_metric`,
:func:`triplet_accuracy`); the evaluator classes hold a data set, encode it with any encoder
(a workbench model, a ``SentenceTransformer`` or a function ``texts -> array``) and call them.

Every evaluator returns a flat ``dict[str, float]`` whose keys are prefixed with its name and
follow sentence-transformers (``sts-dev_spearman_cosine``, ``mse_negative_mse``,
``all-nli-dev_cosine_accuracy``), and has a ``primary_metric`` attribute holding the full key
of the headline number. Evaluators never print, plot or write files.

Formulas (as in sentence-transformers' ``EmbeddingSimilarityEvaluator``, ``MSEEvaluator`` and
``TripletEvaluator``):

* ``pearson_<fn>`` / ``spearman_<fn>``: scipy ``pearsonr`` / ``spearmanr`` (average ranks for
  ties) between the gold scores and ``sim_fn(e1[i], e2[i])``; ``pearson_max`` /
  ``spearman_max``: the highest over the functions, each taken separately. Present when more
  than one function is evaluated, as in sentence-transformers.
* ``negative_mse``: ``-mean((teacher - student)²) * 100`` over all ``N × D`` elements.
* ``<fn>_accuracy``: the fraction of triplets with ``sim(a, p) > sim(a, n) + margin``;
  ``max_accuracy`` over the functions when there is more than one.

Undefined correlations: when the predicted scores of a function are all equal (a collapsed
model, e.g. one that maps every sentence to the same vector), Pearson and Spearman are
undefined and reported as ``nan`` ("all equal" allows a spread of 1e-12 of their magnitude,
float64 rounding noise); ``*_max`` skips ``nan`` entries and is ``nan`` only when every
function is. Non-finite embeddings (NaN or inf, from a diverged model) are an error, not a
``nan`` metric: they would otherwise also count as lost triplet comparisons.
"""

from __future__ import annotations

import math
import numbers
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from scipy.stats import pearsonr, spearmanr

from workbench.encoding import as_encode_fn, encode_with_progress
from workbench.formatting import metric
from workbench.similarity import canonical_fn_name, pairwise_similarity

if TYPE_CHECKING:
    import pandas as pd

    from workbench.data.pairs import ScoredPairs

# All of workbench.similarity.SIMILARITY_FUNCTIONS, in the order sentence-transformers' STS evaluator
# reports them (tests/test_evaluation.py checks that none is missing).
STS_FNS: tuple[str, ...] = ("cosine", "manhattan", "euclidean", "dot")

# Predicted scores whose spread is below this fraction of their magnitude count as constant.
_CONSTANT_RTOL = 1e-12


class Evaluator(Protocol):
    """What the training loop and the CLI expect of an evaluator."""

    primary_metric: str

    def __call__(self, encoder: Any) -> dict[str, float]: ...


# --------------------------------------------------------------------------- pure functions


def sts_metrics(
    emb1: Any, emb2: Any, gold_scores: Sequence[float] | np.ndarray, fns: Iterable[Any] = STS_FNS
) -> dict[str, float]:
    """Pearson and Spearman correlation between gold scores and embedding similarities.

    Args:
        emb1: embeddings of the first sentences, shape ``(n, dim)`` (numpy or torch).
        emb2: embeddings of the second sentences, shape ``(n, dim)``.
        gold_scores: ``n`` finite gold similarity scores (any scale: correlation ignores it).
        fns: similarity functions to score with (names as in :mod:`workbench.similarity`).

    Returns:
        ``{"pearson_<fn>": ..., "spearman_<fn>": ..., ...}`` for each function in order, then
        ``pearson_max`` and ``spearman_max`` when there is more than one function. Constant
        predictions give ``nan`` for that function (see the module docstring).

    Raises:
        ValueError: fewer than 2 pairs, mismatched lengths or shapes, non-finite embeddings,
            non-finite or constant gold scores, no or unknown functions.

    Example:
        >>> e1 = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
        >>> e2 = np.array([[1.0, 0.1], [1.0, 1.0], [0.0, 1.0]])
        >>> m = sts_metrics(e1, e2, [5.0, 2.5, 0.0], fns=["cosine", "dot"])
        >>> {k: round(v, 4) for k, v in m.items()}  # doctest: +NORMALIZE_WHITESPACE
        {'pearson_cosine': 0.9717, 'spearman_cosine': 1.0, 'pearson_dot': 0.866,
         'spearman_dot': 0.866, 'pearson_max': 0.9717, 'spearman_max': 1.0}
    """
    names = _canonical_fns(fns)
    e1, e2 = _as_float64(emb1, "emb1"), _as_float64(emb2, "emb2")
    if e1.shape != e2.shape:
        raise ValueError(f"emb1 and emb2 must have the same shape, got {e1.shape} and {e2.shape}")
    gold = _check_scores(gold_scores, "gold_scores")
    if len(gold) != e1.shape[0]:
        raise ValueError(f"got {e1.shape[0]} embedding pairs but {len(gold)} gold scores")
    _check_gold(gold)
    metrics: dict[str, float] = {}
    for name in names:
        predicted = pairwise_similarity(e1, e2, name)  # (n,) float64
        metrics[f"pearson_{name}"], metrics[f"spearman_{name}"] = _correlations(gold, predicted)
    if len(names) > 1:
        metrics["pearson_max"] = _nanmax(metrics[f"pearson_{n}"] for n in names)
        metrics["spearman_max"] = _nanmax(metrics[f"spearman_{n}"] for n in names)
    return metrics


def mse_metric(teacher: Any, student: Any) -> dict[str, float]:
    """Negative mean squared error between teacher and student embeddings, times 100.

    Args:
        teacher: target embeddings, shape ``(n, dim)``.
        student: embeddings to score, the same shape.

    Returns:
        ``{"negative_mse": -mean((teacher - student)²) * 100}`` (higher is better; the ×100
        follows sentence-transformers, the training loss has no such factor).

    Raises:
        ValueError: shapes differ (e.g. a student narrower than an unreduced teacher), empty, or
            non-finite values.

    Example:
        >>> mse_metric(np.zeros((2, 2)), np.full((2, 2), 0.5))
        {'negative_mse': -25.0}
    """
    t, s = _as_float64(teacher, "teacher"), _as_float64(student, "student")
    if t.shape != s.shape:
        raise ValueError(f"teacher has shape {t.shape} but student has shape {s.shape}")
    if t.size == 0:
        raise ValueError("mse_metric needs at least one embedding, got empty arrays")
    return {"negative_mse": -float(np.mean((t - s) ** 2)) * 100.0}


def triplet_accuracy(
    anchors: Any, positives: Any, negatives: Any, fn: Any = "cosine", *, margin: float = 0.0
) -> float:
    """Fraction of triplets whose anchor is closer to the positive than to the negative.

    Args:
        anchors: anchor embeddings, shape ``(n, dim)``.
        positives: positive embeddings, shape ``(n, dim)``.
        negatives: negative embeddings, shape ``(n, dim)``.
        fn: similarity function name.
        margin: the positive must win by more than this; a tie never counts as a win.

    Returns:
        ``mean(sim(a, p) > sim(a, n) + margin)`` as a float in ``[0, 1]``.

    Raises:
        ValueError: shapes differ, no triplets, non-finite embeddings, or unknown ``fn``.

    Example:
        >>> a = np.array([[1.0, 0.0], [1.0, 0.0]])
        >>> triplet_accuracy(a, np.array([[1.0, 0.1], [0.0, 1.0]]), np.array([[0.0, 1.0], [1.0, 0.0]]))
        0.5
    """
    a = _as_float64(anchors, "anchors")
    p, n = _as_float64(positives, "positives"), _as_float64(negatives, "negatives")
    if not a.shape == p.shape == n.shape:
        raise ValueError(
            f"anchors, positives and negatives must share a shape, got {a.shape}, {p.shape}, {n.shape}"
        )
    if a.shape[0] == 0:
        raise ValueError("triplet_accuracy needs at least one triplet")
    pos = pairwise_similarity(a, p, fn)  # (n,)
    neg = pairwise_similarity(a, n, fn)  # (n,)
    return float(np.mean(pos > neg + margin))


def format_metrics(metrics: Mapping[str, float]) -> str:
    """Render metrics as a plain-text table for a terminal.

    Correlation keys (``[<name>_]pearson_<fn>`` / ``spearman_<fn>``) become rows of a
    ``function | pearson | spearman`` table (with an ``evaluator`` column when keys carry a
    name); every other key is listed below it as ``metric | value``. Numbers have 4 decimals.

    Args:
        metrics: a flat metrics dict, e.g. an evaluator's result or several merged.

    Returns:
        The table as one string (no trailing newline).

    Example:
        >>> print(format_metrics({"pearson_cosine": 0.81234, "spearman_cosine": 0.8}))
        function  pearson  spearman
        cosine     0.8123    0.8000
    """
    rows: dict[tuple[str, str], dict[str, float]] = {}
    others: list[tuple[str, float]] = []
    for key, value in metrics.items():
        match = re.fullmatch(r"(?:(?P<prefix>.*)_)?(?P<stat>pearson|spearman)_(?P<fn>[A-Za-z0-9]+)", key)
        if match:
            row = rows.setdefault((match["prefix"] or "", match["fn"]), {})
            row[match["stat"]] = value
        else:
            others.append((key, value))
    blocks = []
    if rows:
        named = any(prefix for prefix, _ in rows)
        header = (["evaluator"] if named else []) + ["function", "pearson", "spearman"]
        body = [
            ([prefix] if named else []) + [fn, metric(row.get("pearson")), metric(row.get("spearman"))]
            for (prefix, fn), row in rows.items()
        ]
        blocks.append(_table(header, body, numeric_from=len(header) - 2))
    if others:
        blocks.append(_table(["metric", "value"], [[k, metric(v)] for k, v in others], numeric_from=1))
        if any(k.endswith("negative_mse") for k, _ in others):
            blocks[-1] += ("\n(negative_mse = −100 × the mean squared error to the teacher's embeddings, higher is "
                           "better: sentence-transformers' convention; the training loss is the plain MSE)")
    return "\n\n".join(blocks)


# --------------------------------------------------------------------------- evaluators


class STSEvaluator:
    """Correlation of embedding similarity with gold scores on sentence pairs (STS-B style).

    Sentences are encoded once each, even when they occur in several pairs.

    Args:
        sentences1: first sentence of each pair.
        sentences2: second sentence of each pair.
        scores: gold similarity per pair (finite numbers, any scale).
        name: key prefix, e.g. ``"sts-dev"``; ``""`` for no prefix.
        batch_size: passed to the encoder's ``encode``.
        fns: similarity functions to evaluate.

    Attributes:
        primary_metric: ``f"{name}_spearman_cosine"`` (or the first function's Spearman key
            when cosine is not evaluated).

    Raises:
        ValueError: lengths differ, fewer than 2 pairs, bad or constant scores, unknown fns.
        TypeError: a sentence is not a string.

    Example:
        >>> ev = STSEvaluator(["a cat", "a man", "the sky"], ["a kitten", "a woman", "a stone"],
        ...                   [4.8, 3.0, 0.2], name="toy")
        >>> encoder = lambda texts: np.array([[len(t), t.count("a") + 1.0] for t in texts])
        >>> results = ev(encoder)
        >>> ev.primary_metric, sorted(results)[:2]
        ('toy_spearman_cosine', ['toy_pearson_cosine', 'toy_pearson_dot'])
    """

    def __init__(
        self,
        sentences1: Sequence[str],
        sentences2: Sequence[str],
        scores: Sequence[float] | np.ndarray,
        name: str = "sts-dev",
        batch_size: int = 32,
        fns: Iterable[Any] = STS_FNS,
    ) -> None:
        s1, s2 = _check_sentences(sentences1, "sentences1"), _check_sentences(sentences2, "sentences2")
        gold = _check_scores(scores, "scores")
        if not len(s1) == len(s2) == len(gold):
            raise ValueError(
                "sentences1, sentences2 and scores must have the same length, "
                f"got {len(s1)}, {len(s2)} and {len(gold)}"
            )
        _check_gold(gold)
        self.sentences1, self.sentences2, self.scores = s1, s2, gold
        self.name, self.batch_size = name, batch_size
        self.fns = _canonical_fns(fns)
        # Pairs share sentences (STS-B dev: ~3k texts for 1.5k pairs): encode each text once.
        self._texts, (self._idx1, self._idx2) = _unique_index(s1, s2)
        main = "cosine" if "cosine" in self.fns else self.fns[0]
        self.primary_metric = _prefixed(name, f"spearman_{main}")
        self.pairs: ScoredPairs | None = None  # set by from_dataset

    @classmethod
    def from_dataset(
        cls,
        dataset: Any,
        name: str | None = None,
        *,
        columns: Sequence[str] | None = None,
        split: str | None = None,
        skip_bad_rows: bool = False,
        check: bool | None = None,
        **kwargs: Any,
    ) -> STSEvaluator:
        """Build from scored pairs anywhere: a file, a ``datasets`` folder or hub id, a table in memory.

        Reading, column detection and the bad-row rules are :func:`workbench.data.pairs.load_pairs`'s.

        Args:
            dataset: a csv/tsv/jsonl/json/parquet file, a ``save_to_disk`` folder or a hub id (a
                ``str`` or path), or a ``datasets.Dataset``, a pandas DataFrame or a dict of columns.
            name: key prefix; by default the file's (folder's, hub id's) name for a path, and
                ``"sts-dev"`` for a table in memory (as before).
            columns: the (sentence1, sentence2, score) column names; by default
                ``sentence1, sentence2, score`` when present, else found by kind (two text
                columns and one numeric one).
            split: the split of a ``DatasetDict`` folder or a hub data set.
            skip_bad_rows: drop bad rows (counted in ``evaluator.pairs.skipped``) instead of
                raising; implies ``check``.
            check: apply the bad-row rules (non-numeric, missing or NaN score, empty sentence,
                repeated pair, fewer than 3 pairs). By default on for paths and hub ids (your
                own files) and off for tables in memory, which are taken as given, as before
                (STS-B repeats a few pairs; the constructor still checks types and finite scores).
            **kwargs: passed to the constructor (``batch_size``, ``fns``).

        Returns:
            The evaluator; its ``pairs`` attribute holds what was read (``source`` says from where).

        Raises:
            DataError: a bad row, an unreadable source, too few pairs (see ``load_pairs``).
            KeyError: a named column is missing or the columns cannot be told apart (a
                :class:`~workbench.data.pairs.ColumnError`; the message lists the columns present).

        Example:
            >>> ev = STSEvaluator.from_dataset({"q": ["a b", "c d", "e f"], "d": ["a b c", "x", "e"], "y": [4, 0, 3]})
            >>> ev.name, ev.pairs.columns
            ('sts-dev', ('q', 'd', 'y'))
        """
        from workbench.data.pairs import load_pairs

        path_like = isinstance(dataset, (str, os.PathLike))
        checked = skip_bad_rows or (path_like if check is None else check)
        pairs = load_pairs(dataset, columns, split=split, skip_bad_rows=skip_bad_rows, check=checked)
        if name is None:
            name = pairs.name if path_like else "sts-dev"
        evaluator = cls(pairs.sentences1, pairs.sentences2, pairs.scores, name=name, **kwargs)
        evaluator.pairs = pairs
        return evaluator

    @property
    def texts(self) -> list[str]:
        """The distinct sentences, in first-seen order: what one evaluation encodes."""
        return list(self._texts)

    @property
    def source(self) -> str | None:
        """Where the pairs came from (one line), when built by :meth:`from_dataset`."""
        return self.pairs.source if self.pairs is not None else None

    def __call__(self, encoder: Any) -> dict[str, float]:
        """Encode the sentences with ``encoder`` and score them.

        Args:
            encoder: a model with ``.encode`` or a function ``texts -> array``.

        Returns:
            ``{f"{name}_pearson_cosine": ..., ..., f"{name}_spearman_max": ...}``.
        """
        encode = as_encode_fn(encoder, batch_size=self.batch_size)
        emb = encode_with_progress(encode, self._texts, desc=f"{self.name}: encoding")  # (n_unique, dim)
        metrics = sts_metrics(emb[self._idx1], emb[self._idx2], self.scores, self.fns)
        return {_prefixed(self.name, k): v for k, v in metrics.items()}

    def __repr__(self) -> str:
        return f"STSEvaluator(name={self.name!r}, pairs={len(self.scores)}, fns={self.fns})"


class MSEEvaluator:
    """Mean squared error (×100, negated) between a student's and a teacher's embeddings.

    The teacher embeddings are computed once, at construction, or passed in (e.g. already
    reduced by PCA to the student's width).

    Args:
        sentences: the texts to embed.
        teacher_embeddings: precomputed targets of shape ``(len(sentences), dim)``.
        teacher: an encoder to compute the targets with; give this or ``teacher_embeddings``.
        name: key prefix.
        batch_size: passed to the encoders' ``encode``.

    Attributes:
        primary_metric: ``f"{name}_negative_mse"``.
        teacher_embeddings: the float32 targets, shape ``(n, dim)``.

    Raises:
        ValueError: neither or both teacher arguments, no sentences, or a target count that is
            not ``len(sentences)``.
        TypeError: a sentence is not a string.

    Example:
        >>> ev = MSEEvaluator(["a", "bb"], teacher_embeddings=np.array([[1.0], [2.0]]))
        >>> ev(lambda texts: np.array([[float(len(t))] for t in texts]))
        {'mse_negative_mse': -0.0}
    """

    def __init__(
        self,
        sentences: Sequence[str],
        teacher_embeddings: Any = None,
        teacher: Any = None,
        name: str = "mse",
        batch_size: int = 32,
    ) -> None:
        self.sentences = _check_sentences(sentences, "sentences")
        if not self.sentences:
            raise ValueError("MSEEvaluator needs at least one sentence")
        if (teacher_embeddings is None) == (teacher is None):
            raise ValueError("give exactly one of teacher_embeddings or teacher")
        if teacher is not None:
            teacher_embeddings = as_encode_fn(teacher, batch_size=batch_size)(self.sentences)
        target = _as_float64(teacher_embeddings, "teacher_embeddings").astype(np.float32)
        if target.shape[0] != len(self.sentences):
            raise ValueError(
                f"teacher_embeddings has shape {target.shape} for {len(self.sentences)} sentences"
            )
        self.teacher_embeddings = target  # (n, dim)
        self.name, self.batch_size = name, batch_size
        self.primary_metric = _prefixed(name, "negative_mse")

    def __call__(self, encoder: Any) -> dict[str, float]:
        """Encode the sentences with ``encoder`` (the student) and compare with the targets.

        Args:
            encoder: a model with ``.encode`` or a function ``texts -> array``.

        Returns:
            ``{f"{name}_negative_mse": ...}``.
        """
        student = as_encode_fn(encoder, batch_size=self.batch_size)(self.sentences)  # (n, dim)
        metrics = mse_metric(self.teacher_embeddings, student)
        return {_prefixed(self.name, k): v for k, v in metrics.items()}

    def __repr__(self) -> str:
        return f"MSEEvaluator(name={self.name!r}, sentences={len(self.sentences)}, dim={self.teacher_embeddings.shape[1]})"


class TripletEvaluator:
    """Accuracy on (anchor, positive, negative) triplets: is the positive the closer one?

    Texts are encoded once each, however many triplets they occur in.

    Args:
        anchors: anchor texts.
        positives: texts that should be close to their anchor.
        negatives: texts that should be further from their anchor.
        name: key prefix, e.g. ``"all-nli-dev"``.
        batch_size: passed to the encoder's ``encode``.
        fns: similarity functions to evaluate.
        margin: the positive must beat the negative by more than this.

    Attributes:
        primary_metric: ``f"{name}_cosine_accuracy"`` (or the first function's key when cosine
            is not evaluated).

    Raises:
        ValueError: lengths differ, no triplets, or unknown fns.
        TypeError: a text is not a string.

    Example:
        >>> ev = TripletEvaluator(["a cat"], ["a kitten"], ["the stock market"], name="toy")
        >>> ev(lambda texts: np.array([[t.count("a"), t.count("t")] for t in texts], dtype=float))
        {'toy_cosine_accuracy': 1.0}
    """

    def __init__(
        self,
        anchors: Sequence[str],
        positives: Sequence[str],
        negatives: Sequence[str],
        name: str = "triplet",
        batch_size: int = 32,
        fns: Iterable[Any] = ("cosine",),
        margin: float = 0.0,
    ) -> None:
        a, p = _check_sentences(anchors, "anchors"), _check_sentences(positives, "positives")
        n = _check_sentences(negatives, "negatives")
        if not len(a) == len(p) == len(n):
            raise ValueError(
                f"anchors, positives and negatives must have the same length, got {len(a)}, {len(p)} and {len(n)}"
            )
        if not a:
            raise ValueError("TripletEvaluator needs at least one triplet")
        self.anchors, self.positives, self.negatives = a, p, n
        self.name, self.batch_size, self.margin = name, batch_size, float(margin)
        self.fns = _canonical_fns(fns)
        self._texts, (self._ia, self._ip, self._in) = _unique_index(a, p, n)
        main = "cosine" if "cosine" in self.fns else self.fns[0]
        self.primary_metric = _prefixed(name, f"{main}_accuracy")

    def __call__(self, encoder: Any) -> dict[str, float]:
        """Encode the texts with ``encoder`` and score the triplets.

        Args:
            encoder: a model with ``.encode`` or a function ``texts -> array``.

        Returns:
            ``{f"{name}_cosine_accuracy": ..., ...}``, plus ``f"{name}_max_accuracy"`` when
            more than one function is evaluated.
        """
        emb = as_encode_fn(encoder, batch_size=self.batch_size)(self._texts)  # (n_unique, dim)
        a, p, n = emb[self._ia], emb[self._ip], emb[self._in]
        metrics = {f"{fn}_accuracy": triplet_accuracy(a, p, n, fn, margin=self.margin) for fn in self.fns}
        if len(self.fns) > 1:
            metrics["max_accuracy"] = max(metrics.values())
        return {_prefixed(self.name, k): v for k, v in metrics.items()}

    def __repr__(self) -> str:
        return f"TripletEvaluator(name={self.name!r}, triplets={len(self.anchors)}, fns={self.fns})"


# --------------------------------------------------------------------------- comparing models


def compare(
    models: Sequence[Any] | Mapping[str, Any],
    evaluators: Sequence[Any] | Any,
    *,
    batch_size: int = 32,
    device: str | None = None,
) -> pd.DataFrame:
    """Evaluate several models on several data sets: one row per model, one column per data set.

    Each model encodes each distinct text once, however many evaluators hold it (the texts of
    every evaluator with a ``texts`` attribute are encoded together first; what an evaluator
    asks for beyond them is encoded on demand, once). A model given by name is loaded with
    :func:`workbench.load_model` when its turn comes and released after it.

    Args:
        models: models as a list, or ``{name: model}`` to choose the row names. A model is a name
            or folder (loaded with ``load_model(m, device=device)``), a workbench model, a
            ``SentenceTransformer``, or a function ``texts -> array``. In a list, a name is its
            own row name and a loaded model is named by the folder it came from (else its type).
        evaluators: evaluators (anything with ``name``, ``primary_metric`` and
            ``__call__(encoder) -> dict``), e.g. :class:`STSEvaluator`; their names must differ.
        batch_size: passed to the models' ``encode``.
        device: where models given by name are loaded.

    Returns:
        A DataFrame of the primary metric (``spearman_cosine`` for STS), index ``model``, columns
        the evaluators' names. The full results are in ``table.attrs`` as plain dicts:
        ``attrs["metrics"]`` is ``{model: {data set: {metric key: value}}}`` (the evaluators'
        own keys, e.g. ``sts-dev_pearson_cosine``) and ``attrs["primary"]`` is
        ``{data set: primary key}``; :func:`long_metrics` turns them into one row per number.
        (pandas keeps ``attrs`` through ``copy``, ``round`` and selections; take them before
        reshaping the table.)

    Raises:
        ValueError: no models or no evaluators, two with the same name.

    Example:
        >>> a = STSEvaluator(["a cat sits", "a man runs", "the sky is blue"], ["a cat sat", "a woman walks", "stocks fell"],
        ...                  [4.8, 3.0, 0.2], name="toy")
        >>> words = lambda texts: np.array([[t.split().count(w) for w in "a cat man sky sits sat runs".split()] + [1.0]
        ...                                 for t in texts])
        >>> length = lambda texts: np.array([[len(t), 1.0] for t in texts])
        >>> table = compare({"words": words, "length": length}, [a])  # 3 pairs: a toy, not a measurement
        >>> table.round(3)  # doctest: +NORMALIZE_WHITESPACE
        data      toy
        model
        words   0.866
        length  1.000
        >>> round(table.attrs["metrics"]["words"]["toy"]["toy_pearson_cosine"], 3), table.attrs["primary"]
        (0.797, {'toy': 'toy_spearman_cosine'})
    """
    import pandas as pd

    named = _named_models(models)
    evals = _named_evaluators(evaluators)
    metrics: dict[str, dict[str, dict[str, float]]] = {}
    for model_name, model in named.items():
        encoder = _load(model, device)
        cache = _TextCache(encoder, batch_size)
        cache.add(list(dict.fromkeys(t for ev in evals.values() for t in getattr(ev, "texts", ()))))
        metrics[model_name] = {data: dict(ev(cache)) for data, ev in evals.items()}
        del encoder, cache  # a model loaded by name goes before the next one loads
    primary = {data: ev.primary_metric for data, ev in evals.items()}
    table = pd.DataFrame(
        [[metrics[m][d].get(primary[d], math.nan) for d in evals] for m in named],
        index=pd.Index(list(named), name="model"),
        columns=pd.Index(list(evals), name="data"),
        dtype=float,
    )
    table.attrs = {"metrics": metrics, "primary": primary}
    return table


def long_metrics(table: pd.DataFrame) -> pd.DataFrame:
    """Every number behind a :func:`compare` table, one row each.

    Args:
        table: what :func:`compare` returned (its ``attrs`` hold the metrics).

    Returns:
        Columns ``model``, ``data``, ``metric`` (the key without the data set's prefix, e.g.
        ``spearman_cosine``), ``key`` (the evaluator's full key), ``value`` and ``primary`` (whether
        it is the data set's primary metric).

    Raises:
        ValueError: the table has no ``attrs["metrics"]`` (it was not made by ``compare``, or was
            reshaped since).
    """
    import pandas as pd

    metrics, primary = table.attrs.get("metrics"), table.attrs.get("primary", {})
    if metrics is None:
        raise ValueError("this table has no attrs['metrics']: pass the DataFrame that compare() returned")
    rows = [
        {
            "model": model,
            "data": data,
            "metric": key[len(data) + 1 :] if data and key.startswith(f"{data}_") else key,
            "key": key,
            "value": value,
            "primary": key == primary.get(data),
        }
        for model, by_data in metrics.items()
        for data, values in by_data.items()
        for key, value in values.items()
    ]
    return pd.DataFrame(rows, columns=["model", "data", "metric", "key", "value", "primary"])


def metric_table(table: pd.DataFrame, metric: str | None = None) -> pd.DataFrame:
    """A :func:`compare` table for another metric: ``pearson_cosine``, ``spearman_dot``...

    Args:
        table: what :func:`compare` returned.
        metric: a metric name without the data set's prefix; ``None`` gives the primary metrics
            (the table itself).

    Returns:
        Models × data sets, ``nan`` where a data set has no such metric (an evaluator of
        another kind); ``attrs`` kept, ``attrs["shown"]`` says the metric.

    Raises:
        ValueError: no data set has the metric (the message lists those there are).

    Example:
        >>> import pandas as pd
        >>> t = pd.DataFrame([[0.8]], index=pd.Index(["m"], name="model"), columns=pd.Index(["d"], name="data"))
        >>> t.attrs = {"metrics": {"m": {"d": {"d_spearman_cosine": 0.8, "d_pearson_cosine": 0.75}}},
        ...            "primary": {"d": "d_spearman_cosine"}}
        >>> float(metric_table(t, "pearson_cosine").loc["m", "d"])
        0.75
    """
    out = table.copy()
    out.attrs = dict(table.attrs)
    if metric is None:
        out.attrs["shown"] = None
        return out
    metrics = table.attrs.get("metrics")
    if metrics is None:
        raise ValueError("this table has no attrs['metrics']: pass the DataFrame that compare() returned")
    found = False
    for model in out.index:
        for data in out.columns:
            value = metrics.get(model, {}).get(data, {}).get(_prefixed(str(data), metric))
            found = found or value is not None
            out.loc[model, data] = math.nan if value is None else value
    if not found:
        names = list(dict.fromkeys(long_metrics(table)["metric"]))
        raise ValueError(f"no data set has the metric {metric!r}; the metrics are {', '.join(names)}")
    out.attrs["shown"] = metric
    return out


def format_comparison(table: pd.DataFrame) -> str:
    """A :func:`compare` table as plain text: models down, data sets across, 4 decimals.

    The corner names the metric when every data set has the same one (``spearman_cosine``);
    otherwise each column header says its own.

    Example:
        >>> import pandas as pd
        >>> t = pd.DataFrame([[0.81, 0.7]], index=["m"], columns=["a", "b"])
        >>> t.attrs["primary"] = {"a": "a_spearman_cosine", "b": "b_spearman_cosine"}
        >>> print(format_comparison(t))
        spearman_cosine       a       b
        m                0.8100  0.7000
    """
    primary = table.attrs.get("primary", {})
    short = {d: (primary.get(d, "")[len(str(d)) + 1 :] if primary.get(d, "").startswith(f"{d}_") else primary.get(d, ""))
             for d in table.columns}
    same = len(set(short.values())) == 1
    corner = (next(iter(short.values())) if same else "model") or "model"
    header = [corner] + [str(d) if same or not short[d] else f"{d} ({short[d]})" for d in table.columns]
    body = [[str(m)] + [metric(None if math.isnan(v) else float(v)) for v in row]
            for m, row in zip(table.index, table.to_numpy(), strict=True)]
    return _table(header, body, numeric_from=1)


class _TextCache:
    """An encoder that encodes each distinct text once (for :func:`compare`), float32 rows."""

    def __init__(self, encoder: Any, batch_size: int) -> None:
        self.encode_fn = as_encode_fn(encoder, batch_size=batch_size)
        self.vectors: dict[str, np.ndarray] = {}

    def add(self, texts: Sequence[str]) -> None:
        missing = [t for t in dict.fromkeys(texts) if t not in self.vectors]
        if missing:
            emb = encode_with_progress(self.encode_fn, missing, desc="encoding")  # (len(missing), dim)
            self.vectors.update(zip(missing, emb, strict=True))

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        self.add(texts)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self.vectors[t] for t in texts])  # (len(texts), dim)


def _named_models(models: Sequence[Any] | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(models, Mapping):
        named = {str(k): v for k, v in models.items()}
    else:
        if isinstance(models, (str, os.PathLike)) or not isinstance(models, Sequence):
            models = [models]
        named = {}
        for model in models:
            label = model_label(model)
            if label in named:
                raise ValueError(f"two models are called {label!r}; pass a dict {{name: model}} to name them")
            named[label] = model
    if not named:
        raise ValueError("compare needs at least one model")
    return named


def _named_evaluators(evaluators: Any) -> dict[str, Any]:
    if callable(evaluators) and hasattr(evaluators, "primary_metric"):
        evaluators = [evaluators]
    named: dict[str, Any] = {}
    for ev in evaluators:
        if not hasattr(ev, "primary_metric") or not callable(ev):
            raise TypeError(f"not an evaluator (no primary_metric, or not callable): {ev!r:.80}")
        label = getattr(ev, "name", None) or ev.primary_metric
        if label in named:
            raise ValueError(f"two evaluators are named {label!r}; give them different names (name=...)")
        named[label] = ev
    if not named:
        raise ValueError("compare needs at least one evaluator")
    return named


def model_label(model: Any) -> str:
    """A row name for a model: a name or path as given, a loaded model's folder name, else its type.

    Example:
        >>> model_label("all-MiniLM-L6-v2"), model_label(len)
        ('all-MiniLM-L6-v2', 'len')
    """
    if isinstance(model, (str, os.PathLike)):
        return str(model)
    where = getattr(model, "source", None)  # a workbench model remembers its folder
    if isinstance(where, (str, os.PathLike)) and str(where).strip("/\\"):
        return str(where).rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]
    return getattr(model, "__name__", None) or type(model).__name__


def _load(model: Any, device: str | None) -> Any:
    if isinstance(model, (str, os.PathLike)):
        from workbench.models import load_model

        return load_model(str(model), device=device)
    return model


# --------------------------------------------------------------------------- helpers


def _prefixed(name: str, key: str) -> str:
    # As sentence-transformers: an empty name adds no prefix (and no leading underscore).
    return f"{name}_{key}" if name else key


def _canonical_fns(fns: Iterable[Any]) -> tuple[str, ...]:
    if isinstance(fns, str):  # a lone name, not its characters
        fns = (fns,)
    names = tuple(dict.fromkeys(canonical_fn_name(fn) for fn in fns))
    if not names:
        raise ValueError("need at least one similarity function")
    return names


def _check_sentences(sentences: Sequence[str], label: str) -> list[str]:
    texts = list(sentences)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"{label}[{i}] is a {type(text).__name__}, expected str: {text!r}")
    return texts


def _check_scores(scores: Any, label: str) -> np.ndarray:
    """Validate gold scores one by one, so the error can point at the first bad one."""
    values = scores.tolist() if hasattr(scores, "tolist") else list(scores)  # numpy/torch/pandas
    for i, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"{label}[{i}] = {value!r} is not a finite number")
    return np.asarray(values, dtype=np.float64)


def _check_gold(gold: np.ndarray) -> None:
    if len(gold) < 2:
        raise ValueError(f"correlation needs at least 2 scored pairs, got {len(gold)}")
    if np.all(gold == gold[0]):
        raise ValueError(f"all {len(gold)} gold scores equal {gold[0]}: correlation is undefined")


def _correlations(gold: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    # Constant predictions (to float64 rounding: cos(x, x) is 1 ± 2e-16) have no correlation;
    # scipy would either warn and return nan or correlate the rounding noise. Decide it here.
    if np.ptp(predicted) <= _CONSTANT_RTOL * np.abs(predicted).max():
        return math.nan, math.nan
    return float(pearsonr(gold, predicted).statistic), float(spearmanr(gold, predicted).statistic)


def _nanmax(values: Iterable[float]) -> float:
    defined = [v for v in values if not math.isnan(v)]
    return max(defined) if defined else math.nan


def _unique_index(*columns: list[str]) -> tuple[list[str], list[np.ndarray]]:
    """Distinct texts in first-seen order, and each column as indices into them."""
    texts = list(dict.fromkeys(t for column in columns for t in column))
    position = {t: i for i, t in enumerate(texts)}
    return texts, [
        np.fromiter((position[t] for t in column), dtype=np.int64, count=len(column)) for column in columns
    ]


def _as_float64(x: Any, label: str) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().double().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{label} must have shape (n, dim), got shape {arr.shape}")
    # A NaN row would make every correlation NaN and silently lose every triplet comparison.
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(
            f"{label} holds non-finite values (NaN or inf) in {len(rows)} of {len(arr)} rows, first row {rows[0]}; "
            "the encoder produced them (a diverged model, or fp16 overflow): no metric is computed on them"
        )
    return arr


def _table(header: list[str], body: list[list[str]], numeric_from: int) -> str:
    """Columns padded to width; text columns left-aligned, numeric ones right-aligned."""
    widths = [max(len(r[c]) for r in [header, *body]) for c in range(len(header))]

    def line(cells: list[str]) -> str:
        parts = [
            cell.rjust(w) if c >= numeric_from else cell.ljust(w)
            for c, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return "\n".join(line(r) for r in [header, *body])
