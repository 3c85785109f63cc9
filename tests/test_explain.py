"""Token-level explanations of a pair's cosine (workbench.explain) and the ExplainPair widget.

References: sentence-transformers' own encode (the pair's cosine) and its token embeddings
(the matrix by hand from the formula); the model's own forward for the approximate method.
"""

from __future__ import annotations

import numpy as np
import pytest

from workbench.explain import explain_pairs, token_similarity

pytestmark = pytest.mark.usefixtures("one_thread")  # a busy CPU: one thread is ~2.5x faster here

PAIRS = [("a dog bites a man", "a man bites a dog"), ("The film was good.", "The film was not good.")]
SUBWORDS = "Unbelievably, tokenization happens."


@pytest.fixture(scope="module")
def minilm(minilm_path):
    from workbench import load_model

    return load_model(minilm_path, device="cpu")


@pytest.fixture(scope="module")
def st_minilm(minilm_path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(minilm_path), device="cpu")


@pytest.fixture(scope="module")
def dense_model(minilm_path):
    """A recipe's student shape: all-MiniLM-L6-v2 layers [0, 3, 5] + Dense(384 -> 256, tanh) + Normalize."""
    from workbench import build_model

    return build_model(minilm_path, keep_layers=[0, 3, 5], dense=256, normalize=True, seed=0, device="cpu").eval()


def _st_cosines(st, a, b):
    ea = st.encode(a, normalize_embeddings=True, convert_to_numpy=True).astype(np.float64)
    eb = st.encode(b, normalize_embeddings=True, convert_to_numpy=True).astype(np.float64)
    return np.sum(ea * eb, axis=1)


# ----- the exact decomposition ---------------------------------------------------------------------


def test_matrix_sums_to_the_cosine_on_200_stsb_pairs(minilm, st_minilm, stsb_dir):
    from workbench.data import load_stsb

    sts = load_stsb("test", path=stsb_dir).select(range(200))
    a, b = list(sts["sentence1"]), list(sts["sentence2"])
    results = explain_pairs(minilm, a, b)
    sums = np.array([r.matrix.sum() for r in results])
    assert {r.method for r in results} == {"exact"}
    reference = _st_cosines(st_minilm, a, b)  # independent: sentence-transformers' encode
    assert np.abs(sums - reference).max() < 1e-5
    ours = minilm.encode(a, normalize=True).astype(np.float64), minilm.encode(b, normalize=True).astype(np.float64)
    assert np.abs(sums - np.sum(ours[0] * ours[1], axis=1)).max() < 1e-5
    assert np.abs(np.array([r.cosine for r in results]) - reference).max() < 1e-5
    assert max(r.completeness_error for r in results) < 1e-6


def test_matrix_is_the_formula_on_sentence_transformers_token_vectors(minilm, st_minilm):
    a, b = PAIRS[1]
    r = token_similarity(minilm, a, b)
    t = st_minilm.encode(a, output_value="token_embeddings", convert_to_numpy=False).double().numpy()  # (n, 384)
    u = st_minilm.encode(b, output_value="token_embeddings", convert_to_numpy=False).double().numpy()
    by_hand = (t @ u.T) / (len(t) * len(u) * np.linalg.norm(t.mean(0)) * np.linalg.norm(u.mean(0)))
    assert r.matrix.shape == by_hand.shape
    np.testing.assert_allclose(r.matrix, by_hand, atol=1e-6)
    ids = st_minilm.tokenizer(a)["input_ids"]
    assert r.tokens_a == tuple(st_minilm.tokenizer.convert_ids_to_tokens(ids))
    np.testing.assert_allclose(r.contributions_a, by_hand.sum(1), atol=1e-6)
    np.testing.assert_allclose(r.contributions_b, by_hand.sum(0), atol=1e-6)
    assert not r.matrix.flags.writeable


def test_a_sentence_transformer_is_explained_as_the_workbench_model(minilm, st_minilm):
    ours, theirs = token_similarity(minilm, *PAIRS[0]), token_similarity(st_minilm, *PAIRS[0])
    assert theirs.tokens_a == ours.tokens_a
    np.testing.assert_allclose(theirs.matrix, ours.matrix, atol=1e-7)


def test_top_pairs_are_the_largest_terms(minilm):
    r = token_similarity(minilm, *PAIRS[0])
    top = r.top_pairs(4)
    values = [v for _, _, v in top]
    assert values == sorted(values, key=abs, reverse=True)
    assert abs(values[0]) == np.abs(r.matrix).max()
    assert sorted(np.abs(r.matrix).ravel())[-4] == pytest.approx(abs(values[-1]))


# ----- joining subwords and hiding special tokens ---------------------------------------------------


def test_join_words_keeps_every_sum(minilm):
    r = token_similarity(minilm, SUBWORDS, "The tokenizer splits unbelievable words.")
    assert any(t.startswith("##") for t in r.tokens_a)
    w = r.join_words()
    assert w.tokens_a == ("[CLS]", "Unbelievably", ",", "tokenization", "happens", ".", "[SEP]")
    assert "unbelievable" in w.tokens_b and "[SEP]" in w.tokens_b
    assert w.matrix.sum() == pytest.approx(r.matrix.sum(), abs=1e-12)
    assert w.cosine == r.cosine and w.completeness_error < 1e-6
    # the word's row is the sum of its subword tokens' rows
    pieces = [i for i, word in enumerate(r.word_a) if word is not None and word == r.word_a[1]]
    assert [r.tokens_a[i] for i in pieces] == ["un", "##bel", "##ie", "##va", "##bly"] or len(pieces) > 1
    assert w.contributions_a[1] == pytest.approx(r.contributions_a[pieces].sum(), abs=1e-12)
    np.testing.assert_allclose(w.contributions_b.sum(), r.contributions_b.sum(), atol=1e-12)
    assert w.join_words().tokens_a == w.tokens_a  # joining twice changes nothing


def test_hide_special_reports_the_share_removed(minilm):
    r = token_similarity(minilm, *PAIRS[1])
    h = r.hide_special()
    assert "[CLS]" not in h.tokens_a + h.tokens_b and "[SEP]" not in h.tokens_a + h.tokens_b
    keep_a = [i for i, s in enumerate(r.special_a) if not s]
    keep_b = [j for j, s in enumerate(r.special_b) if not s]
    np.testing.assert_array_equal(h.matrix, r.matrix[np.ix_(keep_a, keep_b)])
    assert h.hidden == pytest.approx(r.special_share)
    assert h.hidden == pytest.approx(r.matrix.sum() - r.matrix[np.ix_(keep_a, keep_b)].sum())
    assert abs(h.hidden) > 1e-3  # [CLS]/[SEP] hold a real share in MiniLM
    assert h.matrix.sum() + h.hidden == pytest.approx(r.cosine, abs=1e-6)
    both = h.join_words()
    assert both.tokens_a == ("The", "film", "was", "good", ".") and both.hidden == h.hidden


# ----- truncation and bad input --------------------------------------------------------------------


def test_a_long_text_is_explained_as_far_as_the_model_saw_it(minilm, st_minilm):
    long = " ".join(["the quick brown fox jumps over the lazy dog"] * 40)  # 360 words, max_seq_length is 256
    r = token_similarity(minilm, "A fox jumps.", long)
    full = len(minilm.tokenizer(long)["input_ids"])
    assert len(r.tokens_b) == minilm.max_seq_length and r.tokens_b[-1] == "[SEP]"
    assert r.cut == (0, full - minilm.max_seq_length) and r.truncated == (False, True)
    assert r.matrix.sum() == pytest.approx(_st_cosines(st_minilm, ["A fox jumps."], [long])[0], abs=1e-5)


def test_bad_inputs_are_refused_clearly(minilm, dense_model):
    for empty in ("", "   "):
        with pytest.raises(ValueError, match="empty"):
            token_similarity(minilm, empty, "a cat")
    with pytest.raises(TypeError, match="not a string"):
        token_similarity(minilm, "a cat", None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="need a transformer model"):
        token_similarity(lambda texts: np.ones((len(texts), 3)), "a cat", "a dog")
    with pytest.raises(ValueError, match="exact decomposition needs mean pooling and no Dense.*Dense after the pooling"):
        token_similarity(dense_model, "a cat", "a dog", method="exact")
    with pytest.raises(ValueError, match="method must be one of"):
        token_similarity(minilm, "a cat", "a dog", method="shap")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        token_similarity(minilm, "a cat", "a dog", steps=0)
    with pytest.raises(ValueError, match="same length"):
        explain_pairs(minilm, ["a"], ["b", "c"])


# ----- the approximate method ----------------------------------------------------------------------


def test_integrated_gradients_on_a_dense_model_is_nearly_complete(dense_model):
    a, b = PAIRS[1]
    errors = {steps: token_similarity(dense_model, a, b, steps=steps).completeness_error for steps in (1, 2, 4, 16)}
    r = token_similarity(dense_model, a, b)
    assert r.method == "integrated-gradients" and r.steps == 32
    emb = dense_model.encode([a, b], normalize=True).astype(np.float64)
    assert r.cosine == pytest.approx(float(emb[0] @ emb[1]), abs=1e-5)  # the model's own cosine
    assert abs(r.baseline) > 1e-3  # the Dense bias: tanh(b) is the zero reference's vector
    assert r.completeness_error < 1e-5
    assert r.matrix.sum() + r.baseline == pytest.approx(r.cosine, abs=1e-5)
    assert errors[1] > errors[2] > errors[4] > 0 and errors[16] < 1e-5  # falls with more steps
    h = r.hide_special().join_words()
    assert h.completeness_error == pytest.approx(r.completeness_error, abs=1e-9)


def test_integrated_gradients_equals_the_exact_terms_where_both_apply(minilm):
    exact = token_similarity(minilm, *PAIRS[0])
    approx = token_similarity(minilm, *PAIRS[0], method="integrated-gradients", steps=2)
    assert approx.method == "integrated-gradients" and approx.baseline == pytest.approx(0.0, abs=1e-7)
    np.testing.assert_allclose(approx.matrix, exact.matrix, atol=1e-6)


def test_max_and_cls_poolings_take_the_approximate_method(tiny_bert):
    for pooling in ("max", "cls"):
        model = tiny_bert(pooling=pooling)
        r = token_similarity(model, *PAIRS[0])
        emb = model.encode(list(PAIRS[0]), normalize=True).astype(np.float64)
        assert r.method == "integrated-gradients"
        assert r.cosine == pytest.approx(float(emb[0] @ emb[1]), abs=1e-5)
        assert r.completeness_error < 1e-5
    assert np.count_nonzero(r.matrix) == 1 and r.matrix[0, 0] == pytest.approx(r.cosine, abs=1e-5)  # CLS: one cell


# ----- the widget ----------------------------------------------------------------------------------


def test_explain_pair_widget_shows_the_core_numbers(minilm):
    from workbench.widgets import ExplainPair

    w = ExplainPair(minilm, *PAIRS[0])
    first = token_similarity(minilm, *PAIRS[0])
    np.testing.assert_allclose(w.fig.data[0].z, first.matrix)
    w.text_a.value, w.text_b.value = PAIRS[1]
    r = token_similarity(minilm, *PAIRS[1])
    np.testing.assert_allclose(w.fig.data[0].z, r.matrix)
    assert list(w.fig.layout.yaxis.ticktext) == list(r.tokens_a)
    assert f"cosine {r.cosine:.4f}" in w.summary.value and "exact" in w.summary.value
    top_a, top_b, top_v = r.top_pairs(1)[0]
    assert f"{top_v:+.4f}" in w.pairs.value
    assert w.tokens.value.count("<span") == len(r.tokens_a) + len(r.tokens_b)
    w.hide_special.value = True
    assert "[CLS]" not in w.fig.layout.xaxis.ticktext and "held" in w.summary.value
    np.testing.assert_allclose(w.fig.data[0].z, r.hide_special().matrix)
    w.text_a.value = SUBWORDS
    w.words.value = True
    assert "Unbelievably" in w.fig.layout.yaxis.ticktext
    assert np.sum(w.fig.data[0].z) == pytest.approx(w.result.matrix.sum())
    w.text_b.value = "  "
    assert w.result is None and "both boxes" in w.fig.layout.title.text
    assert w.errors == []


def test_explain_pair_widget_names_the_approximate_method(dense_model):
    from workbench.widgets import ExplainPair

    w = ExplainPair(dense_model, *PAIRS[0], steps=8)
    assert "approximate: integrated gradients, 8 steps" in w.summary.value
    assert f"{w.result.completeness_error:.2e}" in w.summary.value
    long = " ".join(["word"] * 300)
    w.text_b.value = long
    assert "b was truncated" in w.summary.value and w.errors == []
    with pytest.raises(TypeError, match="need a transformer model"):
        ExplainPair(lambda texts: np.ones((len(texts), 2)))
