"""Retrieval evaluation: hand-checked rankings, ties and chunking, bad input, and agreement with
sentence-transformers' InformationRetrievalEvaluator on Multi30k caption retrieval."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from workbench.data import sample_file
from workbench.retrieval import (
    InformationRetrievalEvaluator,
    caption_retrieval,
    caption_retrieval_task,
    rank_top_k,
    retrieval_metrics,
)

# ----- hand-checked cases ------------------------------------------------------------------------

# Five documents on the axes; a query's cosine with d_i is its i-th weight over its norm, so the
# weights fix the ranking: q1 and q3 rank d1..d5, q2 ranks d1, d2, d4, d3, d5.
DOCS = {f"d{i + 1}": f"doc {i + 1}" for i in range(5)}
VECTORS = {f"doc {i + 1}": np.eye(5)[i] for i in range(5)}
VECTORS.update({"query 1": np.array([5.0, 4, 3, 2, 1]), "query 2": np.array([5.0, 4, 2, 3, 1]),
                "query 3": np.array([5.0, 4, 3, 2, 1])})
QUERIES = {"q1": "query 1", "q2": "query 2", "q3": "query 3"}
RELEVANT = {"q1": {"d1"}, "q2": {"d2", "d3"}, "q3": {"d5"}}  # ranks: q1 1; q2 2 and 4; q3 5


def lookup(texts):
    return np.stack([VECTORS[t] for t in texts])


def dcg(*ranks: int) -> float:
    return sum(1.0 / math.log2(r + 1) for r in ranks)


def test_hand_checked_ranks_give_known_metrics():
    ev = InformationRetrievalEvaluator(QUERIES, DOCS, RELEVANT, name="toy", accuracy_at_k=[1, 3, 5],
                                       precision_recall_at_k=[1, 3], mrr_at_k=[3, 10], ndcg_at_k=[3, 10],
                                       map_at_k=[3, 100])
    m = ev(lookup)
    expected = {
        "toy_cosine_accuracy@1": 1 / 3, "toy_cosine_accuracy@3": 2 / 3, "toy_cosine_accuracy@5": 1.0,
        "toy_cosine_precision@1": 1 / 3, "toy_cosine_precision@3": (1 / 3 + 1 / 3 + 0) / 3,
        "toy_cosine_recall@1": 1 / 3, "toy_cosine_recall@3": (1 + 1 / 2 + 0) / 3,
        "toy_cosine_ndcg@3": (1 + dcg(2) / dcg(1, 2) + 0) / 3,
        "toy_cosine_ndcg@10": (1 + dcg(2, 4) / dcg(1, 2) + dcg(5)) / 3,
        "toy_cosine_mrr@3": (1 + 1 / 2 + 0) / 3, "toy_cosine_mrr@10": (1 + 1 / 2 + 1 / 5) / 3,
        # AP@3 of q2: one hit (rank 2) over min(3, 2) relevant; AP@100: (1/2 + 2/4) / 2.
        "toy_cosine_map@3": (1 + (1 / 2) / 2 + 0) / 3, "toy_cosine_map@100": (1 + (1 / 2 + 2 / 4) / 2 + 1 / 5) / 3,
    }
    assert list(m) == list(expected)  # sentence-transformers' order: accuracy, precision, recall, ndcg, mrr, map
    for key, value in expected.items():
        assert m[key] == pytest.approx(value, abs=1e-12), key
    assert ev.primary_metric == "toy_cosine_ndcg@10"
    assert [ev.corpus_ids[i] for i in ev.rank(lookup)["cosine"][1]] == ["d1", "d2", "d4", "d3", "d5"]


def test_metrics_from_hits_precision_counts_k_even_past_the_corpus():
    # Two documents, k = 10: precision@10 divides by 10, recall by the relevant count.
    m = retrieval_metrics([[True, False]], [1], accuracy_at_k=[10], precision_recall_at_k=[10],
                          mrr_at_k=[10], ndcg_at_k=[10], map_at_k=[10])
    assert m == {"accuracy@10": 1.0, "precision@10": 0.1, "recall@10": 1.0, "ndcg@10": 1.0, "mrr@10": 1.0,
                 "map@10": 1.0}
    # More relevant documents than ranks shown: the ideal DCG still counts them all (up to k).
    m = retrieval_metrics([[False, True]], [3], ndcg_at_k=[5], map_at_k=[5])
    assert m["ndcg@5"] == pytest.approx(dcg(2) / dcg(1, 2, 3))
    assert m["map@5"] == pytest.approx((1 / 2) / 3)


def test_equal_scores_rank_by_ascending_id_whatever_the_chunking():
    corpus = {f"doc{i:02d}": f"text {i}" for i in (7, 3, 12, 0, 5, 9, 1)}  # ids not in order
    queries = {"q": "query"}
    constant = lambda texts: np.ones((len(texts), 4))  # noqa: E731 - every score ties
    for chunk in (1, 2, 3, 50):
        ev = InformationRetrievalEvaluator(queries, corpus, {"q": {"doc05"}}, corpus_chunk_size=chunk,
                                           accuracy_at_k=[3], precision_recall_at_k=[3], mrr_at_k=[3],
                                           ndcg_at_k=[3], map_at_k=[5])
        ranked = [ev.corpus_ids[i] for i in ev.rank(constant)["cosine"][0]]
        assert ranked == sorted(corpus)[:5], chunk
        assert ev(constant)["cosine_mrr@3"] == 0.0  # doc05 is 4th of the tied documents
        assert ev(constant)["cosine_map@5"] == pytest.approx(1 / 4)


def test_chunked_ranking_equals_one_chunk_and_a_sort():
    rng = np.random.default_rng(0)
    vectors = {f"t{i}": rng.normal(size=8) for i in range(60)}
    encoder = lambda texts: np.stack([vectors[t] for t in texts])  # noqa: E731
    queries = {i: f"t{i}" for i in range(10)}
    corpus = {100 + i: f"t{i}" for i in range(10, 60)}
    relevant = {i: {100 + 10 + (3 * i) % 50, 100 + 10 + (7 * i + 1) % 50} for i in range(10)}
    results = [InformationRetrievalEvaluator(queries, corpus, relevant, fns=["cosine", "dot", "euclidean"],
                                             corpus_chunk_size=c)(encoder) for c in (7, 50)]
    assert results[0] == results[1]
    ev = InformationRetrievalEvaluator(queries, corpus, relevant, fns=["dot"], corpus_chunk_size=9)
    q = encoder(list(queries.values())).astype(np.float32).astype(np.float64)  # as the encoder's output is read
    c = encoder(list(corpus.values())).astype(np.float32).astype(np.float64)
    expected = np.argsort(-(q @ c.T), axis=1, kind="stable")[:, :100]
    np.testing.assert_array_equal(ev.rank(encoder)["dot"], expected)


def test_rank_top_k_breaks_ties_by_rank():
    scores = np.array([[1.0, 2.0, 2.0, 2.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    assert rank_top_k(scores, 2, tie_rank=np.array([4, 3, 0, 1, 2])).tolist() == [[2, 3], [2, 3]]
    assert rank_top_k(scores, 9, tie_rank=np.arange(5)).tolist() == [[1, 2, 3, 0, 4], [0, 1, 2, 3, 4]]


# ----- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("queries", "corpus", "relevant", "message"), [
    ({"q1": "  "}, DOCS, {"q1": {"d1"}}, r"queries\['q1'\] is an empty text"),
    ({"q1": "a"}, {"d1": ""}, {"q1": {"d1"}}, r"corpus\['d1'\] is an empty text"),
    ({"q1": "a"}, DOCS, {"q1": {"d1", "d9"}}, r"relevant_docs\['q1'\] names 'd9', which is not in the corpus"),
    ({}, DOCS, {}, "queries is empty"),
    ({"q1": "a"}, {}, {"q1": {"d1"}}, "corpus is empty"),
    ({"q1": "a", "q2": "b"}, DOCS, {"q1": set()}, "none of the 2 queries has a relevant document"),
    ({"q1": "a"}, DOCS, {"q1": {"d1"}, "q7": {"d2"}}, "relevant_docs has query id 'q7', which is not in queries"),
    ({"q1": "a"}, DOCS, {"q1": "d1"}, r"relevant_docs\['q1'\] must be a set of corpus ids"),
    ({"q1": "a"}, {"d1": "x", 2: "y"}, {"q1": {"d1"}}, "corpus ids must be all strings or all integers"),
])  # fmt: skip
def test_bad_input_is_named(queries, corpus, relevant, message):
    with pytest.raises(ValueError, match=message):
        InformationRetrievalEvaluator(queries, corpus, relevant)


def test_bad_settings_and_encoders():
    with pytest.raises(ValueError, match="ndcg_at_k must hold positive integers, got 0"):
        InformationRetrievalEvaluator(QUERIES, DOCS, RELEVANT, ndcg_at_k=[10, 0])
    with pytest.raises(ValueError, match="unknown similarity function 'jaccard'"):
        InformationRetrievalEvaluator(QUERIES, DOCS, RELEVANT, fns=["jaccard"])
    with pytest.raises(TypeError, match=r"queries\['q1'\] is a int"):
        InformationRetrievalEvaluator({"q1": 3}, DOCS, {"q1": {"d1"}})
    ev = InformationRetrievalEvaluator(QUERIES, DOCS, RELEVANT)
    with pytest.raises(ValueError, match="non-finite corpus embedding .* first at corpus 2"):
        ev(lambda texts: np.array([[np.nan, 1.0] if t == "doc 3" else [1.0, 0.0] for t in texts]))
    # A query without relevant documents is skipped, as sentence-transformers does.
    ev = InformationRetrievalEvaluator({**QUERIES, "q4": "query 1"}, DOCS, RELEVANT)
    assert ev.query_ids == ["q1", "q2", "q3"]


# ----- the caption-retrieval task --------------------------------------------------------------------


def test_caption_task_on_the_sample_file():
    task = caption_retrieval_task(path=sample_file("captions"))
    images = len(task.queries)
    assert images >= 5 and len(task.corpus) == 4 * images
    for row, (image, query) in enumerate(task.queries.items()):
        docs = task.relevant_docs[image]
        asked = row % 5 + 1  # rotating: row i asks with caption column i mod 5 (from 1 in the ids)
        assert docs == {f"{image}#{c}" for c in range(1, 6) if c != asked}
        assert f"{image}#{asked}" not in task.corpus and query not in {task.corpus[d] for d in docs}
    fixed = caption_retrieval_task(path=sample_file("captions"), query_caption=0, limit=3)
    assert len(fixed.queries) == 3 and all(f"{i}#1" not in fixed.corpus for i in fixed.queries)
    assert caption_retrieval_task(path=sample_file("captions")) == task  # deterministic
    with pytest.raises(ValueError, match="unknown caption split 'tset'"):
        caption_retrieval_task("tset")


def test_caption_task_skips_empty_captions(tmp_path: Path):
    file = tmp_path / "caps.tsv"
    file.write_text("image\tcaption1\tcaption2\tcaption3\n"
                    "a.jpg\tA dog runs.\t\tA dog is running.\n"
                    "b.jpg\tOnly one caption.\t\t\n"
                    "c.jpg\tA cat sleeps.\tA cat naps.\tA sleeping cat.\n", encoding="utf-8")
    task = caption_retrieval_task(path=file)
    assert task.queries == {"a.jpg": "A dog runs.", "c.jpg": "A sleeping cat."}  # rows 0 and 2: captions 0, 2
    assert task.relevant_docs == {"a.jpg": {"a.jpg#3"}, "c.jpg": {"c.jpg#1", "c.jpg#2"}}
    file.write_text("image\tcaption1\tcaption2\na.jpg\tx\ty\na.jpg\tu\tv\n", encoding="utf-8")
    with pytest.raises(ValueError, match="image 'a.jpg' occurs twice"):
        caption_retrieval_task(path=file)


def test_caption_task_on_test_2016(data_dir: Path):
    task = caption_retrieval_task("test_2016", data_dir)
    assert (len(task.queries), len(task.corpus)) == (957, 3828)
    assert all(len(docs) == 4 for docs in task.relevant_docs.values())
    assert "captions-test_2016.tsv" in task.source
    assert caption_retrieval("test", data_dir, limit=10).primary_metric == "caption-retrieval-test_cosine_ndcg@10"


# ----- agreement with sentence-transformers ------------------------------------------------------------


@pytest.fixture(scope="module")
def st_model(minilm_path: Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(minilm_path), device="cpu")


@pytest.fixture(scope="module")
def wb_model(minilm_path: Path):
    from workbench import load_model

    return load_model(str(minilm_path), device="cpu")


def st_metrics(task, model, name: str) -> tuple[dict[str, float], str]:
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator as STIR
    from sentence_transformers.util import cos_sim, dot_score

    ev = STIR(task.queries, task.corpus, {q: set(d) for q, d in task.relevant_docs.items()}, name=name,
              score_functions={"cosine": cos_sim, "dot": dot_score}, main_score_function="cosine",
              write_csv=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ev(model), ev.primary_metric


def assert_same_metrics(ours: dict[str, float], theirs: dict[str, float]) -> None:
    assert list(ours) == list(theirs)
    for key in theirs:
        assert ours[key] == pytest.approx(theirs[key], abs=1e-4), key


def check_against_st(task, wb_model, st_model, name: str, *, their_embeddings: bool) -> dict[str, float]:
    theirs, primary = st_metrics(task, st_model, name)
    ev = task.evaluator(name=name, fns=["cosine", "dot"], batch_size=64)
    assert ev.primary_metric == primary
    ours = ev(wb_model)  # our model and our evaluator...
    assert_same_metrics(ours, theirs)
    if their_embeddings:  # ...and our evaluator on their model's embeddings
        assert_same_metrics(ev(st_model), theirs)
    return ours


def test_matches_sentence_transformers_on_a_caption_subset(data_dir: Path, wb_model, st_model):
    # The first 80 images of test_2016: 80 queries, 320 documents.
    task = caption_retrieval_task("test", data_dir, limit=80)
    ours = check_against_st(task, wb_model, st_model, "caption-retrieval-test", their_embeddings=False)
    assert 0.5 < ours["caption-retrieval-test_cosine_ndcg@10"] < 1.0  # a real task: neither trivial nor hopeless


@pytest.mark.slow
def test_matches_sentence_transformers_on_all_of_test_2016(data_dir: Path, wb_model, st_model):
    task = caption_retrieval_task("test", data_dir)
    check_against_st(task, wb_model, st_model, "caption-retrieval-test", their_embeddings=True)


# ----- recipes and model cards ----------------------------------------------------------------------------


def test_model_card_tables_a_retrieval_evaluation():
    from workbench.models.card import model_card

    class StandIn:
        dim, max_seq_length, similarity_fn_name = 8, 16, "cosine"

    ir = {"caption-retrieval-test_cosine_accuracy@1": 0.61, "caption-retrieval-test_cosine_ndcg@10": 0.5234,
          "caption-retrieval-test_cosine_map@100": 0.41}
    card = model_card(StandIn(), evaluations={"sts-test": {"sts-test_spearman_cosine": 0.8}, "caption-retrieval-test": ir},
                      evaluators={"caption-retrieval-test": "InformationRetrievalEvaluator on 957 images"})
    block = card.split("#### Information Retrieval\n")[1].split("\n## ")[0]
    assert block.startswith("\n* Dataset: `caption-retrieval-test`\n"
                            "* Evaluated with <code>InformationRetrievalEvaluator</code> on 957 images\n")
    assert "| **cosine_ndcg@10** | **0.5234** |" in block and "| cosine_accuracy@1 | 0.6100 |" in block
    assert "type: \"information-retrieval\"" in card and "name: \"Cosine NDCG@10\"" in card
    assert "* Evaluated with" not in card.split("#### Information Retrieval")[0]  # none named for sts-test


@pytest.mark.slow  # a 2-step distillation: ~40 s on a busy 2-core CPU
def test_a_recipe_runs_caption_retrieval_on_its_final_model(tmp_path: Path, monkeypatch, data_dir: Path):
    from workbench import load_model
    from workbench.recipes import load_recipe, run_recipe

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    recipe = load_recipe("offline-a-distill").with_(
        student={"keep_layers": [0]}, data={"limit": 80}, train={"max_steps": 2, "batch_size": 16},
        eval={"mse_sentences": 20, "sts_dev": False, "sts_test": False, "caption_retrieval": True,
              "caption_retrieval_limit": 30})
    result = run_recipe(recipe, run_dir=tmp_path / "run", device="cpu")
    key = "caption-retrieval-test_cosine_ndcg@10"
    # What the run reports is what its saved model scores on the same 30 images.
    again = caption_retrieval("test", data_dir, limit=30)(load_model(result.model_path, device="cpu"))
    assert result.metrics[key] == pytest.approx(again[key], abs=1e-5)
    card = (Path(result.model_path) / "README.md").read_text(encoding="utf-8")
    block = card.split("* Dataset: `caption-retrieval-test`\n")[1].split("\n#### ")[0].split("\n## ")[0]
    assert block.startswith("* Evaluated with <code>InformationRetrievalEvaluator</code> on caption retrieval test from ")
    assert f"| **cosine_ndcg@10** | **{result.metrics[key]:.4f}** |" in block
    assert block.count("\n| ") == 1 + 15  # the header and the 15 metrics (the rule line is "|:--|:--|")
    assert "* Dataset: `mse`\n* Evaluated with <code>MSEEvaluator</code>" in card
    with pytest.raises(ValueError, match="caption_retrieval_limit must be >= 1"):
        recipe.with_(eval={"caption_retrieval_limit": 0})
