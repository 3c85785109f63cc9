"""Projecting embeddings to 2-D or 3-D: PCA, an exact kNN graph, and UMAP on top of that graph.

The pieces are split so an interactive view stays live:

* :func:`pca` is exact (an SVD of the centred matrix) and takes well under a second for
  5,000 × 384, so a preview can be shown at once;
* :func:`knn_graph` is the expensive, parameter-free part of UMAP: an exact k-nearest-neighbour
  graph computed with blockwise matmuls. It is returned in the format umap-learn accepts as
  ``UMAP(precomputed_knn=(indices, distances))``: each row starts with the point itself at
  distance 0, and ``k`` counts that point, as umap's ``n_neighbors`` does;
* :func:`umap` lays the graph out; only this runs again when ``min_dist`` changes, and a graph
  computed for the largest ``n_neighbors`` is sliced for smaller ones;
* :class:`Projection` holds one embedding matrix and caches the graph and the PCA views.

Fewer points than neighbours: ``knn_graph`` clamps ``k`` to ``n`` and :func:`umap` clamps
``n_neighbors`` to ``n - 1`` (umap-learn needs more points than neighbours), each with a
warning. UMAP needs at least :data:`MIN_UMAP_POINTS` points; with fewer, :func:`umap` warns and
returns the PCA projection instead.

umap-learn is imported lazily (it takes seconds, and compiles with numba on first use): call
:func:`warm_up_umap` early, e.g. in a background thread, so the first real layout is fast.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from typing import Any

import numpy as np
import torch

KNN_METRICS: tuple[str, ...] = ("cosine", "euclidean")

# Below this many points spectral initialisation and the neighbour graph degenerate.
MIN_UMAP_POINTS = 4

# Scores per block in knn_graph (4M: 16 MB in float32).
_BLOCK_ELEMENTS = 1 << 22

Knn = tuple[np.ndarray, np.ndarray]


def pca(emb: Any, dim: int = 2) -> np.ndarray:
    """Project rows onto their first ``dim`` principal components.

    Args:
        emb: embeddings of shape ``(n, d)`` (numpy array or torch tensor).
        dim: output dimensions. Components beyond the data's rank come out as zeros.

    Returns:
        A float32 array of shape ``(n, dim)``. Each component's sign is fixed so that its
        largest-magnitude loading is positive (deterministic, unlike a raw SVD).

    Example:
        >>> x = np.array([[0.0, 0.0], [2.0, 0.1], [4.0, 0.0]])
        >>> pca(x, dim=1).round(2).ravel().tolist()
        [-2.0, 0.0, 2.0]
    """
    if dim < 1:
        raise ValueError(f"dim must be at least 1, got {dim}")
    x = _as_matrix(emb).double().numpy()  # (n, d): float64 so the Gram matrix keeps small variances
    n, d = x.shape
    out = np.zeros((n, dim), dtype=np.float32)
    if n == 0:
        return out
    x = x - x.mean(axis=0, keepdims=True)
    with _one_blas_thread():
        # Eigenvectors of the smaller Gram matrix instead of a full SVD: (d, d) when n >= d,
        # else (n, n). numpy's LAPACK, not torch's: torch's CPU eigh is slow to start (~1 s).
        if n >= d:
            evals, evecs = np.linalg.eigh(x.T @ x)  # ascending; evecs: (d, d) columns = components
            comps = evecs[:, ::-1].T  # (d, d), largest variance first
        else:
            evals, evecs = np.linalg.eigh(x @ x.T)  # (n, n): left singular vectors
            u = evecs[:, ::-1]
            comps = (x.T @ u).T / np.sqrt(np.clip(evals[::-1], 1e-300, None))[:, None]  # (n, d)
        evals = evals[::-1]
        keep = min(dim, int((evals > max(evals[0], 0.0) * 1e-12).sum()) if evals[0] > 0 else 0)
        if keep == 0:
            return out
        comps = comps[:keep]  # (keep, d)
        flip = np.sign(comps[np.arange(keep), np.abs(comps).argmax(axis=1)])  # (keep,)
        out[:, :keep] = x @ (comps * flip[:, None]).T
    return out


def _one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """Run numpy's BLAS/LAPACK on one thread for a moment.

    A (384, 384) eigendecomposition is too small to gain from threads, and OpenBLAS threads
    spin when the cores are busy: on a loaded 2-core machine, PCA of 5,000 × 384 took 2.5 s
    with two BLAS threads and 0.04 s with one. (threadpoolctl comes with scikit-learn, a
    dependency of umap-learn.)
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def knn_graph(emb: Any, k: int, metric: str = "cosine", *, chunk_size: int | None = None) -> Knn:
    """Exact k-nearest-neighbour graph, in umap-learn's ``precomputed_knn`` format.

    Args:
        emb: embeddings of shape ``(n, d)``.
        k: neighbours per point, *counting the point itself* (as umap's ``n_neighbors``).
            Clamped to ``n`` with a warning when larger.
        metric: ``"cosine"`` (distance ``1 − cos``, as umap and scipy define it) or
            ``"euclidean"``.
        chunk_size: rows scored per block; the default keeps a block near 4M scores. Only
            memory and speed depend on it.

    Returns:
        ``(indices, distances)``: int64 and float32 arrays of shape ``(n, k)``, nearest first.
        Column 0 is the point itself at distance 0, also when another point is identical.

    Example:
        >>> idx, dist = knn_graph(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1]]), k=2)
        >>> idx.tolist(), dist.astype(float).round(3).tolist()
        ([[0, 2], [1, 2], [2, 0]], [[0.0, 0.005], [0.0, 0.9], [0.0, 0.005]])
    """
    if metric not in KNN_METRICS:
        raise ValueError(f"metric must be one of {KNN_METRICS}, got {metric!r}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    x = _as_matrix(emb)
    n = x.shape[0]
    if k > n:
        warnings.warn(f"knn_graph: k={k} is more than the {n} points; using k={n}", stacklevel=2)
        k = n
    # Euclidean scores use the expansion ‖a‖² + ‖b‖² − 2a·b, which cancels badly in float32.
    x = torch.nn.functional.normalize(x.float(), dim=1) if metric == "cosine" else x.double()
    sq = (x * x).sum(dim=1)  # (n,)
    rows = chunk_size or max(1, _BLOCK_ELEMENTS // max(n, 1))
    indices = np.empty((n, k), dtype=np.int64)
    distances = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, rows):
        block = x[start : start + rows]  # (b, d)
        b = block.shape[0]
        if metric == "cosine":
            score = block @ x.T  # (b, n): higher = nearer
        else:
            score = 2.0 * (block @ x.T) - sq[start : start + b, None] - sq[None, :]  # −‖a−b‖²
        own = torch.arange(b)
        score[own, own + start] = float("inf")  # the point itself always comes first
        top, idx = score.topk(k, dim=1)  # (b, k)
        if metric == "cosine":
            dist = (1.0 - top).clamp_min(0.0)
        else:
            dist = (-top).clamp_min(0.0).sqrt()
        dist[:, 0] = 0.0
        indices[start : start + b] = idx.numpy()
        distances[start : start + b] = dist.float().numpy()
    return indices, distances


def umap(
    emb: Any,
    dim: int = 2,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    knn: Knn | None = None,
    seed: int | None = None,
    metric: str = "cosine",
    n_epochs: int | None = None,
    init: str | np.ndarray = "spectral",
) -> np.ndarray:
    """UMAP layout of the rows of ``emb`` from an exact kNN graph.

    Args:
        emb: embeddings of shape ``(n, d)``.
        dim: output dimensions (2 or 3 for a view).
        n_neighbors: neighbourhood size, counting the point itself. Clamped to ``n − 1``
            with a warning.
        min_dist: how tightly points may pack in the layout (umap's ``min_dist``).
        knn: a graph from :func:`knn_graph` on the same ``emb`` and ``metric`` with at least
            ``n_neighbors`` columns (it is sliced); ``None`` computes one.
        seed: random seed; a fixed seed makes the layout reproducible (and umap-learn then runs
            single-threaded).
        metric: the metric of the graph (``"cosine"`` or ``"euclidean"``).
        n_epochs: optimisation epochs; ``None`` lets umap-learn choose (500 below 10,000 points,
            else 200). Nearly all of a layout's time is these epochs.
        init: ``"spectral"`` (umap's default), ``"random"``, or an ``(n, dim)`` starting layout,
            e.g. the previous one when only ``min_dist`` changed: fewer epochs then suffice and
            the picture does not jump.

    Returns:
        A float32 array of shape ``(n, dim)``. With fewer than :data:`MIN_UMAP_POINTS` points,
        the :func:`pca` projection (with a warning).

    Example:
        >>> x = np.random.default_rng(0).normal(size=(60, 8))
        >>> umap(x, n_neighbors=5, seed=0).shape
        (60, 2)
    """
    x = _as_matrix(emb).float().numpy()
    n = x.shape[0]
    if n < MIN_UMAP_POINTS:
        warnings.warn(f"umap: {n} points are too few for UMAP; showing the PCA projection", stacklevel=2)
        return pca(x, dim)
    if n_neighbors < 2:
        raise ValueError(f"n_neighbors must be at least 2, got {n_neighbors}")
    if n_neighbors > n - 1:
        warnings.warn(
            f"umap: n_neighbors={n_neighbors} needs more than {n} points; using {n - 1}", stacklevel=2
        )
        n_neighbors = n - 1
    if knn is None:
        knn = knn_graph(x, n_neighbors, metric)
    indices, distances = knn
    if indices.shape != distances.shape or indices.shape[0] != n:
        raise ValueError(f"knn arrays of shapes {indices.shape}/{distances.shape} do not fit {n} points")
    if indices.shape[1] < n_neighbors:
        raise ValueError(
            f"knn has {indices.shape[1]} neighbours per point; n_neighbors={n_neighbors} needs more"
        )
    # Copies: umap-learn writes into the arrays it is given (it marks far edges with -1).
    graph = (indices[:, :n_neighbors].copy(), distances[:, :n_neighbors].copy())
    from umap import UMAP

    reducer = UMAP(
        n_neighbors=n_neighbors,
        n_components=dim,
        min_dist=min_dist,
        metric=metric,
        random_state=seed,
        n_epochs=n_epochs,
        init=init,
        precomputed_knn=graph,
        n_jobs=1 if seed is not None else -1,
    )
    with warnings.catch_warnings():
        # Without a search index umap-learn only loses .transform(), which is not used here.
        warnings.filterwarnings("ignore", message=r".*knn_search_index.*")
        out = reducer.fit_transform(x)
    return np.asarray(out, dtype=np.float32)


_warm_up_lock = threading.Lock()
_warmed_up = False


def warm_up_umap(background: bool = False) -> threading.Thread | None:
    """Import umap-learn and compile its numba code on a tiny random input.

    The first UMAP layout in a fresh process spends most of its time importing and compiling
    (numba caches compiled code on disk, so later processes compile less); calling this early
    moves that cost off the first real view. It runs once per process; later calls return at
    once.

    In the background it yields to the notebook: the thread runs at the lowest CPU priority
    (``nice`` 19, Linux and macOS) with one numba thread, so the cells run meanwhile stay quick on
    a 2-core laptop. numba's worker threads are started from the calling thread first, so they
    keep the normal priority for the real layouts later.

    Args:
        background: run in a daemon thread and return at once (the kernel stays free).

    Returns:
        The thread when ``background`` (``.join()`` it to wait), else ``None``.

    Example:
        >>> thread = warm_up_umap(background=True)
        >>> thread.join()
        >>> warm_up_umap() is None  # already warm: returns at once
        True
    """
    if background:
        if not _warmed_up:
            _start_numba_workers()
        thread = threading.Thread(target=_warm_up_yielding, name="warm_up_umap", daemon=True)
        thread.start()
        return thread
    _warm_up()
    return None


def _start_numba_workers() -> None:
    """Start numba's thread pool from this thread (threads inherit their creator's priority)."""
    try:
        from numba.np.ufunc import parallel

        parallel._launch_threads()
    except Exception:  # noqa: BLE001 - a numba without this private hook: the warm-up still runs
        pass


def _yield_cpu() -> None:
    """Lower this thread's CPU priority (Linux/macOS ``nice`` is per thread) and its numba threads to one."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):  # Windows, or not allowed
        pass
    try:
        import numba

        numba.set_num_threads(1)  # thread-local in numba: the notebook's own layouts keep every core
    except Exception:  # noqa: BLE001
        pass


def _warm_up_yielding() -> None:
    _yield_cpu()
    _warm_up()


def _warm_up() -> None:
    global _warmed_up
    with _warm_up_lock:
        if _warmed_up:
            return
        x = np.random.default_rng(0).normal(size=(64, 8)).astype(np.float32)
        knn = knn_graph(x, 6)
        # umap-learn compiles a parallel layout loop (no seed) and a serial one (a seed): both.
        for seed in (None, 0):
            umap(x, n_neighbors=5, knn=knn, n_epochs=5, seed=seed)
        _warmed_up = True


class Projection:
    """One embedding matrix and its cached views: the kNN graph is computed once.

    A slider over ``min_dist`` then re-runs only UMAP's layout, and one over ``n_neighbors``
    slices the same graph. PCA views are cached per ``dim``.

    Args:
        emb: embeddings of shape ``(n, d)``.
        metric: kNN metric, ``"cosine"`` or ``"euclidean"``.
        max_neighbors: the graph is computed for this many neighbours (or more if asked),
            so smaller ``n_neighbors`` values reuse it.

    Attributes:
        knn_computations: how many times the kNN graph was computed (for tests and benchmarks).

    Example:
        >>> p = Projection(np.random.default_rng(0).normal(size=(50, 8)), max_neighbors=20)
        >>> p.umap(n_neighbors=10, seed=0).shape, p.umap(n_neighbors=5, min_dist=0.5, seed=0).shape
        ((50, 2), (50, 2))
        >>> p.knn_computations
        1
    """

    def __init__(self, emb: Any, metric: str = "cosine", max_neighbors: int = 50) -> None:
        if metric not in KNN_METRICS:
            raise ValueError(f"metric must be one of {KNN_METRICS}, got {metric!r}")
        self.emb = _as_matrix(emb).float().numpy()  # (n, d)
        self.metric = metric
        self.max_neighbors = max_neighbors
        self.knn_computations = 0
        self._knn: Knn | None = None
        self._pca: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()  # the graph may be asked for from a background thread

    @property
    def n(self) -> int:
        """Number of points."""
        return self.emb.shape[0]

    def knn(self, k: int | None = None) -> Knn:
        """The cached kNN graph with at least ``min(k, n)`` columns (see :func:`knn_graph`)."""
        want = min(max(k or 0, self.max_neighbors), self.n)
        with self._lock:
            if self._knn is None or self._knn[0].shape[1] < want:
                self._knn = knn_graph(self.emb, want, self.metric)
                self.knn_computations += 1
            return self._knn

    def pca(self, dim: int = 2) -> np.ndarray:
        """PCA view (cached per ``dim``)."""
        if dim not in self._pca:
            self._pca[dim] = pca(self.emb, dim)
        return self._pca[dim]

    def umap(
        self,
        dim: int = 2,
        n_neighbors: int = 15,
        min_dist: float = 0.1,
        seed: int | None = None,
        n_epochs: int | None = None,
        init: str | np.ndarray = "spectral",
    ) -> np.ndarray:
        """UMAP view on the cached graph (see :func:`umap` for the arguments)."""
        knn = self.knn(n_neighbors) if self.n >= MIN_UMAP_POINTS else None
        return umap(
            self.emb,
            dim,
            n_neighbors,
            min_dist,
            knn=knn,
            seed=seed,
            metric=self.metric,
            n_epochs=n_epochs,
            init=init,
        )

    def neighbors(self, i: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest other points of point ``i``, from the graph.

        Returns:
            ``(indices, similarities)`` nearest first; similarity is ``1 − distance`` for
            cosine (the cosine similarity) and ``−distance`` for euclidean.
        """
        idx, dist = self.knn(k + 1)
        row_i, row_d = idx[i, 1 : k + 1], dist[i, 1 : k + 1]
        sim = 1.0 - row_d if self.metric == "cosine" else -row_d
        return row_i.copy(), sim.astype(np.float32)


def _as_matrix(emb: Any) -> torch.Tensor:
    """A 2-D CPU tensor view of ``emb`` (numpy array, tensor or nested list)."""
    t = (
        emb.detach().cpu()
        if isinstance(emb, torch.Tensor)
        else torch.from_numpy(np.array(emb, dtype=np.float64))
    )
    if t.ndim != 2:
        raise ValueError(f"embeddings must have shape (n, dim), got shape {tuple(t.shape)}")
    return t
