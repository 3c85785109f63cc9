"""Projection core: PCA vs sklearn, exact kNN vs brute force, UMAP on the precomputed graph."""

from __future__ import annotations

import os
import sys
import threading
import warnings

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.decomposition import PCA

from workbench import projection
from workbench.projection import MIN_UMAP_POINTS, Projection, knn_graph, pca, umap, warm_up_umap


def clusters(n_per: int = 40, k: int = 3, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``k`` well separated Gaussian clusters: (points, cluster id)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, dim)) * 10
    labels = np.repeat(np.arange(k), n_per)
    return (centers[labels] + rng.normal(size=(k * n_per, dim))).astype(np.float32), labels


# ----- PCA -------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(200, 20), (12, 40)])  # n > d, and n < d (the other Gram matrix)
def test_pca_matches_sklearn_up_to_sign(shape):
    x = np.random.default_rng(1).normal(size=shape) * np.linspace(3, 0.5, shape[1])
    ours = pca(x, dim=3)
    ref = PCA(n_components=3).fit_transform(x)
    assert ours.shape == (shape[0], 3) and ours.dtype == np.float32
    for c in range(3):
        sign = np.sign(ours[:, c] @ ref[:, c])
        np.testing.assert_allclose(ours[:, c], sign * ref[:, c], atol=1e-4 * np.abs(ref).max())


def test_pca_sign_is_deterministic_and_rank_deficient_dims_are_zero():
    x = np.random.default_rng(2).normal(size=(50, 8))
    np.testing.assert_array_equal(pca(x, 2), pca(x.copy(), 2))
    line = np.outer(np.arange(6.0), [1.0, 2.0, 0.5])  # rank 1 after centring
    out = pca(line, dim=3)
    assert np.ptp(out[:, 0]) > 0 and np.all(out[:, 1:] == 0)
    assert np.all(pca(np.ones((4, 3)), 2) == 0)


# ----- kNN graph -------------------------------------------------------------------------------
@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_knn_graph_equals_brute_force(metric):
    x = np.random.default_rng(3).normal(size=(150, 12))
    idx, dist = knn_graph(x, k=9, metric=metric, chunk_size=32)  # several blocks
    full = cdist(x, x, metric=metric)  # (n, n)
    np.fill_diagonal(full, -1.0)  # self first, as umap wants
    ref_idx = np.argsort(full, axis=1, kind="stable")[:, :9]
    ref_dist = np.take_along_axis(full, ref_idx, axis=1)
    ref_dist[:, 0] = 0.0
    assert idx.dtype == np.int64 and dist.dtype == np.float32 and idx.shape == (150, 9)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(dist, ref_dist, atol=1e-5)
    assert np.all(idx[:, 0] == np.arange(150)) and np.all(dist[:, 0] == 0)
    assert np.all(np.diff(dist, axis=1) >= 0)


def test_knn_graph_puts_self_first_among_duplicates_and_clamps_k():
    x = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    idx, dist = knn_graph(x, k=3)
    assert idx[:, 0].tolist() == [0, 1, 2, 3]
    assert np.all(dist[:3, :3] == 0) and sorted(idx[0].tolist()) == [0, 1, 2]
    with pytest.warns(UserWarning, match="k=10 is more than the 4 points"):
        idx, _ = knn_graph(x, k=10)
    assert idx.shape == (4, 4)
    with pytest.raises(ValueError, match="metric"):
        knn_graph(x, 2, metric="manhattan")


# ----- UMAP ------------------------------------------------------------------------------------
def test_umap_shape_determinism_and_structure():
    x, labels = clusters()
    a = umap(x, dim=2, n_neighbors=10, seed=0)
    b = umap(x, dim=2, n_neighbors=10, seed=0)
    assert a.shape == (120, 2) and a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    # The layout keeps the clusters: each point's 5 nearest in 2-D are from its own cluster.
    near, _ = knn_graph(a, 6, metric="euclidean")
    assert (labels[near[:, 1:]] == labels[:, None]).mean() > 0.95
    assert umap(x, dim=3, n_neighbors=10, seed=0).shape == (120, 3)


def test_umap_uses_and_slices_a_precomputed_graph_without_modifying_it(monkeypatch):
    x, _ = clusters(n_per=20)
    knn = knn_graph(x, 30)
    before = (knn[0].copy(), knn[1].copy())
    monkeypatch.setattr(projection, "knn_graph", lambda *a, **k: pytest.fail("graph recomputed"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # umap-learn warns when it ignores a precomputed graph
        out = umap(x, n_neighbors=8, knn=knn, seed=0)
    assert out.shape == (60, 2)
    np.testing.assert_array_equal(knn[0], before[0])
    np.testing.assert_array_equal(knn[1], before[1])
    with pytest.raises(ValueError, match="needs more"):
        umap(x, n_neighbors=8, knn=(knn[0][:, :5], knn[1][:, :5]))


def test_umap_with_fewer_points_than_neighbours_clamps_and_warns():
    x, _ = clusters(n_per=3, k=3)  # 9 points
    with pytest.warns(UserWarning, match="n_neighbors=15 needs more than 9 points; using 8"):
        out = umap(x, n_neighbors=15, seed=0)
    assert out.shape == (9, 2) and np.isfinite(out).all()
    tiny = x[: MIN_UMAP_POINTS - 1]
    with pytest.warns(UserWarning, match="too few for UMAP"):
        out = umap(tiny, seed=0)
    np.testing.assert_array_equal(out, pca(tiny, 2))


def test_projection_computes_the_graph_once_and_lists_true_neighbours():
    x, _ = clusters(n_per=25)
    p = Projection(x, max_neighbors=20)
    first = p.umap(n_neighbors=10, min_dist=0.1, seed=0)
    graph = p.knn()
    second = p.umap(n_neighbors=10, min_dist=0.8, seed=0)
    third = p.umap(n_neighbors=5, min_dist=0.8, seed=0, init=second, n_epochs=50)
    assert p.knn_computations == 1 and p.knn() is graph
    assert not np.allclose(first, second) and third.shape == (75, 2)
    sims = 1 - cdist(x, x, "cosine")
    np.fill_diagonal(sims, -np.inf)
    idx, scores = p.neighbors(7, k=6)
    np.testing.assert_array_equal(idx, np.argsort(-sims[7])[:6])
    np.testing.assert_allclose(scores, np.sort(sims[7])[::-1][:6], atol=1e-5)
    p.knn(40)  # more neighbours than computed: computed again, once
    assert p.knn_computations == 2 and p.knn()[0].shape[1] == 40
    np.testing.assert_array_equal(p.pca(2), pca(x, 2))


def test_warm_up_runs_once_and_in_background():
    thread = warm_up_umap(background=True)
    assert isinstance(thread, threading.Thread)
    thread.join(timeout=120)
    assert not thread.is_alive() and projection._warmed_up
    assert warm_up_umap() is None  # a no-op now


@pytest.mark.skipif(not hasattr(os, "getpriority") or sys.platform == "win32", reason="per-thread nice: Linux/macOS")
def test_the_background_warm_up_yields_the_cpu_and_leaves_the_callers_priority(monkeypatch):
    import numba

    seen = {}

    def record():
        seen["nice"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        seen["numba_threads"] = numba.get_num_threads()

    monkeypatch.setattr(projection, "_warmed_up", False)
    monkeypatch.setattr(projection, "_warm_up", record)
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    thread = warm_up_umap(background=True)
    thread.join(timeout=60)
    assert seen == {"nice": 19, "numba_threads": 1}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine  # only the warm-up thread yields
    assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS  # and only its numba threads are one


# ----- large corpora: the approximate graph, PCA initialisation, the numba cache ----------------
@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_approximate_graph_finds_nearly_the_exact_neighbours(metric):
    x, _ = clusters(n_per=500, k=4, dim=24)
    x[7] = x[8] = x[9]  # duplicates: each point still comes first in its own row
    exact = knn_graph(x, 15, metric, method="exact")
    approx = knn_graph(x, 15, metric, method="approximate")
    assert approx[0].shape == (2000, 15) and approx[0].dtype == np.int64 and approx[1].dtype == np.float32
    assert (approx[0][:, 0] == np.arange(2000)).all() and (approx[1][:, 0] == 0).all()
    assert all(len(set(row)) == 15 for row in approx[0])
    recall = np.mean([len(set(a) & set(e)) / 15 for a, e in zip(approx[0], exact[0], strict=True)])
    assert recall > 0.95, recall
    # Distances are the metric's own (checked against scipy on the neighbours found).
    ref = cdist(x[:50], x, metric="cosine" if metric == "cosine" else "euclidean")
    found = np.take_along_axis(ref, approx[0][:50], axis=1)
    np.testing.assert_allclose(approx[1][:50, 1:], found[:, 1:], atol=1e-5)  # recomputed in float32
    assert (np.diff(approx[1], axis=1) >= -1e-5).all()  # nearest first


def test_auto_graph_is_exact_up_to_the_threshold_and_reports_progress(monkeypatch):
    x, _ = clusters(n_per=100)
    seen = []
    knn_graph(x, 5, chunk_size=64, on_progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (300, 300) and len(seen) == 5
    monkeypatch.setattr(projection, "APPROXIMATE_ABOVE", 100)
    p = Projection(x, max_neighbors=10)
    assert p.approximate
    calls = []
    monkeypatch.setattr(projection, "approximate_knn_graph", lambda *a, **k: calls.append(a[1]) or knn_graph(a[0], a[1], method="exact"))
    p.knn()
    assert calls == [10]


def test_large_layouts_start_from_pca(monkeypatch):
    x, labels = clusters(n_per=60)
    seen = {}
    import umap as umap_module

    real = umap_module.UMAP

    class Spy(real):
        def __init__(self, *args, **kwargs):
            seen["init"] = kwargs["init"]
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(umap_module, "UMAP", Spy)
    umap(x, seed=0)
    assert seen["init"] == "spectral"
    monkeypatch.setattr(projection, "SPECTRAL_MAX", 100)
    out = umap(x, seed=0)
    np.testing.assert_allclose(seen["init"], pca(x, 2))
    assert out.shape == (180, 2)


def test_umaps_uncached_numba_functions_get_numbas_disk_cache():
    import importlib

    from numba.core.caching import NullCache

    projection.import_umap()
    for module_name, names in projection._UNCACHED_UMAP_FUNCTIONS.items():
        module = importlib.import_module(module_name)
        for name in names:
            fn = getattr(module, name)
            assert not isinstance(fn._cache, NullCache), f"{module_name}.{name} has no disk cache"


def test_projection_refuses_nan_rows_by_number():
    x = np.zeros((10, 4))
    x[[2, 6], 1] = [np.nan, np.inf]
    with pytest.raises(ValueError, match=r"2 row\(s\) hold NaN or infinite values \(rows 2, 6\)"):
        Projection(x)
