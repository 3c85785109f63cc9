"""workbench.similarity against scipy and numpy, on numpy and torch inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.distance import cdist

from workbench.similarity import (
    SIMILARITY_FUNCTIONS,
    canonical_fn_name,
    pairwise_similarity,
    paraphrase_pairs,
    similarity_matrix,
    top_k,
)


def _reference(a: np.ndarray, b: np.ndarray, fn: str) -> np.ndarray:
    """Independent float64 reference: scipy distances, numpy dot."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    return {
        "cosine": lambda: 1.0 - cdist(a, b, "cosine"),
        "dot": lambda: a @ b.T,
        "euclidean": lambda: -cdist(a, b, "euclidean"),
        "manhattan": lambda: -cdist(a, b, "cityblock"),
    }[fn]()


@pytest.fixture
def ab() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    # An offset and a scale so that dot and the distances see non-unit, non-centred vectors.
    a = (rng.standard_normal((37, 24)) * 3 + 1).astype(np.float32)
    b = (rng.standard_normal((29, 24)) * 3 + 1).astype(np.float32)
    return a, b


@pytest.mark.parametrize("fn", SIMILARITY_FUNCTIONS)
def test_matrix_matches_scipy_numpy(ab: tuple[np.ndarray, np.ndarray], fn: str) -> None:
    a, b = ab
    got = similarity_matrix(a, b, fn)
    assert isinstance(got, np.ndarray) and got.dtype == np.float32 and got.shape == (37, 29)
    expected = _reference(a, b, fn)
    scale = max(1.0, float(np.abs(expected).max()))  # dot and distances are O(100) here
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6 * scale)


@pytest.mark.parametrize("fn", SIMILARITY_FUNCTIONS)
def test_matrix_torch_in_torch_out(ab: tuple[np.ndarray, np.ndarray], fn: str) -> None:
    a, b = ab
    got = similarity_matrix(torch.from_numpy(a), torch.from_numpy(b), fn)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32
    expected = _reference(a, b, fn)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_matrix_mixed_and_float64_inputs(ab: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = ab
    mixed = similarity_matrix(a, torch.from_numpy(b))
    assert isinstance(mixed, torch.Tensor)
    as64 = similarity_matrix(a.astype(np.float64), b.astype(np.float64))
    assert as64.dtype == np.float64
    np.testing.assert_allclose(as64, _reference(a, b, "cosine"), rtol=0, atol=1e-12)


@pytest.mark.parametrize("fn", SIMILARITY_FUNCTIONS)
def test_self_matrix_and_pairwise_is_diagonal(ab: tuple[np.ndarray, np.ndarray], fn: str) -> None:
    a, b = ab
    np.testing.assert_allclose(similarity_matrix(a, fn=fn), _reference(a, a, fn), rtol=1e-6, atol=1e-5)
    n = min(len(a), len(b))
    pairs = pairwise_similarity(a[:n], b[:n], fn)
    assert pairs.shape == (n,) and pairs.dtype == np.float32
    np.testing.assert_allclose(pairs, np.diag(_reference(a[:n], b[:n], fn)), rtol=1e-6, atol=1e-5)
    pairs_t = pairwise_similarity(torch.from_numpy(a[:n]), torch.from_numpy(b[:n]), fn)
    np.testing.assert_allclose(pairs_t.numpy(), pairs, rtol=0, atol=1e-6)


@pytest.mark.parametrize("fn", SIMILARITY_FUNCTIONS)
def test_chunked_equals_direct(ab: tuple[np.ndarray, np.ndarray], fn: str) -> None:
    a, b = ab
    direct = similarity_matrix(a, b, fn, chunk_size=len(a))
    for rows in (1, 5, 36):
        np.testing.assert_allclose(similarity_matrix(a, b, fn, chunk_size=rows), direct, rtol=0, atol=1e-6)


def test_zero_vectors_give_no_nan() -> None:
    a = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]], dtype=np.float32)
    for fn in SIMILARITY_FUNCTIONS:
        assert np.isfinite(similarity_matrix(a, fn=fn)).all()
        assert np.isfinite(pairwise_similarity(a, a[::-1], fn)).all()
    cos = similarity_matrix(a)
    assert cos[0, 0] == 0.0 and cos[0, 1] == 0.0 and cos[1, 1] == pytest.approx(1.0)


def test_distances_are_negated_and_self_is_best() -> None:
    a = np.array([[0.0, 0.0], [3.0, 4.0]], dtype=np.float32)
    np.testing.assert_allclose(similarity_matrix(a, fn="euclidean"), [[0, -5], [-5, 0]], atol=1e-6)
    np.testing.assert_allclose(similarity_matrix(a, fn="manhattan"), [[0, -7], [-7, 0]], atol=1e-6)


def test_names_and_aliases() -> None:
    assert canonical_fn_name("COSINE") == "cosine"
    assert canonical_fn_name(" cos_sim ") == "cosine"
    assert canonical_fn_name("dot_product") == canonical_fn_name("Dot") == "dot"
    assert canonical_fn_name("SimilarityFunction.EUCLIDEAN") == "euclidean"
    from sentence_transformers import SimilarityFunction

    for member, name in [
        (SimilarityFunction.COSINE, "cosine"),
        (SimilarityFunction.DOT_PRODUCT, "dot"),
        (SimilarityFunction.MANHATTAN, "manhattan"),
    ]:
        assert canonical_fn_name(member) == name
    with pytest.raises(ValueError, match="'cosine', 'dot', 'euclidean', 'manhattan'"):
        canonical_fn_name("jaccard")
    with pytest.raises(ValueError, match="unknown similarity function"):
        similarity_matrix(np.ones((2, 2)), fn="maxsim")


def test_shape_errors_name_the_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(2, 5\)"):
        similarity_matrix(np.ones((3, 4)), np.ones((2, 5)))
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(2, 4\)"):
        pairwise_similarity(np.ones((3, 4)), np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"\(2, 2, 2\)"):
        similarity_matrix(np.ones((2, 2, 2)))
    with pytest.raises(TypeError, match="real numbers"):
        similarity_matrix(np.array([["a", "b"]]))


@pytest.mark.parametrize("fn", SIMILARITY_FUNCTIONS)
def test_top_k_matches_brute_force(fn: str) -> None:
    rng = np.random.default_rng(1)
    queries = rng.standard_normal((23, 16)).astype(np.float32)
    corpus = rng.standard_normal((101, 16)).astype(np.float32)
    full = _reference(queries, corpus, fn)
    expected_idx = np.argsort(-full, axis=1, kind="stable")[:, :7]
    # Small blocks force several merges of the running top-k.
    scores, idx = top_k(queries, corpus, k=7, fn=fn, query_chunk_size=5, corpus_chunk_size=13)
    assert idx.dtype == np.int64 and scores.shape == idx.shape == (23, 7)
    np.testing.assert_array_equal(idx, expected_idx)
    np.testing.assert_allclose(scores, np.take_along_axis(full, expected_idx, axis=1), rtol=1e-5, atol=1e-5)
    scores_t, idx_t = top_k(torch.from_numpy(queries), torch.from_numpy(corpus), k=7, fn=fn)
    assert isinstance(idx_t, torch.Tensor)
    np.testing.assert_array_equal(idx_t.numpy(), expected_idx)


def test_top_k_caps_k_and_rejects_bad_k() -> None:
    scores, idx = top_k(np.eye(3), np.eye(3)[:2], k=10)
    assert scores.shape == idx.shape == (3, 2)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        top_k(np.eye(3), np.eye(3), k=0)


@pytest.mark.parametrize("fn", ["cosine", "euclidean"])
def test_paraphrase_pairs_are_the_best_distinct_pairs(fn: str) -> None:
    rng = np.random.default_rng(2)
    emb = rng.standard_normal((40, 8)).astype(np.float32)
    full = _reference(emb, emb, fn)
    i, j = np.triu_indices(len(emb), k=1)
    best = np.argsort(-full[i, j], kind="stable")[:10]
    expected = [(int(i[t]), int(j[t])) for t in best]
    got = paraphrase_pairs(emb, top_k=10, fn=fn, max_pairs=10, query_chunk_size=7, corpus_chunk_size=9)
    assert [(p, q) for _, p, q in got] == expected
    np.testing.assert_allclose([s for s, _, _ in got], full[i[best], j[best]], rtol=1e-5, atol=1e-5)
    everything = paraphrase_pairs(emb, top_k=3, fn=fn)
    assert all(p < q for _, p, q in everything)
    assert len({(p, q) for _, p, q in everything}) == len(everything)  # no pair twice
    assert [s for s, _, _ in everything] == sorted((s for s, _, _ in everything), reverse=True)


def test_paraphrase_pairs_small_inputs() -> None:
    assert paraphrase_pairs(np.ones((1, 4))) == []
    dup = np.array([[1.0, 0.0], [1.0, 0.0]])
    assert paraphrase_pairs(dup, top_k=5) == [(1.0, 0, 1)]


def test_large_manhattan_is_chunked() -> None:
    # 5,000 × 5,000 × 384 float differences would be ~77 GB in float64: this only passes if
    # nothing of that size is ever allocated.
    x = np.random.default_rng(3).standard_normal((5000, 384)).astype(np.float32)
    m = similarity_matrix(x, fn="manhattan")
    assert m.shape == (5000, 5000)
    np.testing.assert_allclose(m[:3], -cdist(x[:3].astype(np.float64), x, "cityblock"), rtol=1e-6)


finite = st.floats(-100, 100, allow_nan=False, width=32)


@settings(max_examples=40, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 12), st.integers(1, 8)), elements=finite))
def test_property_self_matrix_symmetric_and_cosine_bounded(x: np.ndarray) -> None:
    for fn in SIMILARITY_FUNCTIONS:
        m = similarity_matrix(x, fn=fn)
        scale = max(1.0, float(np.abs(m).max()))
        np.testing.assert_allclose(m, m.T, rtol=0, atol=1e-6 * scale)
    cos = similarity_matrix(x)
    assert np.all(cos <= 1.0) and np.all(cos >= -1.0)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 10).flatmap(
        lambda n: st.tuples(
            arrays(np.float32, (n, 5), elements=finite), arrays(np.float32, (n, 5), elements=finite)
        )
    ),
    st.sampled_from(SIMILARITY_FUNCTIONS),
)
def test_property_pairwise_is_matrix_diagonal(pair: tuple[np.ndarray, np.ndarray], fn: str) -> None:
    a, b = pair
    diag = np.diag(similarity_matrix(a, b, fn))
    scale = max(1.0, float(np.abs(diag).max()))
    np.testing.assert_allclose(pairwise_similarity(a, b, fn), diag, rtol=0, atol=1e-5 * scale)


@pytest.mark.slow
def test_paraphrase_pairs_50k() -> None:
    # 50,000² scores would be 10 GB in float32; blockwise it runs in well under 1 GB.
    emb = np.random.default_rng(7).standard_normal((50_000, 384)).astype(np.float32)
    emb[123] = emb[45_678] * 2.0  # one planted pair: cosine exactly 1
    pairs = paraphrase_pairs(emb, top_k=5, max_pairs=1000)
    assert len(pairs) == 1000
    assert pairs[0][1:] == (123, 45_678) and pairs[0][0] == pytest.approx(1.0, abs=1e-6)
    score, i, j = pairs[500]
    assert score == pytest.approx(float(similarity_matrix(emb[i], emb[j])[0, 0]), abs=1e-5)
