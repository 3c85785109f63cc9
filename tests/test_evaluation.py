"""workbench.evaluation against scipy and against sentence-transformers' own evaluators.

The sentence-transformers models here are tiny random BERTs built and saved locally (a
WordPiece vocabulary written to a temporary folder), so nothing is downloaded.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr, spearmanr

from workbench.evaluation import (
    STS_FNS,
    MSEEvaluator,
    STSEvaluator,
    TripletEvaluator,
    format_metrics,
    mse_metric,
    sts_metrics,
    triplet_accuracy,
)
from workbench.similarity import SIMILARITY_FUNCTIONS

WORDS = (
    "the a man woman child dog cat bird horse car bike train guitar piano ball park street "
    "beach kitchen table red blue green small big old young plays rides eats runs sits "
    "sleeps watches holds on in near with under quickly slowly"
).split()


def _sentence(rng: np.random.Generator) -> str:
    return " ".join(rng.choice(WORDS, size=rng.integers(3, 9)))


def _sts_data(n: int = 50) -> tuple[list[str], list[str], list[float]]:
    """Made-up pairs: a pool of sentences reused across pairs, gold = word overlap on a 0.2 grid."""
    rng = np.random.default_rng(0)
    pool = list(dict.fromkeys(_sentence(rng) for _ in range(60)))
    s1, s2, scores = [], [], []
    while len(s1) < n:
        a = pool[rng.integers(len(pool))]
        # Half the partners are edits of the first sentence, so the scores spread over 0-5.
        extra = " ".join(rng.choice(WORDS, size=rng.integers(1, 4)))
        b = f"{a} {extra}" if rng.random() < 0.5 else pool[rng.integers(len(pool))]
        if a == b:
            continue
        wa, wb = set(a.split()), set(b.split())
        s1.append(a)
        s2.append(b)
        scores.append(round(5 * len(wa & wb) / len(wa | wb) / 0.2) * 0.2)  # ties on purpose
    return s1, s2, scores


def _build_st(folder: Path, seed: int, bert_config: Callable[..., Any], hidden: int = 32):
    """A random 2-layer BERT + mean pooling as a SentenceTransformer, without any download."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertModel, BertTokenizerFast

    folder.mkdir(parents=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    tokenizer = BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)})
    assert "[UNK]" not in tokenizer.tokenize(" ".join(WORDS))  # the vocabulary really is in use
    tokenizer.save_pretrained(str(folder))
    torch.manual_seed(seed)
    config = bert_config(layers=2, hidden=hidden, vocab_size=len(vocab), max_position_embeddings=64)
    BertModel(config).save_pretrained(str(folder))
    transformer = Transformer(str(folder))
    return SentenceTransformer(modules=[transformer, Pooling(hidden)], device="cpu")


@pytest.fixture(scope="module")
def st_models(tmp_path_factory: pytest.TempPathFactory, bert_config):
    root = tmp_path_factory.mktemp("tiny-st")
    return _build_st(root / "student", 0, bert_config), _build_st(root / "teacher", 1, bert_config)


# --------------------------------------------------------------------------- pure functions


def _hand_made(n: int = 30) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    e1 = rng.standard_normal((n, 6)) + 0.5
    e2 = e1 + rng.standard_normal((n, 6)) * np.linspace(0.1, 2.0, n)[:, None]
    gold = np.round(np.linspace(5, 0, n) + rng.normal(0, 0.5, n))  # integers: many ties
    return e1, e2, gold


def test_sts_metrics_match_scipy_on_hand_made_embeddings() -> None:
    e1, e2, gold = _hand_made()
    predicted = {
        "cosine": (e1 * e2).sum(1) / np.linalg.norm(e1, axis=1) / np.linalg.norm(e2, axis=1),
        "manhattan": -np.abs(e1 - e2).sum(1),
        "euclidean": -np.sqrt(((e1 - e2) ** 2).sum(1)),
        "dot": (e1 * e2).sum(1),
    }
    expected = {}
    for fn, scores in predicted.items():
        expected[f"pearson_{fn}"] = pearsonr(gold, scores).statistic
        expected[f"spearman_{fn}"] = spearmanr(gold, scores).statistic
    expected["pearson_max"] = max(expected[f"pearson_{fn}"] for fn in predicted)
    expected["spearman_max"] = max(expected[f"spearman_{fn}"] for fn in predicted)

    got = sts_metrics(e1.astype(np.float32), e2.astype(np.float32), gold)
    assert list(got) == list(expected)  # same keys, same order (cosine, manhattan, euclidean, dot, max)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-6), key
    torch_got = sts_metrics(torch.from_numpy(e1), torch.from_numpy(e2), torch.from_numpy(gold))
    assert torch_got == pytest.approx(sts_metrics(e1, e2, gold), abs=1e-12)


def test_sts_evaluator_scores_every_similarity_function_by_default() -> None:
    assert sorted(STS_FNS) == sorted(SIMILARITY_FUNCTIONS) and len(STS_FNS) == len(SIMILARITY_FUNCTIONS)


def test_sts_metrics_single_function_has_no_max_like_sentence_transformers() -> None:
    e1, e2, gold = _hand_made()
    assert set(sts_metrics(e1, e2, gold, fns=["COS_SIM"])) == {"pearson_cosine", "spearman_cosine"}
    assert set(sts_metrics(e1, e2, gold, fns="dot")) == {"pearson_dot", "spearman_dot"}


def test_constant_predictions_give_nan_and_max_skips_it() -> None:
    e1 = np.random.default_rng(5).standard_normal((10, 4))
    gold = np.arange(10.0)
    # e2 == e1: cosine is 1, the distances 0 for every pair; only dot (‖e1‖²) still varies.
    got = sts_metrics(e1, e1.copy(), gold)
    for fn in ("cosine", "manhattan", "euclidean"):
        assert math.isnan(got[f"pearson_{fn}"]) and math.isnan(got[f"spearman_{fn}"])
    assert got["pearson_max"] == got["pearson_dot"] and not math.isnan(got["pearson_max"])
    assert got["spearman_max"] == got["spearman_dot"]
    all_nan = sts_metrics(e1, e1.copy(), gold, fns=("cosine", "euclidean"))
    assert math.isnan(all_nan["pearson_max"]) and math.isnan(all_nan["spearman_max"])


def test_sts_metrics_input_errors() -> None:
    e = np.ones((3, 2))
    with pytest.raises(ValueError, match="at least 2"):
        sts_metrics(e[:1], e[:1], [1.0])
    with pytest.raises(ValueError, match="3 embedding pairs but 2 gold"):
        sts_metrics(e, e, [1.0, 2.0])
    with pytest.raises(ValueError, match=r"gold_scores\[1\] = nan"):
        sts_metrics(e, e, [1.0, float("nan"), 2.0])
    with pytest.raises(ValueError, match="undefined"):
        sts_metrics(e, e, [2.0, 2.0, 2.0])
    with pytest.raises(ValueError, match=r"\(3, 2\) and \(3, 3\)"):
        sts_metrics(e, np.ones((3, 3)), [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="unknown similarity function"):
        sts_metrics(e, e, [1.0, 2.0, 3.0], fns=["cosine", "jaccard"])


def test_mse_metric_closed_form() -> None:
    teacher = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    student = teacher + np.array([[0.1, -0.1], [0.3, 0.0]], dtype=np.float32)
    expected = -(0.01 + 0.01 + 0.09 + 0.0) / 4 * 100
    assert mse_metric(teacher, student)["negative_mse"] == pytest.approx(expected, abs=1e-5)
    assert mse_metric(torch.from_numpy(teacher), torch.from_numpy(teacher)) == {"negative_mse": 0.0}
    with pytest.raises(ValueError, match=r"\(2, 2\).*\(2, 1\)"):
        mse_metric(teacher, student[:, :1])


def test_triplet_accuracy_closed_form_and_ties() -> None:
    a = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    p = np.array([[1.0, 0.1], [0.0, 1.0], [1.0, 1.0], [0.0, 2.0]])
    n = np.array([[0.0, 1.0], [1.0, 0.2], [1.0, 1.0], [1.0, 0.0]])
    # wins, loses, tie (same vector: not a win), wins
    assert triplet_accuracy(a, p, n) == 0.5
    assert triplet_accuracy(a, p, n, "euclidean") == 0.5
    assert triplet_accuracy(a, p, n, margin=0.5) == 0.5  # the two wins are by 0.995 and 1
    assert triplet_accuracy(a, p, n, margin=0.999) == 0.25
    with pytest.raises(ValueError, match="share a shape"):
        triplet_accuracy(a, p, n[:2])


# --------------------------------------------------------------------------- against sentence-transformers


def test_sts_evaluator_matches_sentence_transformers(st_models, capsys: pytest.CaptureFixture[str]) -> None:
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    model, _ = st_models
    s1, s2, scores = _sts_data()
    reference = EmbeddingSimilarityEvaluator(
        s1, s2, scores, name="sts-dev", similarity_fn_names=["cosine", "euclidean", "manhattan", "dot"]
    )(model)
    ours_eval = STSEvaluator(s1, s2, scores, name="sts-dev")
    capsys.readouterr()
    ours = ours_eval(model)
    assert capsys.readouterr() == ("", "")  # evaluators never print

    assert (
        set(ours)
        == set(reference)
        == {
            f"sts-dev_{stat}_{fn}"
            for stat in ("pearson", "spearman")
            for fn in ("cosine", "manhattan", "euclidean", "dot", "max")
        }
    )
    for key, value in reference.items():
        assert ours[key] == pytest.approx(value, abs=1e-6), key
    assert ours_eval.primary_metric == "sts-dev_spearman_cosine"
    assert all(isinstance(v, float) for v in ours.values())
    # The test data must not be degenerate: the model has some signal on it.
    assert not math.isnan(ours["sts-dev_spearman_cosine"])


def test_mse_evaluator_matches_sentence_transformers(st_models) -> None:
    from sentence_transformers.sentence_transformer.evaluation import MSEEvaluator as STMSEEvaluator

    student, teacher = st_models
    sentences = list(dict.fromkeys(_sts_data()[0] + _sts_data()[1]))
    reference = STMSEEvaluator(sentences, sentences, teacher_model=teacher, name="mse")(student)
    evaluator = MSEEvaluator(sentences, teacher=teacher, name="mse")
    ours = evaluator(student)
    assert set(ours) == set(reference) == {"mse_negative_mse"}
    assert ours["mse_negative_mse"] == pytest.approx(reference["mse_negative_mse"], rel=1e-5)
    assert evaluator.primary_metric == "mse_negative_mse"
    # Precomputed targets give the same number.
    again = MSEEvaluator(sentences, teacher_embeddings=evaluator.teacher_embeddings)(student)
    assert again["mse_negative_mse"] == pytest.approx(ours["mse_negative_mse"], abs=1e-9)


def test_triplet_evaluator_matches_sentence_transformers(st_models) -> None:
    from sentence_transformers.sentence_transformer.evaluation import TripletEvaluator as STTripletEvaluator

    model, _ = st_models
    rng = np.random.default_rng(6)
    s1, s2, _ = _sts_data()
    anchors, positives = s1[:40], s2[:40]
    negatives = [s2[int(i)] for i in rng.integers(0, len(s2), 40)]
    fns = ["cosine", "dot", "euclidean", "manhattan"]
    reference = STTripletEvaluator(anchors, positives, negatives, name="nli", similarity_fn_names=fns)(model)
    ours = TripletEvaluator(anchors, positives, negatives, name="nli", fns=fns)(model)
    assert set(ours) == set(reference) == {f"nli_{fn}_accuracy" for fn in [*fns, "max"]}
    for key, value in reference.items():
        assert ours[key] == pytest.approx(value, abs=1e-6), key  # theirs is a float32 mean

    single = TripletEvaluator(anchors, positives, negatives, name="nli")
    single_ref = STTripletEvaluator(anchors, positives, negatives, name="nli", similarity_fn_names=["cosine"])
    assert single(model) == pytest.approx(single_ref(model), abs=1e-6)
    assert set(single(model)) == {"nli_cosine_accuracy"}
    assert single.primary_metric == "nli_cosine_accuracy"


# --------------------------------------------------------------------------- evaluator behaviour


class CountingEncoder:
    """A deterministic encoder that records every batch it is asked to encode."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, texts: list[str], batch_size: int = 32) -> torch.Tensor:
        self.calls.append(list(texts))
        rows = [[len(t), t.count("a"), t.count("e") + 1.0, sum(map(ord, t)) % 17] for t in texts]
        return torch.tensor(rows, dtype=torch.float32)  # a tensor, as some encoders return


def test_sts_evaluator_encodes_each_sentence_once() -> None:
    s1, s2, scores = _sts_data()
    encoder = CountingEncoder()
    evaluator = STSEvaluator(s1, s2, scores, name="toy")
    got = evaluator(encoder)
    assert len(encoder.calls) == 1
    assert sorted(encoder.calls[0]) == sorted(set(s1) | set(s2)) and len(set(s1) | set(s2)) < 2 * len(s1)
    # Same numbers as encoding both columns in full.
    enc = CountingEncoder()
    direct = sts_metrics(enc.encode(s1), enc.encode(s2), scores)
    assert got == pytest.approx({f"toy_{k}": v for k, v in direct.items()}, abs=1e-12)


def test_sts_evaluator_validation_messages() -> None:
    with pytest.raises(ValueError, match="got 3, 2 and 3"):
        STSEvaluator(["a", "b", "c"], ["a", "b"], [1, 2, 3])
    with pytest.raises(ValueError, match=r"scores\[2\] = 'x' is not a finite number"):
        STSEvaluator(["a", "b", "c"], ["d", "e", "f"], [1.0, 2.0, "x"])
    with pytest.raises(ValueError, match=r"scores\[0\] = inf"):
        STSEvaluator(["a", "b"], ["d", "e"], [float("inf"), 2.0])
    with pytest.raises(ValueError, match=r"scores\[1\] = None"):
        STSEvaluator(["a", "b"], ["d", "e"], [1.0, None])
    with pytest.raises(ValueError, match="at least 2 scored pairs, got 1"):
        STSEvaluator(["a"], ["b"], [1.0])
    with pytest.raises(TypeError, match=r"sentences2\[1\] is a int"):
        STSEvaluator(["a", "b"], ["c", 7], [1.0, 2.0])
    with pytest.raises(ValueError, match="unknown similarity function"):
        STSEvaluator(["a", "b"], ["c", "d"], [1.0, 2.0], fns=["cosinus"])


def test_sts_evaluator_name_and_primary_metric() -> None:
    s1, s2, scores = ["a b", "c d", "e f"], ["a b c", "x", "e"], [4.0, 0.5, 3.0]
    assert STSEvaluator(s1, s2, scores).primary_metric == "sts-dev_spearman_cosine"
    unnamed = STSEvaluator(s1, s2, scores, name="", fns=["euclidean", "dot"])
    assert unnamed.primary_metric == "spearman_euclidean"
    assert set(unnamed(CountingEncoder())) == {
        f"{stat}_{fn}" for stat in ("pearson", "spearman") for fn in ("euclidean", "dot", "max")
    }


def test_from_dataset_dict_and_datasets() -> None:
    import datasets

    columns = {"sentence1": ["a b", "c d", "e f"], "sentence2": ["a b c", "x", "e"], "score": [4.0, 0.5, 3.0]}
    from_dict = STSEvaluator.from_dataset(columns, name="d")
    from_ds = STSEvaluator.from_dataset(datasets.Dataset.from_dict(columns), name="d", batch_size=8)
    assert from_ds.batch_size == 8
    assert from_dict(CountingEncoder()) == from_ds(CountingEncoder())
    with pytest.raises(KeyError, match="has columns"):
        STSEvaluator.from_dataset({"sentence1": [], "sentence2": []})


def test_mse_evaluator_checks() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        MSEEvaluator(["a"])
    with pytest.raises(ValueError, match="exactly one"):
        MSEEvaluator(["a"], teacher_embeddings=np.ones((1, 2)), teacher=CountingEncoder())
    with pytest.raises(ValueError, match=r"\(3, 2\) for 2 sentences"):
        MSEEvaluator(["a", "b"], teacher_embeddings=np.ones((3, 2)))
    teacher = CountingEncoder()
    evaluator = MSEEvaluator(["a", "bb"], teacher=teacher, name="distill")
    assert len(teacher.calls) == 1  # computed once, at construction
    assert evaluator(teacher) == {"distill_negative_mse": -0.0}
    evaluator(teacher)
    assert len(teacher.calls) == 3  # one call per evaluation, for the student only
    with pytest.raises(ValueError, match=r"teacher has shape \(2, 4\) but student has shape \(2, 1\)"):
        evaluator(lambda texts: np.ones((len(texts), 1)))


def test_triplet_evaluator_checks() -> None:
    with pytest.raises(ValueError, match="got 2, 1 and 2"):
        TripletEvaluator(["a", "b"], ["c"], ["d", "e"])
    with pytest.raises(TypeError, match=r"negatives\[0\] is a bytes"):
        TripletEvaluator(["a"], ["c"], [b"d"])
    ev = TripletEvaluator(["aaa"], ["aab"], ["xyz"], name="t", fns=["euclidean"])
    assert ev.primary_metric == "t_euclidean_accuracy"


def test_format_metrics_table() -> None:
    metrics = {
        "sts-dev_pearson_cosine": 0.81234,
        "sts-dev_spearman_cosine": 0.8,
        "sts-dev_pearson_euclidean": float("nan"),
        "sts-dev_spearman_euclidean": float("nan"),
        "sts-dev_pearson_max": 0.81234,
        "sts-dev_spearman_max": 0.8,
        "mse_negative_mse": -50.1349,
    }
    text = format_metrics(metrics)
    lines = text.splitlines()
    assert lines[0].split() == ["evaluator", "function", "pearson", "spearman"]
    assert lines[1].split() == ["sts-dev", "cosine", "0.8123", "0.8000"]
    assert lines[2].split() == ["sts-dev", "euclidean", "nan", "nan"]
    assert lines[3].split() == ["sts-dev", "max", "0.8123", "0.8000"]
    assert lines[4] == ""
    assert lines[6].split() == ["mse_negative_mse", "-50.1349"]
    assert format_metrics({"pearson_dot": 0.5}).splitlines() == [
        "function  pearson  spearman",
        "dot        0.5000         -",
    ]
    assert format_metrics({}) == ""


def test_format_metrics_explains_negative_mse():
    """#15 point 9: "mse_negative_mse −0.0908" beside a training loss of 0.0011 puzzled attendees."""
    from workbench.evaluation import format_metrics

    text = format_metrics({"mse_negative_mse": -0.0908, "sts-dev_spearman_cosine": 0.85})
    assert "mse_negative_mse" in text and "−100 × the mean squared error" in text
    assert "mean squared" not in format_metrics({"spearman_cosine": 0.8})


def test_a_long_evaluation_shows_a_progress_bar_but_not_inside_training(capsys):
    from workbench.encoding import PROGRESS_ABOVE, progress_bars

    pairs = PROGRESS_ABOVE // 2 + 100  # both sides distinct: more texts than the threshold
    s1 = [f"first sentence {i}" for i in range(pairs)]
    s2 = [f"second sentence {i}" for i in range(pairs)]
    scores = [float(i % 5) for i in range(pairs)]
    calls: list[int] = []

    def encode(texts):
        calls.append(len(texts))
        return np.array([[len(t), t.count("1") + 1.0, t.count("2") + 1.0] for t in texts])

    evaluator = STSEvaluator(s1, s2, scores, name="sts-x")
    shown = evaluator(encode)
    assert calls == [512] * (2 * pairs // 512) + [2 * pairs % 512]  # in chunks, for the bar
    assert "sts-x: encoding" in capsys.readouterr().err
    calls.clear()
    with progress_bars(False):  # what the trainer's evaluations run under
        quiet = evaluator(encode)
    assert calls == [2 * pairs] and "sts-x: encoding" not in capsys.readouterr().err
    assert quiet == shown  # the same numbers either way
    calls.clear()
    STSEvaluator(s1[:10], s2[:10], scores[:10])(encode)
    assert calls == [20] and capsys.readouterr().err == ""  # a short one: no bar
