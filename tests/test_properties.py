"""Bad input, tried systematically: hypothesis over encode, similarity, the evaluators and the loaders.

Every generated case must end in a correct result or one clear error naming the problem (the
index, the input, the file and line); never a hang, a crash from deep inside a library, or a
silently wrong number. Encoding uses a tiny random BERT (hidden 32, max_seq_length 32, MiniLM's
tokenizer), so a case costs milliseconds. How many cases each test tries is set by
``max_examples`` below and counted in docs/reliability.md.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import warnings
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import pearsonr, spearmanr

from workbench.data import DataError, load_file, load_stsb
from workbench.evaluation import (
    MSEEvaluator,
    STSEvaluator,
    TripletEvaluator,
    mse_metric,
    sts_metrics,
    triplet_accuracy,
)
from workbench.similarity import SIMILARITY_FUNCTIONS, pairwise_similarity, similarity_matrix, top_k


def cases(n: int) -> settings:
    # No example database: the suite writes nothing into the checkout.
    return settings(max_examples=n, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


pytestmark = pytest.mark.usefixtures("one_thread")


# ===== encode =====================================================================================

MAX_LEN = 32


@pytest.fixture(scope="module")
def tiny(tiny_bert):
    return tiny_bert(layers=1, max_seq_length=MAX_LEN)


any_text = st.text(max_size=40)  # every code point but lone surrogates: controls, RTL, combining, CJK, ...
blank = st.text(alphabet=" \t\n\r\x0b\x0c\u00a0\u2003\u3000\u200b\ufeff", max_size=8)
emoji = st.lists(st.sampled_from(["🥞", "👩‍👩‍👧", "🇫🇷", "❤️", "🙂", "e\u0301", "🏳️‍🌈"]), max_size=8).map("".join)
long_text = st.lists(st.sampled_from(["the", "cat", "sat", "über", "数据", "🥞", "naïve", "x"]),
                     min_size=30, max_size=60).map(" ".join)
texts = st.lists(st.one_of(any_text, blank, emoji, long_text), max_size=10)


def _truncation_warnings(caught) -> int:
    return sum("longer than max_seq_length" in str(w.message) for w in caught)


@cases(80)
@given(items=texts)
def test_encode_any_texts(tiny, items):
    """Shape, order and finiteness kept; batch size changes nothing; truncation said exactly once."""
    tiny._warned_truncation = False  # each case is a fresh "model" for the once-per-model warning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = tiny.encode(items, batch_size=3)
        one_by_one = tiny.encode(items, batch_size=1)
        backwards = tiny.encode(items[::-1], batch_size=64)
    too_long = any(len(tiny.tokenizer(t)["input_ids"]) > MAX_LEN for t in items)
    assert _truncation_warnings(caught) == (1 if too_long else 0)
    assert out.shape == (len(items), 32) and out.dtype == np.float32 and np.isfinite(out).all()
    assert np.abs(out - one_by_one).max(initial=0) <= 1e-5
    assert np.abs(out - backwards[::-1]).max(initial=0) <= 1e-5
    if items:
        single = tiny.encode(items[0])
        assert single.shape == (32,) and np.abs(single - out[0]).max() <= 1e-5


def test_long_text_is_cut_to_max_seq_length(tiny):
    """Truncation keeps the beginning: a text and its long continuation encode alike."""
    head = " ".join(["the", "cat", "sat"] * 12)  # more than 32 tokens on its own
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, b = tiny.encode([head, head + " and then a very different ending " * 50])
    assert np.abs(a - b).max() <= 1e-6


not_a_string = st.one_of(st.none(), st.integers(), st.floats(), st.binary(max_size=4), st.booleans(),
                         st.lists(st.text(max_size=3), max_size=2), st.dictionaries(st.text(max_size=2), st.integers(),
                                                                                   max_size=1))


@cases(60)
@given(items=st.lists(any_text, max_size=6), bad=not_a_string, data=st.data())
def test_encode_names_the_first_non_string(tiny, items, bad, data):
    i = data.draw(st.integers(0, len(items)))
    with pytest.raises(TypeError, match=rf"texts\[{i}\] is {type(bad).__name__} .*strings only"):
        tiny.encode(items[:i] + [bad] + items[i:])


UNORDERED = {
    "set": lambda items: set(items),
    "frozenset": lambda items: frozenset(items),
    "dict_keys": lambda items: dict.fromkeys(items).keys(),
    "dict_values": lambda items: {i: t for i, t in enumerate(items)}.values(),
    "dict_items": lambda items: {t: t for t in items}.items(),
}


@pytest.mark.parametrize("kind", list(UNORDERED))
def test_encode_refuses_unordered_texts(tiny, kind):
    """Rows of a set's encoding match nothing the caller can index: refused, saying what to pass."""
    texts = UNORDERED[kind](["b", "a", "c"])
    with pytest.raises(TypeError, match=rf"^encode takes an ordered list of strings as texts, got a {kind}: its "
                                        r"order is arbitrary.*pass a list \(sorted\(texts\) if the order does not matter\)$"):
        tiny.encode(texts)


@pytest.mark.parametrize(("texts", "message"), [
    ({"a": "x"}, r"^encode takes a list of strings as texts, got a dict; pass list\(texts.values\(\)\) or list\(texts\)"),
    ((t for t in ["a", "b"]), r"^encode takes a list of strings as texts, got generator; pass list\(...\) of it$"),
    (b"bytes", r"^encode takes a list of strings as texts, got bytes; decode it first$"),
    (7, r"^encode takes a list of strings as texts, got int$"),
])
def test_encode_refuses_dicts_generators_and_scalars(tiny, texts, message):
    with pytest.raises(TypeError, match=message):
        tiny.encode(texts)


def test_encode_takes_ordered_sequences_in_their_order(tiny):
    import pandas as pd

    texts = ["b", "a", "c"]
    ref = tiny.encode(texts)
    for same in (tuple(texts), np.array(texts), pd.Series(texts)):
        assert np.abs(tiny.encode(same) - ref).max() <= 1e-6
    # What the message advises for a set: its sorted list, whose rows follow that order.
    assert np.abs(tiny.encode(sorted(set(texts))) - ref[[1, 0, 2]]).max() <= 1e-6


surrogate_text = st.tuples(any_text, st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), any_text).map("".join)


@cases(40)
@given(items=st.lists(any_text, max_size=6), bad=surrogate_text, data=st.data())
def test_encode_names_invalid_unicode(tiny, items, bad, data):
    i = data.draw(st.integers(0, len(items)))
    with pytest.raises(ValueError, match=rf"texts\[{i}\] is not valid Unicode: a lone surrogate"):
        tiny.encode(items[:i] + [bad] + items[i:])


# ===== similarity =================================================================================

values = st.floats(-1e3, 1e3, allow_nan=False, width=32)


def _pair(same_rows: bool = False):
    def build(dims):
        n, m, d = dims
        return st.tuples(arrays(np.float32, (n, d), elements=values), arrays(np.float32, (n if same_rows else m, d),
                                                                            elements=values))
    return st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 8)).flatmap(build)


def _reference(a: np.ndarray, b: np.ndarray, fn: str) -> np.ndarray:
    """float64 numpy, written independently of the library (a zero vector has cosine 0, as documented)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    if fn == "cosine":
        an = a / np.maximum(np.sqrt((a * a).sum(1, keepdims=True)), 1e-12)
        bn = b / np.maximum(np.sqrt((b * b).sum(1, keepdims=True)), 1e-12)
        return np.clip(an @ bn.T, -1.0, 1.0)
    if fn == "dot":
        return a @ b.T
    diff = a[:, None, :] - b[None, :, :]  # (n, m, d)
    return -np.sqrt((diff**2).sum(-1)) if fn == "euclidean" else -np.abs(diff).sum(-1)


def _tolerance(ref: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    # float32 outputs; the euclidean block formula loses ~sqrt(eps) of the norms for near-equal rows.
    scale = max(1.0, float(np.abs(ref).max(initial=0)), float(np.abs(a).max(initial=0)), float(np.abs(b).max(initial=0)))
    return 1e-5 * scale


@cases(120)
@given(ab=_pair(), fn=st.sampled_from(SIMILARITY_FUNCTIONS))
def test_similarity_matches_numpy(ab, fn):
    a, b = ab
    ref = _reference(a, b, fn)
    got = similarity_matrix(a, b, fn)
    assert got.shape == ref.shape and got.dtype == np.float32
    assert np.abs(got - ref).max() <= _tolerance(ref, a, b)
    k = min(3, b.shape[0])
    scores, idx = top_k(a, b, k=3, fn=fn)
    assert scores.shape == idx.shape == (a.shape[0], k)
    best = -np.sort(-ref, axis=1)[:, :k]
    tol = 10 * _tolerance(ref, a, b)  # top_k scores cosine and dot in float32
    assert np.abs(scores - best).max() <= tol
    assert np.abs(np.take_along_axis(ref, idx, 1) - best).max() <= tol  # each index is a row with that score


@cases(60)
@given(ab=_pair(same_rows=True), fn=st.sampled_from(SIMILARITY_FUNCTIONS))
def test_pairwise_matches_numpy(ab, fn):
    a, b = ab
    ref = np.diag(_reference(a, b, fn))
    got = pairwise_similarity(a, b, fn)
    assert got.shape == (a.shape[0],) and np.abs(got - ref).max() <= _tolerance(ref, a, b)


@cases(60)
@given(ab=_pair(), fn=st.sampled_from(SIMILARITY_FUNCTIONS), bad=st.sampled_from([np.nan, np.inf, -np.inf]),
       data=st.data())
def test_non_finite_rows_stay_visible_and_confined(ab, fn, bad, data):
    """The present contract of similarity_matrix: a row holding NaN/inf scores non-finite against
    everything (never a plausible number), and every other row is scored as if it were absent."""
    a, b = ab
    rows = data.draw(st.lists(st.integers(0, a.shape[0] - 1), min_size=1, unique=True))
    col = data.draw(st.integers(0, a.shape[1] - 1))
    poisoned = a.copy()
    poisoned[rows, col] = bad
    got, clean = similarity_matrix(poisoned, b, fn), similarity_matrix(a, b, fn)
    others = [r for r in range(a.shape[0]) if r not in rows]
    assert not np.isfinite(got[rows]).any()
    assert np.allclose(got[others], clean[others], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("fn", SIMILARITY_FUNCTIONS)
def test_top_k_refuses_non_finite_input(fn):
    corpus = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    corpus[2, 1] = np.nan
    with pytest.raises(ValueError, match="corpus_emb.*row 2"):
        top_k(corpus[:3], corpus, k=2, fn=fn)


# ===== evaluators =================================================================================

def _embedder(dim: int = 6, poison: dict[str, float] | None = None):
    """A deterministic encoder: each text -> a pseudo-random vector; ``poison`` sets a text's row to a value."""
    def encode(items):
        out = np.stack([np.random.default_rng(zlib.crc32(t.encode())).standard_normal(dim) for t in items])
        for i, t in enumerate(items):
            if poison and t in poison:
                out[i, 0] = poison[t]
        return out
    return encode


bad_score = st.sampled_from([math.nan, math.inf, -math.inf, None, "3.5", True, [1.0], complex(1, 0)])
gold = st.lists(st.floats(-10, 10, allow_nan=False), min_size=2, max_size=12)


@cases(60)
@given(scores=gold, bad=bad_score, data=st.data())
def test_bad_gold_score_is_named(scores, bad, data):
    i = data.draw(st.integers(0, len(scores) - 1))
    scores[i] = bad
    n = len(scores)
    s1, s2 = [f"a {j}" for j in range(n)], [f"b {j}" for j in range(n)]
    with pytest.raises(ValueError, match=rf"scores\[{i}\] = .* is not a finite number"):
        STSEvaluator(s1, s2, scores)
    emb = np.random.default_rng(0).standard_normal((n, 4))
    with pytest.raises(ValueError, match=rf"gold_scores\[{i}\] = .* is not a finite number"):
        sts_metrics(emb, emb[::-1], scores)


lengths = st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 6)).filter(lambda t: len(set(t)) > 1)


@cases(40)
@given(sizes=lengths)
def test_mismatched_lengths_are_named(sizes):
    n1, n2, n3 = sizes
    with pytest.raises(ValueError, match=rf"must have the same length, got {n1}, {n2} and {n3}"):
        STSEvaluator(["s"] * n1, ["t"] * n2, [float(i) for i in range(n3)])
    with pytest.raises(ValueError, match=rf"must have the same length, got {n1}, {n2} and {n3}"):
        TripletEvaluator(["a"] * n1, ["p"] * n2, ["n"] * n3)
    if n1 != n2:
        with pytest.raises(ValueError, match=rf"got {n1} embedding pairs but {n2} gold scores"):
            sts_metrics(np.ones((n1, 3)), np.ones((n1, 3)), [float(i) for i in range(n2)])


@cases(60)
@given(scores=st.lists(st.integers(-50, 50).map(lambda x: x / 5), min_size=2, max_size=12).filter(lambda s: len(set(s)) > 1),
       shift=st.floats(-100, 100), factor=st.floats(0.01, 100))
def test_gold_scores_on_any_scale_give_the_same_correlations(scores, shift, factor):
    """'Out of range' gold scores are fine: correlation ignores the scale (0-1, 0-5, -10..10)."""
    n = len(scores)
    enc = _embedder()
    s1, s2 = [f"first {j}" for j in range(n)], [f"second {j}" for j in range(n)]
    base = STSEvaluator(s1, s2, scores, name="")(enc)
    moved = STSEvaluator(s1, s2, [shift + factor * s for s in scores], name="")(enc)
    for key, value in base.items():
        assert (math.isnan(value) and math.isnan(moved[key])) or abs(value - moved[key]) <= 1e-9


@cases(40)
@given(n=st.integers(2, 8), bad=st.sampled_from([math.nan, math.inf, -math.inf]), data=st.data())
def test_non_finite_embeddings_are_an_error_not_a_metric(n, bad, data):
    i = data.draw(st.integers(0, n - 1))
    s1, s2 = [f"first {j}" for j in range(n)], [f"second {j}" for j in range(n)]
    enc = _embedder(poison={s1[i]: bad})
    with pytest.raises(ValueError, match="non-finite values .*NaN or inf"):
        STSEvaluator(s1, s2, [float(j) for j in range(n)])(enc)
    with pytest.raises(ValueError, match="non-finite"):
        TripletEvaluator(s1, s2, s2[::-1])(enc)
    with pytest.raises(ValueError, match="non-finite"):
        MSEEvaluator(s2, teacher_embeddings=_embedder()(s2))(_embedder(poison={s2[i]: bad}))
    with pytest.raises(ValueError, match="non-finite"):
        MSEEvaluator(s1, teacher=enc)  # the teacher's own embeddings are checked too


@cases(60)
@given(abc=st.integers(2, 10).flatmap(lambda n: st.tuples(*[arrays(np.float64, (n, 4), elements=values)] * 3)),
       scores=st.data())
def test_metrics_match_independent_references(abc, scores):
    a, b, c = abc
    n = a.shape[0]
    gold_scores = scores.draw(st.lists(st.floats(0, 5), min_size=n, max_size=n).filter(lambda s: len(set(s)) > 1))
    got = sts_metrics(a, b, gold_scores, fns=["cosine"])
    pred = np.diag(_reference(a, b, "cosine"))
    if np.ptp(pred) > 1e-9:
        assert abs(got["pearson_cosine"] - pearsonr(gold_scores, pred).statistic) <= 1e-6
        gaps = np.diff(np.sort(pred))
        if not ((gaps > 0) & (gaps < 1e-9)).any():  # ranks of values equal up to rounding are arbitrary
            assert abs(got["spearman_cosine"] - spearmanr(gold_scores, pred).statistic) <= 1e-6
    assert math.isnan(got["pearson_cosine"]) or -1 - 1e-12 <= got["pearson_cosine"] <= 1 + 1e-12
    pos, neg = np.diag(_reference(a, b, "dot")), np.diag(_reference(a, c, "dot"))
    if np.abs(pos - neg).min() > 1e-6 * max(1.0, np.abs(pos).max(), np.abs(neg).max()):  # no near-ties
        assert triplet_accuracy(a, b, c, "dot") == np.mean(pos > neg)
    assert mse_metric(a, b)["negative_mse"] == pytest.approx(-np.mean((a - b) ** 2) * 100, rel=1e-12, abs=1e-12)


def test_poisoned_teacher_rows_are_checked():
    with pytest.raises(ValueError, match="teacher_embeddings holds non-finite values .* first row 1"):
        MSEEvaluator(["a", "b"], teacher_embeddings=np.array([[0.0], [np.nan]]))


# ===== data loaders ===============================================================================

COLUMNS = ["sentence1", "sentence2", "score"]
clean_text = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=15),
    st.sampled_from(['"quoted," she said', '"', "'", '""', " lead", "trail ", "a\tb", "x\ny", "\\N", "NULL",
                     "naïve café", "数据 🥞", "a\u2028b", "c\x85d"]),
).filter(str.strip)
good_score = st.one_of(st.floats(0, 5).map(repr), st.integers(0, 5).map(str),
                       st.sampled_from(["0", "5", "5.0", " 3 ", "+2.5", ".5", "4.", "2e0"]))
bad_score_text = st.sampled_from(["nan", "NaN", "inf", "-inf", "-0.5", "5.01", "abc", "", " ", "1e400", "1_0",
                                  "\u0663", "0x1", "true", "3,5"])
bad_score_json = st.sampled_from([None, True, False, "abc", [1], {"a": 1}, 10**400, math.nan, math.inf, -1, 6, "nan"])
blank_text = st.sampled_from(["", " ", "\t", "\u00a0", "\u3000 ", "\n"])
FAULTS = ["none", "none", "none", "bad score", "blank text", "missing column", "latin-1", "NUL", "not text"]


@st.composite
def sts_files(draw):
    """A table of STS rows as TSV, CSV or JSONL (odd texts, scores written many ways, shuffled and
    extra columns) with at most one fault put in: a bad score, a blank text, a missing column,
    latin-1 bytes, a NUL character, a non-text JSON value."""
    fmt = draw(st.sampled_from(["tsv", "csv", "jsonl"]))
    ok = (lambda s: not set(s) & {"\t", "\n", "\r"}) if fmt == "tsv" else (lambda s: True)
    n = draw(st.integers(1, 6))
    rows = [{"sentence1": draw(clean_text.filter(ok)), "sentence2": draw(clean_text.filter(ok)),
             "score": draw(st.one_of(good_score, st.floats(0, 5), st.integers(0, 5)) if fmt == "jsonl" else good_score),
             "extra": "more"} for _ in range(n)]
    fault = draw(st.sampled_from(FAULTS))
    row, column = draw(st.integers(0, n - 1)), draw(st.sampled_from(["sentence1", "sentence2"]))
    if fault == "bad score":
        rows[row]["score"] = draw(bad_score_json if fmt == "jsonl" else bad_score_text)
    elif fault == "blank text":
        rows[row][column] = draw(blank_text.filter(ok))
    elif fault == "latin-1" or (fault == "NUL" and fmt != "jsonl"):
        rows[row][column] = "caf\xe9 " + rows[row][column] if fault == "latin-1" else "a\x00b"
    elif fault == "not text" and fmt == "jsonl":
        rows[row][column] = draw(st.sampled_from([None, 7, ["a"], {"t": "x"}]))
    columns = draw(st.permutations(COLUMNS + ["extra"] if draw(st.booleans()) else COLUMNS))
    missing = draw(st.sampled_from(COLUMNS)) if fault == "missing column" else None
    encoding = "latin-1" if fault == "latin-1" else "utf-8"
    return fmt, rows, [c for c in columns if c != missing], missing, encoding, fault


def _write(fmt: str, rows: list[dict], columns: list[str]) -> tuple[str, list[int]]:
    """The file's text and the line on which each row starts."""
    if fmt == "jsonl":
        ascii_only = len(rows) % 2 == 0  # both ways json.dumps writes non-ASCII text
        lines = [json.dumps({c: r[c] for c in columns}, ensure_ascii=ascii_only) for r in rows]
        return "\n".join(lines) + "\n", list(range(1, len(rows) + 1))
    buf = io.StringIO()
    starts = []
    if fmt == "tsv":
        buf.write("\t".join(columns) + "\n")
        for r in rows:
            starts.append(len(re.findall(r"\r\n|\r|\n", buf.getvalue())) + 1)
            buf.write("\t".join(str(r[c]) for c in columns) + "\n")
    else:
        writer = csv.writer(buf)  # lineterminator \r\n: a lone \r or \n in a field is quoted too
        writer.writerow(columns)
        for r in rows:
            starts.append(len(re.findall(r"\r\n|\r|\n", buf.getvalue())) + 1)
            writer.writerow([r[c] for c in columns])
    return buf.getvalue(), starts


def _score_ok(value) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return False
    if isinstance(value, str):
        if not re.fullmatch(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*", value, re.ASCII):
            return False  # nan/inf are numbers but fail the range check below anyway
    try:
        return 0.0 <= float(value) <= 5.0
    except OverflowError:
        return False


def _text_ok(value) -> bool:
    return isinstance(value, str) and bool(value.strip())


@cases(250)
@given(spec=sts_files())
def test_sts_loader_gives_a_dataset_or_names_file_and_line(spec, tmp_path_factory):
    fmt, rows, columns, missing, encoding, fault = spec
    text, starts = _write(fmt, rows, columns)
    # latin-1 as an old spreadsheet writes it (characters it lacks become '?'); "café" ensures non-UTF-8 bytes
    raw = text.encode("latin-1", errors="replace") if encoding == "latin-1" else text.encode("utf-8")
    path = tmp_path_factory.mktemp("sts") / f"pairs.{fmt}"
    path.write_bytes(raw)

    problem = None  # (regex the message must match, lines it may name)
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        problem = (r"not valid UTF-8", [raw[: err.start].count(b"\n") + 1])
    else:
        if "\x00" in decoded:
            problem = (r"NUL character", [len(re.findall(r"\r\n|\r|\n", decoded[: decoded.index("\x00")])) + 1])
    if problem is None and missing is not None:
        problem = (rf"missing column '{missing}'", [1] if fmt != "jsonl" else None)
    if problem is None:
        bad = [starts[i] for i, r in enumerate(rows)
               if not (_score_ok(r["score"]) and _text_ok(r["sentence1"]) and _text_ok(r["sentence2"]))]
        if bad:
            problem = (r"score|empty|should be text", bad)

    event(f"{fmt}, {fault}: {'DataError' if problem else 'loaded'}")
    if problem is None:
        ds = load_stsb(path=path)
        assert ds["sentence1"] == [r["sentence1"] for r in rows]
        assert ds["sentence2"] == [r["sentence2"] for r in rows]
        assert ds["score"] == [float(r["score"]) / 5.0 for r in rows]
        return
    with pytest.raises(DataError) as err:
        load_stsb(path=path)
    message = str(err.value)
    pattern, lines = problem
    assert message.startswith(str(path)) and re.search(pattern, message), message
    if lines is not None:
        named = re.match(rf"{re.escape(str(path))}, line (\d+)\b", message)
        assert named and int(named[1]) in lines, (message, lines)


@cases(60)
@given(content=st.text(alphabet=" \t\r\n\u00a0\ufeff", max_size=12), fmt=st.sampled_from(["tsv", "csv", "jsonl", "json"]),
       bom=st.booleans(), header_only=st.booleans())
def test_empty_and_blank_files_are_named(content, fmt, bom, header_only, tmp_path_factory):
    path = tmp_path_factory.mktemp("empty") / f"data.{fmt}"
    if header_only and fmt in ("tsv", "csv"):
        content = {"tsv": "\t", "csv": ","}[fmt].join(COLUMNS) + "\n" + content.replace("\t", "").replace(",", "")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + content.encode("utf-8"))
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}"):
        load_file(path, columns=COLUMNS)


@cases(60)
@given(numbers=st.lists(st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False)),
                        min_size=1, max_size=6),
       words=st.lists(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\t\n\r\x00"),
                              min_size=1, max_size=8).map(lambda s: "w" + s), min_size=1, max_size=6))
def test_generic_files_keep_text_and_read_numbers(numbers, words, tmp_path_factory):
    """load_file: a column of numbers comes back as numbers, a column of text as the same text."""
    n = min(len(numbers), len(words))
    path = tmp_path_factory.mktemp("generic") / "table.tsv"
    path.write_text("text\tvalue\n" + "".join(f"{w}\t{v!r}\n" for w, v in zip(words[:n], numbers[:n], strict=True)),
                    encoding="utf-8")
    ds = load_file(path)
    assert ds["text"] == words[:n]
    assert ds["value"] == [float(v) if any(isinstance(x, float) for x in numbers[:n]) else v for v in numbers[:n]]


@pytest.mark.parametrize("cells", [["1_000", "2"], ["\u0663", "4"], ["0x10", "1"], ["1,5", "2"]])
def test_number_lookalikes_stay_text(cells, tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("value\n" + "\n".join(cells) + "\n", encoding="utf-8")
    assert load_file(path)["value"] == cells
