"""The projector as a corpus map: tables in, clusters named, filters, box/lasso selections, HTML out."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from plotly.callbacks import Points

from workbench.widgets import Projector
from workbench.widgets import projector as projector_module

TOPICS = ("dogs chase balls on grass", "stock markets fell sharply", "bands play guitars on stage")


def corpus(n=900, seed=0):
    rng = np.random.default_rng(seed)
    which = rng.integers(0, 3, n)
    emb = (rng.normal(size=(3, 16)) * 4)[which] + rng.normal(size=(n, 16))
    frame = pd.DataFrame({
        "text": [f"{TOPICS[w]} {i}" for i, w in enumerate(which)],
        "topic": [TOPICS[w].split()[0] for w in which],
        "score": rng.normal(size=n),
    })  # fmt: skip
    return frame, emb, which


def test_a_dataframe_colours_by_its_columns_and_clusters_get_names():
    frame, emb, which = corpus()
    w = Projector(None, frame, embeddings=emb, clusters=True, background=False, seed=0)
    assert w.texts == frame["text"].tolist() and not w.errors
    assert list(w.color_by.options) == ["topic", "score", "cluster"]
    assert sorted(w.clusters.names.values()) == ["balls · chase · dogs", "bands · guitars · play", "fell · markets · sharply"]
    # One name per cluster, drawn at the cluster's median on the layout.
    notes = {a.text: (a.x, a.y) for a in w.fig.layout.annotations}
    for c, name in w.clusters.names.items():
        np.testing.assert_allclose(notes[name], np.median(w.coords[w.clusters.labels == c], axis=0), rtol=1e-6)
    assert "3 clusters" in w.status.value and "points in no cluster" in w.cluster_table.value or w.clusters.noise == 0
    w.color_by.value = "cluster"
    assert {t.name for t in w.fig.data[:-2]} <= {*w.clusters.names.values(), "(no cluster)"}
    w.color_by.value = "score"  # a number with many values: 8 ranges
    assert len(w.fig.data) - 2 == 8 and all("–" in t.name for t in w.fig.data[:-2])


def test_cluster_names_are_placed_once_per_layout_and_filter_not_per_keystroke(monkeypatch):
    frame, emb, _ = corpus()
    w = Projector(None, frame, embeddings=emb, clusters=True, background=False, seed=0)
    calls = []
    real = projector_module.place_labels
    monkeypatch.setattr(projector_module, "place_labels", lambda *a, **k: calls.append(1) or real(*a, **k))
    for text in ("d", "do", "dog", "dogs"):
        w.search.value = text
    assert calls == [] and len(w.fig.layout.annotations) == 3
    w.show_only("topic", ["dogs"])  # a filter moves the names to the visible points' medians
    assert calls == [1] and [a.text for a in w.fig.layout.annotations] == ["balls · chase · dogs"]


def test_a_small_cluster_inside_a_large_one_gets_its_name_moved_off_the_large_ones():
    from workbench.figures import place_labels

    coords = np.random.default_rng(0).uniform(0, 10, size=(500, 2))
    names = ["a large cluster of many", "a small one", "far away"]
    centres = np.array([[5.0, 5.0], [5.2, 5.05], [9.0, 1.0]])
    placed = place_labels(names, centres, [400, 20, 80], coords)
    assert placed[0].tolist() == [5.0, 5.0] and placed[2].tolist() == [9.0, 1.0]  # nothing in their way
    assert placed[1, 0] == 5.2 and abs(placed[1, 1] - 5.0) >= 20 * np.ptp(coords[:, 1]) / 440 - 1e-9
    # Moved by one line: the nearest free place.
    assert abs(placed[1, 1] - 5.05) < 2 * 20 * np.ptp(coords[:, 1]) / 440


def test_a_dataset_works_like_a_dataframe_and_bad_columns_are_named():
    from datasets import Dataset

    frame, emb, _ = corpus(120)
    w = Projector(None, Dataset.from_pandas(frame), embeddings=emb, method="pca")
    assert w.texts == frame["text"].tolist() and list(w.color_by.options) == ["topic", "score"]
    with pytest.raises(ValueError, match=r"no column 'sentence'; its columns are \['text', 'topic', 'score'\]"):
        Projector(None, frame, text_column="sentence", embeddings=emb)
    with pytest.raises(ValueError, match="which column holds the texts"):
        Projector(None, frame.rename(columns={"text": "a"}).assign(b=frame["text"]), embeddings=emb)
    with pytest.raises(ValueError, match=r"rows 5"):
        Projector(None, frame, embeddings=np.where(np.arange(120)[:, None] == 5, np.nan, emb))


def test_show_only_filters_points_and_the_dropdowns_drive_it():
    frame, emb, which = corpus(300)
    w = Projector(None, frame, embeddings=emb, method="pca")

    def shown():
        return sorted(int(i) for t in w.fig.data[:-2] for i in t.customdata)

    assert w.show_only("topic", ["dogs"]) == int((which == 0).sum())
    assert shown() == np.flatnonzero(which == 0).tolist()
    w.filter_by.value = "topic"
    w.filter_value.value = "stock"
    assert shown() == np.flatnonzero(which == 1).tolist()
    w.filter_by.value = "(all points)"
    assert shown() == list(range(300))
    with pytest.raises(KeyError, match="no column 'nope'"):
        w.show_only("nope", ["x"])


def test_a_box_selection_over_traces_fills_the_table_and_the_dataframe():
    frame, emb, _ = corpus(300)
    w = Projector(None, frame, embeddings=emb, method="pca")
    groups = w.fig.data[:-2]
    # What plotly does for one box selection: every group trace's handler, with its own point indices.
    picks = [[0, 2], [], [1]]
    for trace, inds in zip(groups, picks, strict=True):
        trace._dispatch_on_selection(Points(point_inds=inds, xs=[], ys=[], trace_name=trace.name), None)
    expected = sorted(int(t.customdata[i]) for t, inds in zip(groups, picks, strict=True) for i in inds)
    assert w.selection.tolist() == expected
    assert "3 points selected" in w.selection_table.value
    rows = w.selected_rows()
    assert rows["index"].tolist() == expected and rows["text"].tolist() == [w.texts[i] for i in expected]
    assert rows["topic"].tolist() == frame["topic"].iloc[expected].tolist() and {"x", "y"} <= set(rows.columns)
    for trace in groups:  # a click elsewhere: nothing selected
        trace._dispatch_on_selection(Points(point_inds=[], xs=[], ys=[], trace_name=trace.name), None)
    assert len(w.selection) == 0 and "nothing selected" in w.selection_table.value


def test_the_html_export_holds_every_point_the_names_and_plotly_itself(tmp_path):
    frame, emb, _ = corpus(400)
    w = Projector(None, frame, embeddings=emb, clusters=True, background=False, seed=0)
    path = w.export_html(str(tmp_path / "map.html"))
    page = open(path, encoding="utf-8").read()
    assert '<script src="http' not in page and len(page) > 3_000_000  # plotly.js is inside the file
    # The figure is the newPlot call's arguments: (div id, data, layout, config).
    decoder, at = json.JSONDecoder(), page.index("Plotly.newPlot(") + len("Plotly.newPlot(")
    parts = []
    for _ in range(3):
        at = len(page[:at]) + (len(page[at:]) - len(page[at:].lstrip(" \n,")))
        value, at = decoder.raw_decode(page, at)
        parts.append(value)
    _, data, layout = parts
    groups = [t for t in data if t["name"] not in ("selected",) and not t["name"].startswith("matches")]
    texts = [x for t in groups for x in t["text"]]
    assert sorted(texts) == sorted(w.texts)  # every point, with its hover text
    assert all(t["type"] == "scatter" for t in groups)  # 400 points: SVG (WebGL above 2,000)
    assert sorted(a["text"] for a in layout["annotations"]) == sorted(w.clusters.names.values())


def test_embeddings_are_kept_on_disk_and_not_encoded_again(tmp_path):
    frame, emb, _ = corpus(50)
    calls = []

    rows = {t: i for i, t in enumerate(frame["text"])}

    def encoder(texts):
        calls.append(len(texts))
        return np.stack([emb[rows[t]] if t in rows else np.zeros(16) for t in texts])  # also the size probe

    path = str(tmp_path / "corpus.npy")
    a = Projector(encoder, frame, cache=path, method="pca")
    encoded = sum(calls)
    b = Projector(encoder, frame, cache=path, method="pca")
    assert sum(calls) == encoded >= 50  # the second map read the file
    np.testing.assert_allclose(a.projection.emb, b.projection.emb)
    np.testing.assert_allclose(b.projection.emb, emb, rtol=1e-6)


def test_a_map_too_big_for_memory_is_refused_before_trying(monkeypatch):
    with pytest.raises(MemoryError, match="show a sample"):
        projector_module.check_memory(10**9, 384, 50)
    projector_module.check_memory(100_000, 384, 50)  # 100k points fit
