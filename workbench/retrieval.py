"""Retrieval evaluation: rank a corpus for each query and score the ranking against relevant documents.

:class:`InformationRetrievalEvaluator` takes queries (id -> text), a corpus (id -> text) and the
relevant documents of each query (id -> set of corpus ids), encodes them with any encoder and
reports, for each similarity function, the metrics sentence-transformers'
``InformationRetrievalEvaluator`` reports, under the same keys
(``<name>_cosine_accuracy@1``, ``..._precision@k``, ``..._recall@k``, ``..._ndcg@10``,
``..._mrr@10``, ``..._map@100``). The math is a pure function on a boolean hit matrix,
:func:`retrieval_metrics`; the ranking is :func:`rank_top_k`, which keeps a running top-k while
the corpus is encoded and scored a chunk at a time, so memory stays near one chunk's scores.

:func:`caption_retrieval` builds a ready task from Multi30k captions: one caption of each image
asks, the image's other captions are the relevant documents, every other caption is a distractor.

Definitions (per query, averaged over the queries that have relevant documents; ``rel`` is the
query's relevant set, ``hit@r`` whether the document ranked ``r`` (from 1) is in it):

* ``accuracy@k``: 1 if any of the first ``k`` is relevant, else 0.
* ``precision@k``: hits in the first ``k`` / ``k`` (``k``, even when the corpus is smaller).
* ``recall@k``: hits in the first ``k`` / ``|rel|``.
* ``mrr@k``: 1 / the rank of the first hit within the first ``k``, 0 without one.
* ``ndcg@k``: ``Σ_{r≤k} hit@r / log2(r+1)`` over its best value, ``Σ_{r≤min(k,|rel|)} 1 / log2(r+1)``
  (binary relevance).
* ``map@k``: ``Σ_{r≤k} hit@r · (hits in the first r) / r``, over ``min(k, |rel|)``.

Ranking order: by score, highest first; exactly equal scores by ascending corpus id (the order
sentence-transformers uses, so ties cannot make the two disagree). Scores are computed in float64.
Queries without relevant documents are left out, as sentence-transformers does; a relevant id
that is not in the corpus is an error here (sentence-transformers would count it as never found).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from datasets import Dataset

from workbench.data.catalog import _CAPTION_FILES, PathLike, _caption_columns
from workbench.data.files import read_records
from workbench.data.sample import sample_file
from workbench.data.sources import resolve, source
from workbench.encoding import as_encode_fn, encode_with_progress
from workbench.evaluation import _canonical_fns, _prefixed
from workbench.similarity import similarity_matrix

# sentence-transformers' defaults for the k of each metric.
MRR_AT_K: tuple[int, ...] = (10,)
NDCG_AT_K: tuple[int, ...] = (10,)
ACCURACY_AT_K: tuple[int, ...] = (1, 3, 5, 10)
PRECISION_RECALL_AT_K: tuple[int, ...] = (1, 3, 5, 10)
MAP_AT_K: tuple[int, ...] = (100,)

# At most this many scores (queries × corpus rows) are held at once: 4M, 32 MB in float64.
_BLOCK_ELEMENTS = 1 << 22


# --------------------------------------------------------------------------- pure functions


def retrieval_metrics(
    hits: Any,
    n_relevant: Sequence[int] | np.ndarray,
    *,
    accuracy_at_k: Iterable[int] = ACCURACY_AT_K,
    precision_recall_at_k: Iterable[int] = PRECISION_RECALL_AT_K,
    mrr_at_k: Iterable[int] = MRR_AT_K,
    ndcg_at_k: Iterable[int] = NDCG_AT_K,
    map_at_k: Iterable[int] = MAP_AT_K,
) -> dict[str, float]:
    """Ranking metrics from which ranked documents are relevant (see the module docstring).

    Args:
        hits: booleans of shape ``(q, K)``: ``hits[i, r]`` says whether the document ranked
            ``r + 1`` for query ``i`` is relevant. ``K`` is the largest ``k`` asked for, or
            fewer when the corpus is smaller.
        n_relevant: each query's number of relevant documents, ``q`` values of at least 1.
        accuracy_at_k: the ``k`` of ``accuracy@k``.
        precision_recall_at_k: the ``k`` of ``precision@k`` and ``recall@k``.
        mrr_at_k: the ``k`` of ``mrr@k``.
        ndcg_at_k: the ``k`` of ``ndcg@k``.
        map_at_k: the ``k`` of ``map@k``.

    Returns:
        ``{"accuracy@1": ..., ..., "precision@1": ..., "recall@1": ..., "ndcg@10": ...,
        "mrr@10": ..., "map@100": ...}``, in sentence-transformers' order.

    Raises:
        ValueError: no queries, a shape mismatch, a query with no relevant document, more hits
            than relevant documents, or a ``k`` that is not a positive integer.

    Example:
        >>> hits = np.array([[False, True, False], [True, False, True]])   # ranks of 2 queries
        >>> m = retrieval_metrics(hits, [1, 2], accuracy_at_k=[1], precision_recall_at_k=[2],
        ...                       mrr_at_k=[3], ndcg_at_k=[3], map_at_k=[3])
        >>> {k: round(v, 4) for k, v in m.items()}  # doctest: +NORMALIZE_WHITESPACE
        {'accuracy@1': 0.5, 'precision@2': 0.5, 'recall@2': 0.75, 'ndcg@3': 0.7753,
         'mrr@3': 0.75, 'map@3': 0.6667}
    """
    h = np.asarray(hits, dtype=bool)
    if h.ndim != 2 or h.shape[0] == 0:
        raise ValueError(f"hits must have shape (queries, ranks) with at least one query, got shape {h.shape}")
    n_rel = np.asarray(n_relevant, dtype=np.int64)
    if n_rel.shape != (h.shape[0],):
        raise ValueError(f"got {h.shape[0]} queries in hits but {n_rel.size} relevant counts")
    if (n_rel < 1).any():
        raise ValueError(f"query {int(np.flatnonzero(n_rel < 1)[0])} has no relevant document")
    found = h.sum(axis=1)
    if (found > n_rel).any():
        i = int(np.flatnonzero(found > n_rel)[0])
        raise ValueError(f"query {i} has {int(found[i])} hits but only {int(n_rel[i])} relevant documents")
    ks = {label: _check_ks(v, label) for label, v in (
        ("accuracy_at_k", accuracy_at_k), ("precision_recall_at_k", precision_recall_at_k),
        ("mrr_at_k", mrr_at_k), ("ndcg_at_k", ndcg_at_k), ("map_at_k", map_at_k))}  # fmt: skip
    ranks = np.arange(1, h.shape[1] + 1, dtype=np.float64)  # (K,)
    discount = 1.0 / np.log2(ranks + 1.0)  # (K,)
    cum_hits = np.cumsum(h, axis=1)  # (q, K): hits among the first r
    max_k = max(max(v) for v in ks.values())
    # Ideal DCG needs discounts past K when a query has more relevant documents than the corpus shows.
    ideal = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, max_k + 2, dtype=np.float64)))])

    metrics: dict[str, float] = {}
    for k in ks["accuracy_at_k"]:
        metrics[f"accuracy@{k}"] = float(h[:, :k].any(axis=1).mean())
    precision, recall = {}, {}
    for k in ks["precision_recall_at_k"]:
        n_hits = h[:, :k].sum(axis=1)
        precision[f"precision@{k}"] = float(np.mean(n_hits / k))
        recall[f"recall@{k}"] = float(np.mean(n_hits / n_rel))
    metrics.update(precision)
    metrics.update(recall)
    for k in ks["ndcg_at_k"]:
        dcg = (h[:, :k] * discount[:k]).sum(axis=1)  # (q,)
        metrics[f"ndcg@{k}"] = float(np.mean(dcg / ideal[np.minimum(n_rel, k)]))
    for k in ks["mrr_at_k"]:
        top = h[:, :k]
        first = top.argmax(axis=1)  # the first hit's column (0 when there is none: masked below)
        metrics[f"mrr@{k}"] = float(np.mean(np.where(top.any(axis=1), 1.0 / (first + 1.0), 0.0)))
    for k in ks["map_at_k"]:
        precision_at_hits = (h[:, :k] * cum_hits[:, :k] / ranks[:k]).sum(axis=1)  # (q,)
        metrics[f"map@{k}"] = float(np.mean(precision_at_hits / np.minimum(n_rel, k)))
    return metrics


def rank_top_k(scores: Any, k: int, tie_rank: Any) -> np.ndarray:
    """Column indices of each row's ``k`` highest scores, best first, equal scores by ``tie_rank``.

    Args:
        scores: finite scores of shape ``(n, m)``.
        k: how many per row (at most ``m`` are returned).
        tie_rank: integers of shape ``(m,)`` or ``(n, m)``; among exactly equal scores the
            lower ``tie_rank`` comes first (distinct values give one total order).

    Returns:
        int64 indices of shape ``(n, min(k, m))``.

    Example:
        >>> rank_top_k(np.array([[0.2, 0.9, 0.2, 0.5]]), 3, tie_rank=np.array([3, 0, 1, 2])).tolist()
        [[1, 3, 2]]
    """
    s = np.asarray(scores, dtype=np.float64)
    n, m = s.shape
    tie = np.broadcast_to(np.asarray(tie_rank), s.shape)
    k = min(k, m)
    if k == 0:
        return np.empty((n, 0), dtype=np.int64)
    if k < m:
        # argpartition finds the k best per row, but arbitrarily among scores equal to the k-th:
        # those rows (rare with real embeddings) are redone with the tie order.
        top = np.argpartition(-s, k - 1, axis=1)[:, :k]  # (n, k), unordered
        cut = np.take_along_axis(s, top, axis=1).min(axis=1)  # (n,) the k-th best score
        for i in np.flatnonzero((s >= cut[:, None]).sum(axis=1) > k):
            candidates = np.flatnonzero(s[i] >= cut[i])
            top[i] = candidates[np.lexsort((tie[i, candidates], -s[i, candidates]))[:k]]
    else:
        top = np.broadcast_to(np.arange(m), (n, m))
    order = np.lexsort((np.take_along_axis(tie, top, axis=1), -np.take_along_axis(s, top, axis=1)), axis=1)
    return np.take_along_axis(top, order, axis=1).astype(np.int64)


# --------------------------------------------------------------------------- the evaluator


class InformationRetrievalEvaluator:
    """Retrieval metrics of a corpus ranked by embedding similarity for each query.

    Queries are encoded once; the corpus is encoded ``corpus_chunk_size`` texts at a time, each
    chunk scored against the queries and merged into a running top-k, so neither all corpus
    embeddings nor a full queries × corpus score matrix are ever held (score blocks hold at
    most 4M numbers). Queries without relevant documents are skipped, as sentence-transformers
    does.

    Args:
        queries: query id -> query text.
        corpus: document id -> document text.
        relevant_docs: query id -> the ids of its relevant documents (a set, list or tuple).
        name: key prefix, e.g. ``"caption-retrieval-test"``; ``""`` for none.
        batch_size: passed to the encoder's ``encode``.
        fns: similarity functions to rank with (``"cosine"``, ``"dot"``, ...); sentence-transformers
            uses the model's own (cosine for most models, all-MiniLM-L6-v2 included).
        mrr_at_k, ndcg_at_k, accuracy_at_k, precision_recall_at_k, map_at_k: the ``k`` of each
            metric; the defaults are sentence-transformers'.
        corpus_chunk_size: corpus texts encoded and scored at once.

    Attributes:
        primary_metric: ``f"{name}_cosine_ndcg@{max(ndcg_at_k)}"`` (the first function's when cosine
            is not evaluated), as sentence-transformers' default.
        query_ids: the ids of the queries evaluated (those with relevant documents), in order.
        corpus_ids: the corpus ids, in order.

    Raises:
        ValueError: no queries or documents, an empty text, ids that are not all strings or all
            integers, a relevant id that is not in the corpus, a ``relevant_docs`` key that is not
            a query, no query with a relevant document, a bad ``k`` or an unknown function.
        TypeError: a text is not a string.

    Example:
        >>> ev = InformationRetrievalEvaluator(
        ...     queries={"q1": "a cat", "q2": "a car"},
        ...     corpus={"d1": "the cat", "d2": "the car", "d3": "the sea"},
        ...     relevant_docs={"q1": {"d1"}, "q2": {"d2"}}, name="toy")
        >>> vocabulary = ("cat", "car", "sea")
        >>> encoder = lambda texts: np.array([[w in t for w in vocabulary] for t in texts], dtype=float)
        >>> results = ev(encoder)
        >>> ev.primary_metric, results[ev.primary_metric], results["toy_cosine_precision@3"]
        ('toy_cosine_ndcg@10', 1.0, 0.3333333333333333)
    """

    def __init__(
        self,
        queries: Mapping[Any, str],
        corpus: Mapping[Any, str],
        relevant_docs: Mapping[Any, Iterable[Any]],
        name: str = "",
        batch_size: int = 32,
        fns: Iterable[Any] = ("cosine",),
        mrr_at_k: Iterable[int] = MRR_AT_K,
        ndcg_at_k: Iterable[int] = NDCG_AT_K,
        accuracy_at_k: Iterable[int] = ACCURACY_AT_K,
        precision_recall_at_k: Iterable[int] = PRECISION_RECALL_AT_K,
        map_at_k: Iterable[int] = MAP_AT_K,
        corpus_chunk_size: int = 50_000,
    ) -> None:
        _check_texts(queries, "queries")
        _check_texts(corpus, "corpus")
        _check_ids(list(queries), "queries")
        self.corpus_ids = _check_ids(list(corpus), "corpus")
        self.corpus = [corpus[c] for c in self.corpus_ids]
        position = {c: i for i, c in enumerate(self.corpus_ids)}
        relevant: dict[Any, frozenset[int]] = {}
        for qid, docs in relevant_docs.items():
            if qid not in queries:
                raise ValueError(f"relevant_docs has query id {qid!r}, which is not in queries")
            if isinstance(docs, (str, bytes)) or not isinstance(docs, Iterable):
                raise ValueError(f"relevant_docs[{qid!r}] must be a set of corpus ids, got {docs!r}")
            docs = list(docs)
            missing = [d for d in docs if d not in position]
            if missing:
                raise ValueError(f"relevant_docs[{qid!r}] names {missing[0]!r}, which is not in the corpus"
                                 + (f" (and {len(missing) - 1} more ids that are not)" if len(missing) > 1 else ""))
            relevant[qid] = frozenset(position[d] for d in docs)
        # As sentence-transformers: a query without relevant documents is not evaluated.
        self.query_ids = [q for q in queries if relevant.get(q)]
        if not self.query_ids:
            raise ValueError(f"none of the {len(queries)} queries has a relevant document in relevant_docs")
        self.queries = [queries[q] for q in self.query_ids]
        self._relevant = [relevant[q] for q in self.query_ids]  # corpus positions
        self.ks = {label: _check_ks(v, label) for label, v in (
            ("accuracy_at_k", accuracy_at_k), ("precision_recall_at_k", precision_recall_at_k),
            ("mrr_at_k", mrr_at_k), ("ndcg_at_k", ndcg_at_k), ("map_at_k", map_at_k))}  # fmt: skip
        if not isinstance(corpus_chunk_size, int) or isinstance(corpus_chunk_size, bool) or corpus_chunk_size < 1:
            raise ValueError(f"corpus_chunk_size must be a positive integer, got {corpus_chunk_size!r}")
        self.name, self.batch_size, self.corpus_chunk_size = name, batch_size, corpus_chunk_size
        self.fns = _canonical_fns(fns)
        main = "cosine" if "cosine" in self.fns else self.fns[0]
        self.primary_metric = _prefixed(name, f"{main}_ndcg@{max(self.ks['ndcg_at_k'])}")
        # Each corpus entry's place in ascending id order: the tie order among equal scores.
        order = sorted(range(len(self.corpus_ids)), key=self.corpus_ids.__getitem__)
        self._tie_rank = np.empty(len(order), dtype=np.int64)
        self._tie_rank[order] = np.arange(len(order))

    def __call__(self, encoder: Any) -> dict[str, float]:
        """Encode queries and corpus with ``encoder``, rank the corpus for each query and score it.

        Args:
            encoder: a model with ``.encode`` or a function ``texts -> array``.

        Returns:
            ``{f"{name}_{fn}_accuracy@1": ..., ..., f"{name}_{fn}_map@100": ...}`` for each function.
        """
        ranked = self.rank(encoder)
        n_rel = np.array([len(r) for r in self._relevant], dtype=np.int64)
        metrics: dict[str, float] = {}
        n_docs = len(self.corpus)
        # Each (query, relevant document) as one integer key q * n_docs + d, to look hits up at once.
        relevant_keys = np.array(sorted(q * n_docs + d for q, rel in enumerate(self._relevant) for d in rel))
        for fn, top in ranked.items():
            keys = np.arange(len(top))[:, None] * n_docs + top  # (q, K)
            hits = np.isin(keys, relevant_keys)
            for key, value in retrieval_metrics(hits, n_rel, **self.ks).items():
                metrics[_prefixed(self.name, f"{fn}_{key}")] = value
        return metrics

    def rank(self, encoder: Any) -> dict[str, np.ndarray]:
        """The best ``max(k)`` corpus positions for each query, best first, for each function.

        Args:
            encoder: a model with ``.encode`` or a function ``texts -> array``.

        Returns:
            ``{fn: int64 array of shape (queries, min(max k, corpus size))}``; positions index
            :attr:`corpus_ids`, rows follow :attr:`query_ids`.
        """
        encode = as_encode_fn(encoder, batch_size=self.batch_size)
        max_k = max(max(v) for v in self.ks.values())
        q_emb = _finite(encode_with_progress(encode, self.queries, desc=f"{self.name or 'retrieval'}: queries"),
                        "query")  # (q, dim)
        n_q = len(self.queries)
        best = {fn: (np.empty((n_q, 0)), np.empty((n_q, 0), dtype=np.int64)) for fn in self.fns}
        for start in range(0, len(self.corpus), self.corpus_chunk_size):
            texts = self.corpus[start:start + self.corpus_chunk_size]
            c_emb = _finite(encode_with_progress(encode, texts, desc=f"{self.name or 'retrieval'}: corpus"),
                            "corpus", start)  # (c, dim)
            if c_emb.shape[1] != q_emb.shape[1]:
                raise ValueError(f"the encoder gave {q_emb.shape[1]}-dim queries but {c_emb.shape[1]}-dim documents")
            rows = max(1, _BLOCK_ELEMENTS // len(texts))  # queries per score block
            for fn in self.fns:
                kept_s, kept_i = best[fn]
                new_s, new_i = [], []
                for qs in range(0, n_q, rows):
                    block = similarity_matrix(q_emb[qs:qs + rows], c_emb, fn)  # (rows, c) float64
                    top = rank_top_k(block, max_k, self._tie_rank[start:start + len(texts)])
                    # Merge with what earlier chunks kept: at most 2·max_k candidates per query.
                    cand_s = np.concatenate([kept_s[qs:qs + rows], np.take_along_axis(block, top, axis=1)], axis=1)
                    cand_i = np.concatenate([kept_i[qs:qs + rows], top + start], axis=1)
                    keep = rank_top_k(cand_s, max_k, self._tie_rank[cand_i])
                    new_s.append(np.take_along_axis(cand_s, keep, axis=1))
                    new_i.append(np.take_along_axis(cand_i, keep, axis=1))
                best[fn] = (np.concatenate(new_s), np.concatenate(new_i))
        return {fn: idx for fn, (_, idx) in best.items()}

    def __repr__(self) -> str:
        return (f"InformationRetrievalEvaluator(name={self.name!r}, queries={len(self.queries)}, "
                f"corpus={len(self.corpus)}, fns={self.fns})")


# --------------------------------------------------------------------------- a ready task


@dataclass(frozen=True)
class RetrievalTask:
    """The data of a retrieval task, as :class:`InformationRetrievalEvaluator` takes it.

    Example:
        >>> task = RetrievalTask({"q": "a cat"}, {"d": "the cat"}, {"q": frozenset({"d"})}, "toy")
        >>> task.evaluator(name="toy").primary_metric
        'toy_cosine_ndcg@10'
    """

    queries: dict[str, str]                  # query id -> text
    corpus: dict[str, str]                   # document id -> text
    relevant_docs: dict[str, frozenset[str]]  # query id -> relevant document ids
    source: str                              # where the data came from, for the record

    def evaluator(self, **kwargs: Any) -> InformationRetrievalEvaluator:
        """The evaluator of this task; ``kwargs`` go to :class:`InformationRetrievalEvaluator`."""
        return InformationRetrievalEvaluator(self.queries, self.corpus, self.relevant_docs, **kwargs)


def caption_retrieval_task(
    split: str = "test", path: PathLike | None = None, *, query_caption: int | None = None,
    limit: int | None = None,
) -> RetrievalTask:
    """Multi30k caption retrieval: find an image's other captions among all captions of the split.

    For each image (a row of ``captions-<split>.tsv``), one caption is the query and the image's
    other captions are its relevant documents; the corpus is every caption that is not a query,
    so the others' captions are distractors (4 relevant among 3,828 documents for test_2016's
    957 images). Which caption asks is fixed, not random: with ``query_caption=None`` the image
    in row ``i`` (from 0, file order) asks with its caption ``i mod n`` (from 0, column order,
    ``n`` its non-empty captions), so each caption column asks for a fifth of the images;
    an integer ``c`` makes caption ``c mod n`` ask for every image. Empty captions are dropped,
    and images left with fewer than 2 captions are not used.

    Ids: a query is its image name (``1007129816.jpg``); a document is the image name, ``#`` and
    its caption column number from 1 (``1007129816.jpg#2``). Equal scores rank by this id.

    Args:
        split: ``"test"`` (``"test_2016"``), ``"val"`` (``"dev"``) or ``"train"``.
        path: a captions TSV, or a folder laid out like ``shared/data``; by default the
            ``WORKBENCH_DATA`` folder, else the built-in sample (with a warning).
        query_caption: the caption that asks (see above); ``None`` rotates.
        limit: use only the first this many images of the file.

    Returns:
        The task; ``task.evaluator(name=...)`` builds the evaluator.

    Raises:
        ValueError: an unknown split, ``limit < 1``, or an image name that occurs twice.
        DataError: the file is missing or malformed.
    """
    split = {"dev": "val", "validation": "val", "test_2016": "test"}.get(split, split)
    if split not in _CAPTION_FILES:
        raise ValueError(f"unknown caption split {split!r}; choose from {', '.join(_CAPTION_FILES)}")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")

    def read(file: Any) -> Dataset:
        records = read_records(file, ["image"])
        columns = _caption_columns(records)
        n = len(records) if limit is None else min(limit, len(records))
        images = [str(records.data["image"][i]) for i in range(n)]
        captions = [[records.data[c][i] for c in columns] for i in range(n)]
        return Dataset.from_dict({"image": images, "captions": captions})

    ds = resolve(
        f"caption retrieval {split}", "images", [f"multi30k-captions/captions-{_CAPTION_FILES[split]}.tsv"], path,
        read=lambda files: read(files[0]), hub=None,
        sample=lambda: (read(sample_file("captions")), [sample_file("captions")]),
        real="Multi30k captions",
    )  # fmt: skip
    queries: dict[str, str] = {}
    corpus: dict[str, str] = {}
    relevant: dict[str, frozenset[str]] = {}
    for row, (image, caps) in enumerate(zip(ds["image"], ds["captions"], strict=True)):
        if image in queries:
            raise ValueError(f"{source(ds).location}: image {image!r} occurs twice")
        kept = [(col, t) for col, t in enumerate(caps, start=1) if isinstance(t, str) and t.strip()]
        if len(kept) < 2:
            continue
        ask = (row if query_caption is None else query_caption) % len(kept)
        docs = []
        for j, (col, text) in enumerate(kept):
            if j == ask:
                queries[image] = text
            else:
                corpus[f"{image}#{col}"] = text
                docs.append(f"{image}#{col}")
        relevant[image] = frozenset(docs)
    return RetrievalTask(queries, corpus, relevant, str(source(ds)))


def caption_retrieval(
    split: str = "test", path: PathLike | None = None, *, query_caption: int | None = None,
    limit: int | None = None, name: str | None = None, **kwargs: Any,
) -> InformationRetrievalEvaluator:
    """The Multi30k caption-retrieval evaluator (the task of :func:`caption_retrieval_task`).

    Args:
        split: ``"test"`` (``"test_2016"``), ``"val"`` or ``"train"``.
        path: a captions TSV or a ``shared/data``-like folder (default: ``WORKBENCH_DATA``).
        query_caption: which caption asks; ``None`` rotates (see :func:`caption_retrieval_task`).
        limit: the first this many images only.
        name: the key prefix; default ``f"caption-retrieval-{split}"``.
        **kwargs: passed to :class:`InformationRetrievalEvaluator` (``fns``, ``batch_size``, ...).

    Returns:
        The evaluator; its primary metric is ``caption-retrieval-test_cosine_ndcg@10``.

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")   # the built-in sample, when no data is set up
        ...     ev = caption_retrieval("test", limit=5)
        >>> ev.primary_metric
        'caption-retrieval-test_cosine_ndcg@10'
    """
    task = caption_retrieval_task(split, path, query_caption=query_caption, limit=limit)
    split = {"dev": "val", "validation": "val", "test_2016": "test"}.get(split, split)
    return task.evaluator(name=f"caption-retrieval-{split}" if name is None else name, **kwargs)


# --------------------------------------------------------------------------- helpers


def _check_texts(texts: Mapping[Any, str], label: str) -> None:
    if not isinstance(texts, Mapping):
        raise TypeError(f"{label} must be a mapping id -> text, got {type(texts).__name__}")
    if not texts:
        raise ValueError(f"{label} is empty")
    for key, text in texts.items():
        if not isinstance(text, str):
            raise TypeError(f"{label}[{key!r}] is a {type(text).__name__}, expected str: {text!r}")
        if not text.strip():
            raise ValueError(f"{label}[{key!r}] is an empty text")


def _check_ids(ids: list[Any], label: str) -> list[Any]:
    # Ties are broken by ascending id, so the ids must compare with each other.
    if not (all(isinstance(i, str) for i in ids)
            or all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in ids)):
        kinds = sorted({type(i).__name__ for i in ids})
        raise ValueError(f"{label} ids must be all strings or all integers, got {', '.join(kinds)}")
    return ids


def _check_ks(ks: Iterable[int], label: str) -> tuple[int, ...]:
    values = (ks,) if isinstance(ks, int) else tuple(ks)
    for k in values:
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise ValueError(f"{label} must hold positive integers, got {k!r}")
    if not values:
        raise ValueError(f"{label} is empty")
    return tuple(dict.fromkeys(int(k) for k in values))


def _finite(emb: np.ndarray, what: str, offset: int = 0) -> np.ndarray:
    arr = np.asarray(emb, dtype=np.float64)
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise ValueError(f"the encoder gave a non-finite {what} embedding (NaN or inf), first at {what} "
                         f"{int(np.flatnonzero(bad)[0]) + offset}; a ranking needs finite embeddings")
    return arr
