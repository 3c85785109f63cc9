"""Clusters on a map of embeddings, and names for them from their own words.

Two pure steps, so a view can re-run either one:

* :func:`find_clusters` finds dense groups of points with HDBSCAN (scikit-learn's), on the 2-D
  layout the user looks at (or on any coordinates). Points in no dense group get the label
  ``-1`` ("noise"). Above :data:`CLUSTER_SAMPLE` points HDBSCAN runs on a seeded sample and every
  other point takes the label of its nearest sampled point (scikit-learn's HDBSCAN on 100,000 2-D
  points took 68 s here; on 20,000, 2.8 s);
* :func:`name_clusters` names each cluster by the words that set it apart: class-based TF-IDF as
  BERTopic defines it (the texts of a cluster counted as one document; a word's weight is its
  frequency in the cluster, normalised by the cluster's word count, times
  ``log(1 + mean words per cluster / the word's count over all clusters)``), English stop words
  left out.

:func:`cluster_map` runs both and returns a :class:`Clusters`: labels, names, sizes, centres on
the layout and example texts (the points nearest each centre).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> xy = np.concatenate([rng.normal(0, 0.3, (40, 2)), rng.normal(5, 0.3, (40, 2))])
    >>> texts = ["a dog runs in the park"] * 40 + ["stock markets fell today"] * 40
    >>> c = cluster_map(texts, xy, min_cluster_size=10)
    >>> sorted(c.names.values())
    ['dog · park · runs', 'fell · markets · stock']
    >>> c.sizes
    {0: 40, 1: 40}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

NOISE = -1

# HDBSCAN runs on at most this many points; the others take their nearest sampled point's label.
CLUSTER_SAMPLE = 20_000

# Default smallest cluster: this share of the points (at least MIN_CLUSTER_SIZE).
CLUSTER_SHARE = 0.01
MIN_CLUSTER_SIZE = 5


@dataclass(frozen=True)
class Clusters:
    """Clusters of a map: one label per point (``-1``: in no cluster) and what each cluster is.

    Attributes:
        labels: ``(n,)`` int array, clusters numbered ``0..`` largest first, ``-1`` for noise.
        names: ``{cluster: "word · word · word"}``, unique.
        words: ``{cluster: [its most distinctive words, best first]}``.
        sizes: ``{cluster: points}``, largest first.
        centres: ``{cluster: (x, y)}``, the median point of the cluster on the layout.
        examples: ``{cluster: [point indices nearest its centre]}``.
        noise: points in no cluster.
    """

    labels: np.ndarray
    names: dict[int, str]
    words: dict[int, list[str]] = field(default_factory=dict)
    sizes: dict[int, int] = field(default_factory=dict)
    centres: dict[int, tuple[float, float]] = field(default_factory=dict)
    examples: dict[int, list[int]] = field(default_factory=dict)
    noise: int = 0

    def __len__(self) -> int:
        return len(self.names)

    def label_column(self, noise: str = "(no cluster)") -> list[str]:
        """Each point's cluster name (``noise`` for points in none), e.g. to colour a map by."""
        names = {**self.names, NOISE: noise}
        return [names[int(c)] for c in self.labels]

    def rows(self, texts: Sequence[str], examples: int = 2) -> list[list[Any]]:
        """Table rows ``[cluster, name, size, example texts]``, largest cluster first."""
        return [
            [c, self.names[c], self.sizes[c], " | ".join(texts[i] for i in self.examples[c][:examples])]
            for c in self.sizes
        ]


def find_clusters(
    coords: Any,
    min_cluster_size: int | None = None,
    min_samples: int | None = None,
    *,
    max_points: int = CLUSTER_SAMPLE,
    seed: int = 0,
) -> np.ndarray:
    """HDBSCAN clusters of the rows of ``coords`` (a 2-D layout, or any vectors).

    Args:
        coords: ``(n, d)`` coordinates; every value finite.
        min_cluster_size: the smallest group called a cluster; by default 1% of the points (at
            least 5). With sampling it is scaled to the sample.
        min_samples: HDBSCAN's ``min_samples`` (how conservative: more calls more points noise);
            by default ``min(10, min_cluster_size)``.
        max_points: cluster a seeded sample of this many points when there are more, and give each
            other point the label of its nearest sampled point.
        seed: the sample's seed.

    Returns:
        ``(n,)`` int64 labels, clusters numbered from 0 by size (largest first), ``-1`` for noise.
    """
    from sklearn.cluster import HDBSCAN

    x = np.asarray(coords, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"coords must have shape (n, d), got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("coords hold NaN or infinite values")
    n = x.shape[0]
    if min_cluster_size is None:
        min_cluster_size = max(MIN_CLUSTER_SIZE, round(CLUSTER_SHARE * n))
    if min_cluster_size < 2:
        raise ValueError(f"min_cluster_size must be at least 2, got {min_cluster_size}")
    if n < max(min_cluster_size, 3):
        return np.full(n, NOISE, dtype=np.int64)
    sample = np.arange(n)
    if n > max_points:
        sample = np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False))
        min_cluster_size = max(2, round(min_cluster_size * max_points / n))
    if min_samples is None:
        min_samples = min(10, min_cluster_size)
    fitted = HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples, copy=True).fit(x[sample])
    labels = fitted.labels_.astype(np.int64)
    if len(sample) < n:
        from scipy.spatial import cKDTree

        _, nearest = cKDTree(x[sample]).query(x, k=1)
        labels = labels[nearest]
    return _by_size(labels)


def _by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters 0.. largest first (ties: by first appearance); noise stays -1."""
    out = np.full_like(labels, NOISE)
    found = labels[labels != NOISE]
    if found.size == 0:
        return out
    values, first, counts = np.unique(found, return_index=True, return_counts=True)
    order = sorted(range(len(values)), key=lambda i: (-counts[i], first[i]))
    for new, i in enumerate(order):
        out[labels == values[i]] = new
    return out


def cluster_words(
    texts: Sequence[str], labels: Any, top: int = 3, stop_words: str | list[str] | None = "english"
) -> dict[int, list[str]]:
    """Each cluster's most distinctive words by class-based TF-IDF (noise points are left out).

    Args:
        texts: one text per point.
        labels: one cluster per point (``-1``: none).
        top: words per cluster.
        stop_words: scikit-learn's ``"english"`` list, a list of your own, or ``None``.

    Returns:
        ``{cluster: words}``, best first; a cluster whose texts hold no countable word gets ``[]``.
    """
    from sklearn.feature_extraction.text import CountVectorizer

    labels = np.asarray(labels)
    if len(texts) != len(labels):
        raise ValueError(f"{len(labels)} labels for {len(texts)} texts")
    clusters = [int(c) for c in np.unique(labels) if c != NOISE]
    if not clusters:
        return {}
    docs = [" ".join(texts[i] for i in np.flatnonzero(labels == c)) for c in clusters]
    try:
        vectorizer = CountVectorizer(stop_words=stop_words, token_pattern=r"(?u)\b[^\W\d_]{2,}\b")
        counts = vectorizer.fit_transform(docs).astype(np.float64)  # (clusters, vocabulary)
    except ValueError:  # nothing but stop words and numbers
        return {c: [] for c in clusters}
    vocabulary = vectorizer.get_feature_names_out()
    words_per_cluster = np.asarray(counts.sum(axis=1)).ravel()  # (clusters,)
    tf = counts.multiply(1.0 / np.clip(words_per_cluster, 1.0, None)[:, None]).tocsr()
    total = np.asarray(counts.sum(axis=0)).ravel()  # each word's count over all clusters
    idf = np.log(1.0 + words_per_cluster.mean() / np.clip(total, 1.0, None))
    weights = tf.multiply(idf[None, :]).toarray()  # (clusters, vocabulary)
    out = {}
    for row, c in enumerate(clusters):
        order = np.argsort(-weights[row], kind="stable")[:top]
        out[c] = [str(vocabulary[j]) for j in order if weights[row, j] > 0]
    return out


def name_clusters(
    texts: Sequence[str],
    coords: Any,
    labels: Any,
    *,
    top_words: int = 3,
    examples: int = 3,
    stop_words: str | list[str] | None = "english",
) -> Clusters:
    """Name, size, centre and example texts of each cluster in ``labels`` (see :func:`cluster_words`)."""
    labels = np.asarray(labels, dtype=np.int64)
    xy = np.asarray(coords, dtype=np.float64)
    if len(texts) != len(labels) or xy.shape[0] != len(labels):
        raise ValueError(
            f"{len(texts)} texts, {xy.shape[0]} points and {len(labels)} labels: they must match"
        )
    spare = cluster_words(texts, labels, top_words + 4, stop_words)  # more words for clashing names
    words = {c: w[:top_words] for c, w in spare.items()}
    clusters = [int(c) for c in np.unique(labels) if c != NOISE]
    sizes = {c: int((labels == c).sum()) for c in clusters}
    sizes = dict(sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0])))
    names: dict[int, str] = {}
    used: set[str] = set()
    for c in sizes:
        own = spare.get(c, [])
        name = " · ".join(own[:top_words]) or f"cluster {c}"
        extra = top_words
        while name in used and extra < len(own):  # a smaller cluster with the same words: one more word
            name = f"{name} · {own[extra]}"
            extra += 1
        if name in used:
            name = f"{name} (another, {sizes[c]} points)"
        used.add(name)
        names[c] = name
    centres, nearest = {}, {}
    for c in sizes:
        idx = np.flatnonzero(labels == c)
        centre = np.median(xy[idx, :2], axis=0)
        centres[c] = (float(centre[0]), float(centre[1]))
        order = np.argsort(((xy[idx, :2] - centre) ** 2).sum(axis=1), kind="stable")[:examples]
        nearest[c] = [int(i) for i in idx[order]]
    return Clusters(labels, names, words, sizes, centres, nearest, noise=int((labels == NOISE).sum()))


def cluster_map(
    texts: Sequence[str],
    coords: Any,
    min_cluster_size: int | None = None,
    min_samples: int | None = None,
    **kwargs: Any,
) -> Clusters:
    """:func:`find_clusters` on ``coords``, then :func:`name_clusters` (``kwargs`` go to it)."""
    labels = find_clusters(coords, min_cluster_size, min_samples)
    return name_clusters(texts, coords, labels, **kwargs)
