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

Large corpora: above :data:`APPROXIMATE_ABOVE` points the graph is approximate (faiss's HNSW
index, or pynndescent when faiss is missing): its time grows about as ``n log n`` instead of
``n²``, and its memory, like the exact graph's, as ``n × k``. Above :data:`SPECTRAL_MAX` points
UMAP starts from the PCA view instead of its spectral initialisation (which alone took 50 s
of a 100,000-point layout here).

Fewer points than neighbours: ``knn_graph`` clamps ``k`` to ``n`` and :func:`umap` clamps
``n_neighbors`` to ``n - 1`` (umap-learn needs more points than neighbours), each with a
warning. UMAP needs at least :data:`MIN_UMAP_POINTS` points; with fewer, :func:`umap` warns and
returns the PCA projection instead.

umap-learn is imported lazily (it takes seconds, and compiles with numba on first use): call
:func:`warm_up_umap` early, e.g. in a background thread, so the first real layout is fast. Five
of umap-learn's numba functions are not marked for numba's on-disk cache, so every new process
compiled them again (≈ 10 s of the first 5,000-point layout here); :func:`import_umap` turns
that cache on for them, and a fresh kernel's first layout then takes about what a second one does.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

KNN_METRICS: tuple[str, ...] = ("cosine", "euclidean")

# Below this many points spectral initialisation and the neighbour graph degenerate.
MIN_UMAP_POINTS = 4

# Scores per block in knn_graph (4M: 16 MB in float32).
_BLOCK_ELEMENTS = 1 << 22

# Above this many points knn_graph(method="auto") is approximate (exact at 20,000 × 384: ≈ 5 s here).
APPROXIMATE_ABOVE = 20_000

# Above this many points umap(init="auto") starts from the PCA view, not a spectral layout.
SPECTRAL_MAX = 20_000

KNN_METHODS: tuple[str, ...] = ("auto", "exact", "approximate")

# umap-learn's numba functions compiled without cache=True (umap-learn 0.5.x); its tau_rand and
# tau_rand_int are compiled while umap is imported, before they could be cached (they are tiny).
_UNCACHED_UMAP_FUNCTIONS = {
    "umap.umap_": ("smooth_knn_dist", "compute_membership_strengths"),
    "umap.layouts": (
        "clip", "_nb_optimize_layout_euclidean_single_epoch", "_nb_optimize_layout_euclidean_single_epoch_parallel",
    ),
}  # fmt: skip

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


def knn_graph(
    emb: Any,
    k: int,
    metric: str = "cosine",
    *,
    chunk_size: int | None = None,
    method: str = "auto",
    on_progress: Callable[[int, int], None] | None = None,
) -> Knn:
    """k-nearest-neighbour graph, in umap-learn's ``precomputed_knn`` format.

    Args:
        emb: embeddings of shape ``(n, d)``.
        k: neighbours per point, *counting the point itself* (as umap's ``n_neighbors``).
            Clamped to ``n`` with a warning when larger.
        metric: ``"cosine"`` (distance ``1 − cos``, as umap and scipy define it) or
            ``"euclidean"``.
        chunk_size: rows scored per block; the default keeps a block near 4M scores. Only
            memory and speed depend on it.
        method: ``"exact"`` (blockwise matmuls: time grows as ``n²``), ``"approximate"``
            (:func:`approximate_knn_graph`), or ``"auto"``: exact up to
            :data:`APPROXIMATE_ABOVE` points, approximate above.
        on_progress: called as ``on_progress(rows_done, n)`` after each block of rows.

    Returns:
        ``(indices, distances)``: int64 and float32 arrays of shape ``(n, k)``, nearest first.
        Column 0 is the point itself at distance 0, also when another point is identical.
        Memory: these two arrays and one block of scores, never an ``n × n`` matrix.

    Example:
        >>> idx, dist = knn_graph(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1]]), k=2)
        >>> idx.tolist(), dist.astype(float).round(3).tolist()
        ([[0, 2], [1, 2], [2, 0]], [[0.0, 0.005], [0.0, 0.9], [0.0, 0.005]])
    """
    if metric not in KNN_METRICS:
        raise ValueError(f"metric must be one of {KNN_METRICS}, got {metric!r}")
    if method not in KNN_METHODS:
        raise ValueError(f"method must be one of {KNN_METHODS}, got {method!r}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    x = _as_matrix(emb)
    n = x.shape[0]
    if k > n:
        warnings.warn(f"knn_graph: k={k} is more than the {n} points; using k={n}", stacklevel=2)
        k = n
    if method == "approximate" or (method == "auto" and n > APPROXIMATE_ABOVE):
        return approximate_knn_graph(x.float().numpy(), k, metric, on_progress=on_progress)
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
        if on_progress is not None:
            on_progress(start + b, n)
    return indices, distances


def approximate_knn_graph(
    emb: Any, k: int, metric: str = "cosine", *, on_progress: Callable[[int, int], None] | None = None
) -> Knn:
    """An approximate k-nearest-neighbour graph for large corpora, in :func:`knn_graph`'s format.

    faiss's HNSW index over float16 copies of the vectors (``IndexHNSWSQ``, 16 links per node,
    ``efConstruction`` 40, ``efSearch`` ``max(48, k)``), built and searched a block of rows at a
    time, with the distances of the neighbours found recomputed in float32; without faiss,
    pynndescent (umap-learn's own choice; it compiles with numba on first use). On 100,000
    all-MiniLM-L6-v2 caption embeddings it found 97% of the exact 15 neighbours in 17 s here
    (float32 HNSW: the same recall in 19 s; on isotropic synthetic clusters, 85% in 23 s),
    where the exact graph takes about 25 times its 20,000-point time.

    Each row starts with the point itself at distance 0 (an index may miss a point's own entry
    when it has duplicates; it is put first here, as :func:`knn_graph` does).

    Args:
        emb: ``(n, d)`` embeddings.
        k: neighbours per point, counting the point itself (at most ``n``).
        metric: ``"cosine"`` or ``"euclidean"``.
        on_progress: ``on_progress(rows_done, n)``: the index is built over the first half of
            the work, searched over the second.

    Returns:
        ``(indices, distances)``: int64 and float32 arrays of shape ``(n, k)``, nearest first.
    """
    if metric not in KNN_METRICS:
        raise ValueError(f"metric must be one of {KNN_METRICS}, got {metric!r}")
    x = np.ascontiguousarray(_as_matrix(emb).float().numpy())
    n, d = x.shape
    k = min(k, n)
    if metric == "cosine":
        x = x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)
    try:
        import faiss
    except ImportError:
        found_idx, found_dist = _pynndescent_knn(x, k + 1, metric)
    else:
        found_idx, found_dist = _faiss_knn(faiss, x, k + 1, metric, on_progress)
    return _self_first(found_idx, found_dist, k)


def _faiss_knn(
    faiss: Any, x: np.ndarray, k: int, metric: str, on_progress: Callable[[int, int], None] | None
) -> Knn:
    n, d = x.shape
    k = min(k, n)
    # The graph walks on float16 copies of the vectors (half the memory traffic: 23 s instead of
    # 30 s at 100,000 × 384 here, same recall); the distances returned are recomputed in float32.
    kind = faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2
    index = faiss.IndexHNSWSQ(d, faiss.ScalarQuantizer.QT_fp16, 16, kind)
    index.hnsw.efConstruction = 40
    index.hnsw.efSearch = max(48, k)
    block = 10_000
    index.train(x[:block])  # float16 needs no statistics; faiss asks for the call
    for start in range(0, n, block):
        index.add(x[start : start + block])
        if on_progress is not None:
            on_progress(min(start + block, n) // 2, n)
    indices = np.empty((n, k), dtype=np.int64)
    distances = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, block):
        rows = x[start : start + block]
        _, idx = index.search(rows, k)
        dist = _rescore(x, rows, idx, metric)
        order = np.argsort(dist, axis=1, kind="stable")  # misses (-1) go last
        indices[start : start + block] = np.take_along_axis(idx, order, axis=1)
        distances[start : start + block] = np.take_along_axis(dist, order, axis=1)
        if on_progress is not None:
            on_progress((n + min(start + block, n)) // 2, n)
    return indices, distances


def _rescore(x: np.ndarray, rows: np.ndarray, idx: np.ndarray, metric: str, chunk: int = 2_000) -> np.ndarray:
    """float32 distances from ``rows`` to their found neighbours ``x[idx]`` (``inf`` where ``idx`` is -1)."""
    dist = np.empty(idx.shape, dtype=np.float32)
    for s in range(0, len(rows), chunk):
        part, found = rows[s : s + chunk], x[np.maximum(idx[s : s + chunk], 0)]  # (c, d), (c, k, d)
        if metric == "cosine":
            dist[s : s + chunk] = 1.0 - np.einsum("cd,ckd->ck", part, found)
        else:
            dist[s : s + chunk] = np.sqrt(((part[:, None, :] - found) ** 2).sum(axis=2))
    return np.where(idx >= 0, np.clip(dist, 0.0, None), np.inf)


def _pynndescent_knn(x: np.ndarray, k: int, metric: str) -> Knn:
    from pynndescent import NNDescent

    k = min(k, x.shape[0])
    index = NNDescent(x, n_neighbors=k, metric=metric, n_jobs=-1, compressed=True)
    idx, dist = index.neighbor_graph
    return idx.astype(np.int64), dist.astype(np.float32)


def _self_first(idx: np.ndarray, dist: np.ndarray, k: int) -> Knn:
    """Rows of ``k`` columns starting with the point itself at distance 0, then the others in order."""
    n = idx.shape[0]
    own = np.arange(n)[:, None]
    others = (idx != own) & (idx >= 0)  # faiss marks missing neighbours with -1
    # Stable sort keeps each row's order; the point's own entries and the misses go last.
    order = np.argsort(~others, axis=1, kind="stable")[:, : k - 1]
    rows = np.arange(n)[:, None]
    out_idx = np.concatenate([own, idx[rows, order]], axis=1)
    out_dist = np.concatenate([np.zeros((n, 1), np.float32), dist[rows, order]], axis=1)
    short = ~others[rows, order]  # fewer than k - 1 other neighbours found: repeat the last one found
    for r in np.flatnonzero(short.any(axis=1)):
        m = int((~short[r]).sum())  # the found ones come first
        out_idx[r, 1 + m :], out_dist[r, 1 + m :] = (out_idx[r, m], out_dist[r, m]) if m else (r, 0.0)
    return out_idx, np.clip(out_dist, 0.0, None).astype(np.float32)


def umap(
    emb: Any,
    dim: int = 2,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    knn: Knn | None = None,
    seed: int | None = None,
    metric: str = "cosine",
    n_epochs: int | None = None,
    init: str | np.ndarray = "auto",
) -> np.ndarray:
    """UMAP layout of the rows of ``emb`` from a kNN graph (exact up to :data:`APPROXIMATE_ABOVE` points).

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
        init: ``"spectral"`` (umap's default), ``"pca"`` (the :func:`pca` view), ``"random"``,
            ``"auto"`` (spectral up to :data:`SPECTRAL_MAX` points, PCA above), or an ``(n, dim)``
            starting layout, e.g. the previous one when only ``min_dist`` changed: fewer epochs
            then suffice and the picture does not jump.

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
    if isinstance(init, str) and init == "auto":
        init = "spectral" if n <= SPECTRAL_MAX else "pca"
    if isinstance(init, str) and init == "pca":
        init = pca(x, dim)  # umap-learn rescales a given layout to its own range
    UMAP = import_umap().UMAP

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
_import_lock = threading.Lock()


def import_umap() -> Any:
    """umap-learn, imported with numba's on-disk cache turned on for its uncached functions.

    umap-learn compiles five numba functions (the fuzzy graph and the layout epochs) without
    ``cache=True``, so each new process compiled them again: ≈ 10 s of the first 5,000-point
    layout in a fresh process here, where a second layout took 1.9 s. Turning numba's cache on
    for them (``Dispatcher.enable_caching``, before their first compilation) stores the machine
    code beside umap-learn's own cached functions (or in numba's user cache when that folder is
    read-only); a later process loads it. The functions themselves are umap-learn's, unchanged.
    """
    import importlib

    with _import_lock:
        import umap as umap_module

        for module_name, names in _UNCACHED_UMAP_FUNCTIONS.items():
            module = importlib.import_module(module_name)
            for name in names:
                fn = getattr(module, name, None)
                if fn is not None and hasattr(fn, "enable_caching") and not fn.signatures:
                    try:
                        fn.enable_caching()
                    except Exception:  # noqa: BLE001 - a numba that cannot cache it: compiled as before
                        pass
        return umap_module


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
        import_umap()
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

    def __init__(
        self, emb: Any, metric: str = "cosine", max_neighbors: int = 50, knn_method: str = "auto"
    ) -> None:
        if metric not in KNN_METRICS:
            raise ValueError(f"metric must be one of {KNN_METRICS}, got {metric!r}")
        if knn_method not in KNN_METHODS:
            raise ValueError(f"knn_method must be one of {KNN_METHODS}, got {knn_method!r}")
        self.emb = check_finite(_as_matrix(emb).float().numpy())  # (n, d)
        self.metric = metric
        self.knn_method = knn_method
        self.max_neighbors = max_neighbors
        self.knn_computations = 0
        self._knn: Knn | None = None
        self._pca: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()  # the graph may be asked for from a background thread

    @property
    def n(self) -> int:
        """Number of points."""
        return self.emb.shape[0]

    @property
    def approximate(self) -> bool:
        """Whether the graph is (or will be) approximate."""
        return self.knn_method == "approximate" or (self.knn_method == "auto" and self.n > APPROXIMATE_ABOVE)

    def has_knn(self, k: int | None = None) -> bool:
        """Whether the graph for ``k`` neighbours is computed already."""
        want = min(max(k or 0, self.max_neighbors), self.n)
        return self._knn is not None and self._knn[0].shape[1] >= want

    def knn(self, k: int | None = None, on_progress: Callable[[int, int], None] | None = None) -> Knn:
        """The cached kNN graph with at least ``min(k, n)`` columns (see :func:`knn_graph`)."""
        want = min(max(k or 0, self.max_neighbors), self.n)
        with self._lock:
            if self._knn is None or self._knn[0].shape[1] < want:
                self._knn = knn_graph(
                    self.emb, want, self.metric, method=self.knn_method, on_progress=on_progress
                )
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
        init: str | np.ndarray = "auto",
    ) -> np.ndarray:
        """UMAP view on the cached graph (see :func:`umap` for the arguments)."""
        if isinstance(init, str) and (init == "pca" or (init == "auto" and self.n > SPECTRAL_MAX)):
            init = self.pca(dim)  # the cached view
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


def check_finite(emb: np.ndarray, what: str = "embeddings") -> np.ndarray:
    """``emb`` itself when every value is finite; else a ValueError naming the first bad rows."""
    bad = ~np.isfinite(emb).all(axis=1) if emb.size else np.zeros(0, dtype=bool)
    if bad.any():
        rows = np.flatnonzero(bad)
        shown = ", ".join(str(r) for r in rows[:5]) + (", …" if len(rows) > 5 else "")
        raise ValueError(
            f"{what}: {len(rows)} row(s) hold NaN or infinite values (rows {shown}); drop or re-encode them"
        )
    return emb


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
