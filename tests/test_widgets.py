"""Widgets without a browser: drive the controls like a person, assert on the figures' numbers."""

from __future__ import annotations

import html
import threading
import zlib

import numpy as np
import plotly.graph_objects as go
import pytest
from plotly.callbacks import Points
from scipy.spatial.distance import cdist

from workbench.figures import projection_figure, similarity_figure
from workbench.projection import Projection
from workbench.similarity import paraphrase_pairs, similarity_matrix, top_k
from workbench.widgets import (
    CompareHeatmaps,
    CompareProjector,
    ParaphraseMiner,
    Projector,
    SemanticSearch,
    SimilarityHeatmap,
)

SENTENCES = [
    "a man plays the guitar",
    "a person plays an instrument",
    "a woman slices an onion",
    "someone cuts vegetables",
]


def bow(texts: list[str], dim: int = 64) -> np.ndarray:
    """Hashed bag of words: a cheap, deterministic encoder."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in text.lower().split():
            out[row, zlib.crc32(word.encode()) % dim] += 1.0
    return out


def noise(texts: list[str], dim: int = 16) -> np.ndarray:
    """One Gaussian vector per text, seeded by the text: no ties between neighbours."""
    return np.stack([np.random.default_rng(zlib.crc32(t.encode())).normal(size=dim) for t in texts])


class Counting:
    """An encoder that records which texts it was asked to encode."""

    def __init__(self, fn=bow, fail_on: str | None = None) -> None:
        self.fn, self.fail_on, self.seen = fn, fail_on, []

    def __call__(self, texts: list[str]) -> np.ndarray:
        if self.fail_on is not None and any(self.fail_on in t for t in texts):
            raise RuntimeError(f"cannot encode {self.fail_on!r}")
        self.seen += list(texts)
        return self.fn(texts)


TEXTS = [f"{w} {i}" for i, w in enumerate(["red apple", "green pear", "blue sky", "grey cloud"] * 15)]


# ----- heatmaps --------------------------------------------------------------------------------
def test_heatmap_equals_the_core_after_typing_and_switching_fn():
    enc = Counting()
    w = SimilarityHeatmap(enc, SENTENCES)
    fig, trace = w.fig, w.fig.data[0]
    np.testing.assert_allclose(trace.z, similarity_matrix(bow(SENTENCES)), atol=1e-6)
    assert (trace.zmin, trace.zmax) == (-1.0, 1.0)

    typed = SENTENCES[:3] + ["a man slices the guitar", "the sky is blue"]
    enc.seen.clear()
    w.text.value = "\n".join(typed) + "\n\n"  # blank lines are ignored
    assert sorted(enc.seen) == sorted(typed[3:])  # only the new lines were encoded
    np.testing.assert_allclose(trace.z, similarity_matrix(bow(typed)), atol=1e-6)
    assert (trace.zmin, trace.zmax) == (-1.0, 1.0)  # fixed, whatever the data

    for fn in ("dot", "euclidean", "manhattan", "cosine"):
        w.fn.value = fn
        np.testing.assert_allclose(trace.z, similarity_matrix(bow(typed), fn=fn), atol=1e-6)
        if fn in ("euclidean", "manhattan"):
            assert trace.zmax == 0 and trace.zmin == pytest.approx(trace.z.min())
            assert "from the data" in fig.layout.title.text
    assert w.fig is fig and w.fig.data[0] is trace  # updated in place
    for i, a in enumerate(typed):
        for j, b in enumerate(typed):
            assert a in trace.text[i][j] and b in trace.text[i][j]
    assert w.errors == []


def test_heatmap_model_picker_and_query_vs_corpus():
    other = lambda texts: bow(texts, dim=7)  # noqa: E731 - a second "model"
    w = SimilarityHeatmap(models={"bow64": bow, "bow7": other}, sentences=SENTENCES)
    w.model.value = "bow7"
    np.testing.assert_allclose(w.fig.data[0].z, similarity_matrix(other(SENTENCES)), atol=1e-6)
    assert "bow7" in w.fig.layout.title.text

    queries, corpus = ["guitar music", "cooking food"], SENTENCES + ["the sky"]
    q = SimilarityHeatmap(bow, queries, corpus=corpus, fn="dot")
    np.testing.assert_allclose(
        q.fig.data[0].z, similarity_matrix(bow(queries), bow(corpus), fn="dot"), atol=1e-6
    )
    q.corpus_text.value = "\n".join(corpus[:2])
    assert q.fig.data[0].z.shape == (2, 2)
    assert queries[1] in q.fig.data[0].text[1][0] and corpus[0] in q.fig.data[0].text[1][0]


def test_compare_heatmaps_difference_is_a_minus_b():
    student = lambda texts: bow(texts, dim=5)  # noqa: E731
    w = CompareHeatmaps(bow, student, SENTENCES, labels=("teacher", "student"))
    a, b, d = (np.asarray(t.z) for t in w.fig.data)
    np.testing.assert_allclose(a, similarity_matrix(bow(SENTENCES)), atol=1e-6)
    np.testing.assert_allclose(b, similarity_matrix(student(SENTENCES)), atol=1e-6)
    np.testing.assert_allclose(d, a - b, atol=1e-6)
    assert (w.fig.data[0].zmin, w.fig.data[0].zmax) == (w.fig.data[1].zmin, w.fig.data[1].zmax) == (-1, 1)
    assert w.fig.data[2].zmin == -w.fig.data[2].zmax > -np.inf  # centred at 0
    w.fn.value = "euclidean"
    assert w.fig.data[0].zmin == w.fig.data[1].zmin == pytest.approx(min(w.a.min(), w.b.min()))
    np.testing.assert_allclose(w.fig.data[2].z, w.a - w.b, atol=1e-6)


def test_compare_heatmaps_difference_scale_is_fixed_so_closer_looks_paler():
    far = CompareHeatmaps(bow, lambda texts: bow(texts, dim=3), SENTENCES)
    near = CompareHeatmaps(bow, lambda texts: bow(texts) + 0.01, SENTENCES)
    assert np.abs(far.diff).max() > 5 * np.abs(near.diff).max() > 0  # the two really differ
    for w in (far, near):  # one scale for both: it does not follow the data
        assert (w.fig.data[2].zmin, w.fig.data[2].zmax) == (-0.25, 0.25)
        largest = float(np.abs(w.diff).max())
        assert f"difference colours fixed at ±0.25; largest difference here {largest:.2f}" in w.fig.layout.title.text
    assert ("beyond the scale" in far.fig.layout.title.text) == (np.abs(far.diff).max() > 0.25)
    assert "beyond the scale" not in near.fig.layout.title.text
    far.fn.value = "euclidean"  # no natural bound: 1/8 of the A/B colour range
    span = far.fig.data[0].zmax - far.fig.data[0].zmin
    assert far.fig.data[2].zmax == pytest.approx(span / 8) and far.fig.data[2].zmin == pytest.approx(-span / 8)
    assert "= −distance (0: identical)" in far.fig.layout.title.text
    fixed = CompareHeatmaps(bow, bow, SENTENCES, diff_range=0.1)
    assert (fixed.fig.data[2].zmin, fixed.fig.data[2].zmax) == (-0.1, 0.1)
    for bad in (0, -1.0, float("nan"), "0.2", True):
        with pytest.raises(ValueError, match=r"^CompareHeatmaps: diff_range must be a positive number"):
            CompareHeatmaps(bow, bow, SENTENCES, diff_range=bad)


def test_compare_heatmaps_numbers_the_axes_and_lists_the_sentences():
    w = CompareHeatmaps(bow, bow, SENTENCES, labels=("teacher", "a student with a very long name indeed, cut"))
    n = len(SENTENCES)
    for axis in ("xaxis", "yaxis", "xaxis2", "yaxis2", "xaxis3", "yaxis3"):
        assert list(w.fig.layout[axis].ticktext) == [str(k + 1) for k in range(n)]
    assert w.key.value.count("<li>") == n and all(html.escape(t) in w.key.value for t in SENTENCES)
    titles = [a.text for a in w.fig.layout.annotations]
    assert titles[0] == "teacher" and len(titles[1]) <= 34 and titles[1].endswith("…")
    assert titles[2] == "teacher − a student with…" and len(titles[2]) <= 34
    w.text.value = "one\ntwo"
    assert w.key.value.count("<li>") == 2 and list(w.fig.layout.yaxis.ticktext) == ["1", "2"]


def test_a_failing_callback_is_shown_and_kept():
    w = SimilarityHeatmap(Counting(fail_on="boom"), SENTENCES)
    z_before = np.asarray(w.fig.data[0].z).copy()
    w.text.value = "fine\nboom"
    assert len(w.errors) == 1 and "cannot encode 'boom'" in str(w.errors[0])
    shown = "".join(o["text"] for o in w.log.output.outputs)
    assert "RuntimeError" in shown and "cannot encode 'boom'" in shown
    np.testing.assert_array_equal(w.fig.data[0].z, z_before)  # the last good picture stays
    w.text.value = "fine\ngood"
    assert w.fig.data[0].z.shape == (2, 2) and len(w.errors) == 1


def test_heatmap_draws_what_the_report_figure_draws():
    w = SimilarityHeatmap(bow, SENTENCES[:3], fn="dot")
    fig = similarity_figure(w.z, SENTENCES[:3], title=f"dot similarity · {w.model_name}", fn="dot")
    for key in ("zmin", "zmax", "colorscale", "text", "hovertemplate", "texttemplate"):
        assert w.fig.data[0][key] == fig.data[0][key], key
    np.testing.assert_allclose(w.fig.data[0].z, fig.data[0].z)
    assert w.fig.layout.title.text == fig.layout.title.text and w.fig.layout.height == fig.layout.height
    assert w.fig.layout.yaxis.ticktext == fig.layout.yaxis.ticktext


# ----- projector -------------------------------------------------------------------------------
def test_projector_draws_what_the_report_figure_draws():
    labels = [t.split()[1] for t in TEXTS]
    w = Projector(noise, TEXTS, labels=labels, method="pca", background=False)
    fig = projection_figure(w.coords, TEXTS, labels)
    shown = w.fig.data[:-2]  # then the "matches" and "selected" overlays
    assert [t.name for t in shown] == [t.name for t in fig.data]
    for ours, theirs in zip(shown, fig.data, strict=True):
        assert list(ours.customdata) == list(theirs.customdata) and ours.text == theirs.text
        np.testing.assert_allclose(np.c_[ours.x, ours.y], np.c_[theirs.x, theirs.y])
        assert type(ours) is type(theirs) and ours.marker == theirs.marker


def _points(w: Projector) -> dict[int, tuple[str, tuple[float, ...]]]:
    """index -> (hover text, coordinates) over the label traces."""
    out = {}
    for trace in w.fig.data[:-2]:
        coords = zip(
            *(c for c in (trace.x, trace.y, getattr(trace, "z", None)) if c is not None), strict=True
        )
        for i, text, xyz in zip(trace.customdata, trace.text, coords, strict=True):
            out[int(i)] = (text, xyz)
    return out


def test_projector_points_hover_and_sliders():
    labels = [t.split()[1] for t in TEXTS]
    w = Projector(noise, TEXTS, labels=labels, background=False, seed=0, n_epochs=100)
    assert w.shown == "umap" and w.errors == []
    assert {t.name for t in w.fig.data[:-2]} == {"apple", "pear", "sky", "cloud"}
    assert [t.name for t in w.fig.data[-2:]] == ["matches (0)", "selected"]
    points = _points(w)
    assert sorted(points) == list(range(len(TEXTS))) and all(points[i][0] == TEXTS[i] for i in points)
    for trace in w.fig.data[:-2]:  # one trace per label value: the legend works
        assert {labels[i] for i in trace.customdata} == {trace.name}

    graph, coords, runs = w.projection.knn(), w.coords.copy(), w.umap_runs
    w.min_dist.value = 0.6
    assert w.projection.knn_computations == 1 and w.projection.knn() is graph
    assert w.umap_runs == runs + 1 and not np.allclose(w.coords, coords)
    np.testing.assert_allclose(np.array([p[1] for _, p in sorted(_points(w).items())]), w.coords)
    w.n_neighbors.value = 5
    assert w.layout_params().n_neighbors == 5 and w.projection.knn_computations == 1
    assert "n_neighbors=5" in w.status.value
    w.dim_control.value = 3
    assert w.coords.shape == (len(TEXTS), 3) and isinstance(w.fig.data[0], go.Scatter3d)
    w.method_control.value = "pca"
    np.testing.assert_array_equal(w.coords, w.projection.pca(3))


def test_projector_search_and_click_list_true_neighbours():
    w = Projector(noise, TEXTS, method="pca", background=False, k=5)
    w.search.value = "SKY"
    expected = [i for i, t in enumerate(TEXTS) if "sky" in t]
    assert w.matches.tolist() == expected
    matches = w.fig.data[-2]
    assert list(matches.customdata) == expected and matches.name == f"matches ({len(expected)})"
    np.testing.assert_allclose(matches.x, w.coords[expected, 0])

    trace = w.fig.data[0]
    trace._dispatch_on_click(Points(point_inds=[3], trace_index=0), None)  # what a click does
    clicked = int(trace.customdata[3])
    emb = noise(TEXTS)
    sims = 1 - cdist(emb, emb, "cosine")
    np.fill_diagonal(sims, -np.inf)
    assert w.selected == clicked
    assert w.neighbor_indices.tolist() == np.argsort(-sims[clicked])[:5].tolist()
    for j in w.neighbor_indices:
        assert TEXTS[j] in w.neighbors.value and f"{sims[clicked, j]:.4f}" in w.neighbors.value
    assert list(w.fig.data[-1].customdata) == [clicked, *w.neighbor_indices]


def test_projector_shows_pca_at_once_and_umap_from_a_thread(monkeypatch):
    release = threading.Event()
    slow_umap = Projection.umap

    def held_umap(self, *args, **kwargs):
        assert release.wait(timeout=60)
        return slow_umap(self, *args, **kwargs)

    monkeypatch.setattr(Projection, "umap", held_umap)
    w = Projector(noise, TEXTS, seed=0, n_epochs=50)  # background=True: returns while UMAP waits
    assert w.shown == "pca" and "computing UMAP" in w.status.value and not w.wait(timeout=0.05)
    np.testing.assert_array_equal(w.coords, w.projection.pca(2))
    release.set()
    assert w.wait(timeout=120) and w.shown == "umap" and w.errors == []
    assert not np.allclose(w.coords, w.projection.pca(2))
    monkeypatch.undo()
    w.projection.umap = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("layout failed"))
    w.min_dist.value = 0.9
    assert w.wait(timeout=60)
    assert [str(e) for e in w.errors] == ["layout failed"]
    assert "layout failed" in "".join(o["text"] for o in w.log.output.outputs)


def test_compare_projector_links_controls_and_selection():
    w = CompareProjector(bow, noise, TEXTS, method="pca", background=False)
    w.search.value = "pear"
    assert w.a.matches.tolist() == w.b.matches.tolist() and len(w.a.matches) == 15
    w.dim_control.value = 3
    assert w.b.coords.shape[1] == 3
    w.a.select(4)
    assert w.b.selected == 4 and len(w.b.neighbor_indices) == 10 and w.errors == []


# ----- search ----------------------------------------------------------------------------------
def test_semantic_search_matches_the_core_top_k():
    corpus = SENTENCES + ["a man plays the piano", "the guitar is old"]
    w = SemanticSearch(bow, corpus, k=3)
    w.query.value = "man plays guitar"  # what Enter does
    scores, idx = top_k(bow(["man plays guitar"]), bow(corpus), k=3)
    assert [i for _, i, _ in w.results] == idx[0].tolist()
    np.testing.assert_allclose([s for s, _, _ in w.results], scores[0], atol=1e-6)
    np.testing.assert_allclose(w.fig.data[0].x, scores[0], atol=1e-6)
    assert corpus[idx[0][0]] in w.table.value
    w.k.value = 5
    assert len(w.results) == 5 and len(w.fig.data[0].x) == 5
    w.results = []
    w.button.click()  # the Search button runs the same query again
    assert len(w.results) == 5 and w.errors == []


def test_paraphrase_miner_matches_the_core():
    corpus = SENTENCES + ["a man plays a guitar", "someone cuts the vegetables"]
    w = ParaphraseMiner(bow, corpus, top=3)
    assert w.pairs == paraphrase_pairs(bow(corpus), top_k=3, max_pairs=3)
    assert w.pairs[0][1:] in {(0, 4), (3, 5)}
    w.top.value = 5
    assert len(w.pairs) == 5 and corpus[w.pairs[0][1]] in w.table.value


def test_paraphrase_miner_takes_a_repeated_text_once():
    """#15 point 9: a column with repeated sentences gave the same sentence paired with itself at 1.0."""
    corpus = ["a man plays a guitar", "a dog runs", "a man plays a guitar", "a man plays the guitar", "a dog runs"]
    w = ParaphraseMiner(bow, corpus, top=5)
    assert all(corpus[i] != corpus[j] for _, i, j in w.pairs)
    distinct = [0, 1, 3]  # first places of the distinct texts
    expected = [(s, distinct[i], distinct[j]) for s, i, j in paraphrase_pairs(bow([corpus[k] for k in distinct]), top_k=5,
                                                                               max_pairs=5)]
    assert w.pairs == expected and len(w.pairs) == 3
    assert "2 repeated texts counted once" in w.table.value
    with pytest.raises(ValueError, match="1 distinct text"):
        ParaphraseMiner(bow, ["same", "same"])


# ----- bad input: refused at construction, naming the argument and the item -------------------
def _build(widget, texts):
    """Construct ``widget`` on ``texts`` (a cheap encoder, no background thread)."""
    if widget is SimilarityHeatmap:
        return SimilarityHeatmap(bow, texts)
    if widget == "SimilarityHeatmap.corpus":
        return SimilarityHeatmap(bow, ["a query"], corpus=texts)
    if widget is CompareHeatmaps:
        return CompareHeatmaps(bow, bow, texts)
    if widget in (Projector, CompareProjector):
        return (Projector(bow, texts, method="pca", background=False) if widget is Projector
                else CompareProjector(bow, bow, texts, method="pca", background=False))
    return widget(bow, texts)


def _name(widget):
    return "SimilarityHeatmap" if isinstance(widget, str) else widget.__name__


TEXT_WIDGETS = [
    (SimilarityHeatmap, "sentences"),
    ("SimilarityHeatmap.corpus", "corpus"),
    (CompareHeatmaps, "sentences"),
    (Projector, "texts"),
    (CompareProjector, "texts"),
    (SemanticSearch, "corpus"),
    (ParaphraseMiner, "corpus"),
]


@pytest.mark.parametrize(("widget", "arg"), TEXT_WIDGETS)
def test_widgets_refuse_an_empty_list(widget, arg):
    owner = "Projector" if widget is CompareProjector else _name(widget)
    need = "2 texts" if widget is ParaphraseMiner else "one text"
    with pytest.raises(ValueError, match=rf"^{owner} needs at least {need} in {arg}, got none$"):
        _build(widget, [])


def test_paraphrase_miner_needs_a_pair_and_heatmaps_a_non_blank_sentence():
    with pytest.raises(ValueError, match=r"^ParaphraseMiner needs at least 2 texts in corpus, got 1$"):
        ParaphraseMiner(bow, ["only one"])
    with pytest.raises(ValueError, match=r"^SimilarityHeatmap needs at least one non-blank sentence in sentences"):
        SimilarityHeatmap(bow, ["", "  "])
    with pytest.raises(ValueError, match=r"^CompareHeatmaps needs at least one non-blank sentence in sentences"):
        CompareHeatmaps(bow, bow, ["\t"])


@pytest.mark.parametrize("bad", [None, 3, 2.5, b"bytes", ["nested"]])
@pytest.mark.parametrize(("widget", "arg"), TEXT_WIDGETS)
def test_widgets_name_the_first_non_string_text(widget, arg, bad):
    """``str(None)`` would be encoded and shown as the text "None": refused, naming index and type."""
    owner = "Projector" if widget is CompareProjector else _name(widget)
    texts = ["a man plays the guitar", "a woman slices an onion", bad, "the sky"]
    with pytest.raises(TypeError, match=rf"^{arg}\[2\] is {type(bad).__name__} \(.*\); {owner} takes strings only$"):
        _build(widget, texts)


@pytest.mark.parametrize(("widget", "arg"), TEXT_WIDGETS)
def test_widgets_refuse_unordered_texts(widget, arg):
    """A result's index (a search hit, a clicked point) must point into something the caller can index."""
    owner = "Projector" if widget is CompareProjector else _name(widget)
    with pytest.raises(TypeError, match=rf"^{owner} takes an ordered list of strings as {arg}, got a set: .*sorted\({arg}\)"):
        _build(widget, set(SENTENCES))
    with pytest.raises(TypeError, match=rf"^{owner} takes a list of strings as {arg}, got one str; pass \[{arg}\]$"):
        _build(widget, "one sentence")  # would otherwise be split into its characters


def test_semantic_search_of_none_is_refused_not_encoded_as_the_text_none():
    enc = Counting()
    with pytest.raises(TypeError, match=r"^corpus\[0\] is NoneType \(None\); SemanticSearch takes strings only$"):
        SemanticSearch(enc, [None])
    assert enc.seen == []  # refused before anything was encoded


def test_heatmap_sentence_with_a_line_break_is_refused():
    with pytest.raises(ValueError, match=r"^sentences\[1\] \('two\\nlines'\) has a line break; "
                                         r"SimilarityHeatmap shows one sentence per line$"):
        SimilarityHeatmap(bow, ["one", "two\nlines"])
    with pytest.raises(ValueError, match=r"^sentences\[0\] .* CompareHeatmaps shows one sentence per line$"):
        CompareHeatmaps(bow, bow, ["a\r\nb"])


def test_heatmaps_emptied_by_typing_say_so_in_the_title():
    w = SimilarityHeatmap(bow, SENTENCES)
    w.text.value = "  \n"
    assert w.z.shape == (0, 0) and "no sentences: type one per line" in w.fig.layout.title.text
    w.text.value = "back"
    assert w.z.shape == (1, 1) and "cosine similarity" in w.fig.layout.title.text
    c = CompareHeatmaps(bow, bow, SENTENCES)
    c.text.value = ""
    assert "no sentences: type one per line" in c.fig.layout.title.text and w.errors == c.errors == []


@pytest.mark.parametrize(("labels", "message"), [
    (["x", None, "y"], r"^labels\[1\] is NoneType \(None\); Projector takes strings or numbers as labels: "
                       r"name missing ones, e.g. 'unknown'$"),
    ({"topic": ["x", object(), "y"]}, r"^labels\['topic'\]\[1\] is object .*Projector takes strings or numbers"),
    ({"x", "y", "z"}, r"^Projector takes an ordered list of strings as labels, got a set"),
    ("xyz", r"^Projector takes a list of strings as labels, got one str"),
])
def test_projector_refuses_labels_that_would_become_none_or_arbitrary(labels, message):
    with pytest.raises(TypeError, match=message):
        Projector(bow, ["a", "b", "c"], labels=labels, method="pca", background=False)


def test_projector_takes_numbers_as_labels():
    w = Projector(bow, ["a", "b", "c"], labels=np.array([0, 1, 0]), method="pca", background=False)
    assert w.label_column() == ["0", "1", "0"]
    assert sorted(t.name for t in w.fig.data[:2]) == ["0", "1"]


@pytest.mark.parametrize("names", ["ab", ("a", 1), ("only one",)])
def test_panel_names_must_be_two_strings(names):
    with pytest.raises(TypeError, match=r"CompareHeatmaps takes (two strings as labels|strings only)"):
        CompareHeatmaps(bow, bow, SENTENCES, labels=names)
    with pytest.raises(TypeError, match=r"CompareProjector takes (two strings as names|strings only)"):
        CompareProjector(bow, bow, TEXTS, names=names, method="pca", background=False)


# ----- the real model --------------------------------------------------------------------------
def test_widgets_with_all_minilm(minilm_path):
    from workbench import load_model

    model = load_model(str(minilm_path))
    sentences = ["A man is playing a guitar.", "Someone plays an instrument.", "A woman slices an onion."]
    w = SimilarityHeatmap(model, sentences)
    w.text.value = "\n".join([*sentences, "The stock market fell."])
    ref = similarity_matrix(model.encode([*sentences, "The stock market fell."]))
    np.testing.assert_allclose(w.fig.data[0].z, ref, atol=1e-5)  # lines encoded separately vs together
    assert np.argsort(-ref[0])[1] == 1  # guitar ~ instrument
    s = SemanticSearch(model, sentences, k=1, query="cutting vegetables")
    assert s.results[0][1] == 2 and w.errors == s.errors == []


def test_a_sentence_transformer_loaded_from_a_folder_is_named_by_its_folder(tiny_bert, tmp_path):
    """#15 point 12: the widgets labelled such a model only "SentenceTransformer"."""
    from sentence_transformers import SentenceTransformer

    from workbench.widgets._common import encoder_name

    folder = tmp_path / "my-distilled-model"
    tiny_bert(layers=1).save(folder)
    assert encoder_name(SentenceTransformer(str(folder), device="cpu")) == "my-distilled-model"
    assert encoder_name(lambda texts: None) == "<lambda>"


def test_a_distance_heatmap_says_its_scores_are_negated_distances():
    """#15 point 9: the euclidean heatmap showed −1.46…0 without saying what those numbers are."""
    fig = similarity_figure(-cdist(np.eye(3), np.eye(3)), ["a", "b", "c"], fn="euclidean")
    assert "euclidean similarity = −euclidean distance (0: identical)" in fig.layout.title.text
    assert "distance" not in similarity_figure(np.eye(2), ["a", "b"]).layout.title.text



class _TorchBow(__import__("torch").nn.Module):
    """A torch 'model' over the bag of words: its output follows its weight, and it counts what it encodes."""

    def __init__(self) -> None:
        import torch

        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.texts_encoded = 0

    def encode(self, texts):
        self.texts_encoded += len(texts)
        return bow(texts) * float(self.scale.detach()) + np.arange(bow(texts).shape[1]) * float(self.scale.detach() - 1)


def test_widgets_given_the_same_model_share_its_embeddings_until_its_weights_change():
    import torch

    model = _TorchBow()
    texts = [f"{w} number {i}" for i, w in enumerate(["cat", "dog", "car", "tree", "bird", "phone"] * 5)]
    Projector(model, texts, method="pca", background=False)
    assert model.texts_encoded == len(texts)
    search = SemanticSearch(model, texts, k=3, query="a small cat")
    assert model.texts_encoded == len(texts) + 1  # the corpus came from the projector's encoding; only the query is new
    np.testing.assert_allclose(search.corpus_emb, bow(texts), atol=1e-6)
    with torch.no_grad():  # trained further: the old vectors are not what the model gives now
        model.scale.mul_(2.0)
    again = SemanticSearch(model, texts, k=3, query="a small cat")
    assert model.texts_encoded == 2 * len(texts) + 2
    np.testing.assert_allclose(again.corpus_emb, model.encode(texts), atol=1e-6)
    other = _TorchBow()  # another model object: its own vectors
    SemanticSearch(other, texts, k=3, query="a small cat")
    assert other.texts_encoded == len(texts) + 1


def test_a_first_encoding_of_many_texts_shows_a_bar_in_chunks(capsys):
    from workbench.encoding import PROGRESS_ABOVE
    from workbench.widgets._common import EmbeddingCache

    calls = []
    texts = [f"sentence {i}" for i in range(PROGRESS_ABOVE + 100)]
    cache = EmbeddingCache(lambda batch: calls.append(len(batch)) or bow(batch))
    np.testing.assert_allclose(cache(texts), bow(texts), atol=1e-6)
    assert calls == [512] * (len(texts) // 512) + [len(texts) % 512] and "encoding" in capsys.readouterr().err
    calls.clear()
    cache(texts[:3] + ["one more"])  # what is cached is not encoded again; a few new texts: no bar
    assert calls == [1] and capsys.readouterr().err == ""


def test_figures_are_plotly_widgets_that_fit_the_output_width():
    import plotly.graph_objects as go

    from workbench.widgets._common import _fitted_esm, figure_widget

    esm = _fitted_esm()
    assert esm is not None, "plotly's widget bundle is not laid out as expected: figures stay 700 px wide"
    fig = figure_widget(go.Figure(go.Scatter(x=[1, 2], y=[3, 4])))
    assert isinstance(fig, go.FigureWidget) and fig._esm == esm and "ResizeObserver" in esm
    assert fig._anywidget_id != go.FigureWidget()._anywidget_id  # its own class for anywidget
    assert list(fig.data[0].x) == [1, 2]
    for w in (SimilarityHeatmap(bow, SENTENCES), CompareHeatmaps(bow, bow, SENTENCES),
              SemanticSearch(bow, SENTENCES, k=2), Projector(bow, SENTENCES, method="pca", background=False)):
        assert w.fig._esm == esm, type(w).__name__
    assert Projector(bow, SENTENCES, method="pca", background=False).fig.layout.margin.t == 20  # no empty band
    assert Projector(bow, SENTENCES, method="pca", background=False, title="t").fig.layout.margin.t == 50
