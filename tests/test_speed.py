"""The speed/quality map: the Pareto front, the measurement against scipy, sizes, errors, the widget."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from workbench.figures import speed_quality_figure
from workbench.speed import (
    EncoderPoint,
    SpeedQualityResult,
    encoder_size,
    measure_encoders,
    pareto_front,
    size_on_disk,
    table_rows,
)
from workbench.widgets import SpeedQualityMap

S1 = ["A man is playing a guitar.", "A woman slices an onion.", "The sky is blue today.", "A dog runs on the beach.",
      "Stocks fell sharply.", "A child reads a book.", "Two men play chess.", "It is raining in town."]
S2 = ["Someone plays an instrument.", "A person cuts vegetables.", "Bananas are yellow.", "A puppy plays by the sea.",
      "Share prices dropped.", "A kid is reading.", "A cat sleeps.", "The weather is wet in the city."]
GOLD = [0.8, 0.7, 0.05, 0.75, 0.9, 0.85, 0.1, 0.7]
LETTERS = "abcdefghijklmnopqrstuvwxyz "


def chars(texts):
    """A bag of characters: counts of each letter and the space."""
    return np.array([[t.lower().count(c) for c in LETTERS] for t in texts], dtype=np.float32)


def noise(texts):
    """A fixed random vector per text (same text, same vector): quality near nothing."""
    return np.stack([np.random.default_rng(sum(map(ord, t))).normal(size=16) for t in texts]).astype(np.float32)


def cosine_spearman(encode) -> float:
    """The reference: scipy's spearman of the cosine of each pair's embeddings."""
    a, b = encode(S1).astype(np.float64), encode(S2).astype(np.float64)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(spearmanr(GOLD, cos).statistic)


class Encodes:
    """An object with ``.encode`` that takes a batch size, and remembers the sizes it was given."""

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []
        self.source = None

    def encode(self, texts, batch_size=32):
        self.batch_sizes.append(batch_size)
        return chars(texts)


def _point(name, speed, quality, size=None):
    return EncoderPoint(name, float(speed), float(quality), "sts-dev_spearman_cosine", size, 1.0, 10)


# ----- the Pareto front --------------------------------------------------------------------------
def test_pareto_front_keeps_the_non_dominated_points_slowest_first():
    points = [("teacher", 100, 0.87), ("student", 400, 0.84), ("dominated", 300, 0.80), ("static", 9000, 0.70),
              ("slow and bad", 50, 0.60)]
    assert pareto_front(points) == ["teacher", "student", "static"]
    assert pareto_front([_point(n, s, q) for n, s, q in points]) == ["teacher", "student", "static"]


def test_pareto_front_ties_and_duplicates():
    # Equal numbers dominate neither way: both stay, ordered by name.
    assert pareto_front([("b", 100, 0.8), ("a", 100, 0.8)]) == ["a", "b"]
    # As fast but worse, or as good but slower: dominated.
    assert pareto_front([("a", 100, 0.8), ("same speed, worse", 100, 0.7), ("same quality, slower", 50, 0.8)]) == ["a"]
    assert pareto_front([("only", 1, 0.1)]) == ["only"] and pareto_front([]) == []
    # An undefined quality (a constant encoder) is never on the front.
    assert pareto_front([("a", 100, 0.8), ("constant", 1e6, math.nan)]) == ["a"]
    with pytest.raises(ValueError, match=r"one point per name; \['a'\]"):
        pareto_front([("a", 1, 0.5), ("a", 2, 0.4)])


def test_table_rows_speedup_and_delta_against_the_baseline():
    points = [_point("fast", 1000, 0.80), _point("teacher", 100, 0.87, size=90_000_000), _point("mid", 250, 0.86)]
    rows = table_rows(points)  # slowest first; the slowest is the baseline
    assert [r["name"] for r in rows] == ["teacher", "mid", "fast"]
    assert [r["speedup"] for r in rows] == [1.0, 2.5, 10.0]
    assert np.allclose([r["delta_quality"] for r in rows], [0.0, -0.01, -0.07])
    assert [r["size_mb"] for r in rows] == [90.0, None, None] and all(r["pareto"] for r in rows)
    by_mid = {r["name"]: r for r in table_rows(points, baseline="mid")}
    assert by_mid["teacher"]["speedup"] == 0.4 and by_mid["fast"]["speedup"] == 4.0
    with pytest.raises(ValueError, match="baseline 'nope'"):
        table_rows(points, baseline="nope")


# ----- measuring ----------------------------------------------------------------------------------
def test_quality_is_scipy_spearman_of_cosine_and_speed_is_texts_per_median_second():
    seen = []
    result = measure_encoders({"chars": chars, "noise": noise}, S1, S2, GOLD, repeats=3, progress=False,
                              callback=seen.append)
    by_name = {p.name: p for p in result.points}
    for name, fn in (("chars", chars), ("noise", noise)):
        p = by_name[name]
        assert p.quality == pytest.approx(cosine_spearman(fn), abs=1e-12)
        assert p.metric == "sts-dev_spearman_cosine" and p.n_sentences == len(set(S1 + S2)) == 16
        assert len(p.timings) == 3 and p.seconds == pytest.approx(float(np.median(p.timings)))
        assert p.sentences_per_s == pytest.approx(16 / p.seconds)
        assert p.size_bytes is None and p.size_from == ""
    assert by_name["chars"].dim == 27 and by_name["noise"].dim == 16
    assert math.isfinite(by_name["noise"].quality) and by_name["chars"].quality != by_name["noise"].quality
    # One point per timed run, rounds alternating the order: chars, noise | noise, chars | chars, noise.
    assert [(p.name, len(p.timings)) for p in seen] == [
        ("chars", 1), ("noise", 1), ("noise", 2), ("chars", 2), ("chars", 3), ("noise", 3)]
    assert result.pareto == pareto_front(result.points)
    assert result.baseline == min(result.points, key=lambda p: p.sentences_per_s).name
    assert result.n_pairs == 8 and result.repeats == 3 and "CPUs" in result.machine


def test_speed_texts_batch_size_and_a_model_with_encode():
    model = Encodes()
    texts = ["one text", "another one", "a third"]
    result = measure_encoders({"obj": model, "fn": chars}, S1, S2, GOLD, speed_texts=texts, batch_size=4,
                              repeats=2, progress=False)
    assert {p.n_sentences for p in result.points} == {3}
    assert set(model.batch_sizes) == {4}  # quality, warm-up and timed runs: all with the batch size
    assert result.point("obj").quality == pytest.approx(cosine_spearman(chars), abs=1e-12)


def test_sizes_given_as_bytes_or_a_folder_and_read_from_weights(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "model.safetensors").write_bytes(b"x" * 1000)
    (tmp_path / "sub" / "vocab.txt").write_bytes(b"y" * 234)
    assert size_on_disk(tmp_path) == 1234 and size_on_disk(tmp_path / "model.safetensors") == 1000
    linear = torch.nn.Linear(8, 4)  # 36 float32 numbers
    result = measure_encoders(
        {"folder": chars, "bytes": noise, "module": lambda t: linear(torch.tensor(chars(t)[:, :8]))},
        S1, S2, GOLD, sizes={"folder": tmp_path, "bytes": 5_000_000}, repeats=1, progress=False,
    )  # fmt: skip
    assert (result.point("folder").size_bytes, result.point("folder").size_from) == (1234, "given")
    assert result.point("bytes").size_mb == 5.0
    assert encoder_size(linear) == (36 * 4, "weights")
    tied = torch.nn.Sequential(linear, linear)  # the same weights twice are stored once
    assert encoder_size(tied) == (36 * 4, "weights")
    holder = Encodes()
    holder.source = str(tmp_path)  # a model that names its folder, holding no torch weights
    assert encoder_size(holder) == (1234, "folder")
    with pytest.raises(FileNotFoundError):
        size_on_disk(tmp_path / "missing")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"encoders": {}}, ValueError, "at least one encoder"),
        ({"encoders": [chars]}, TypeError, r"mapping \{name: encoder\}, got list"),
        ({"encoders": {1: chars}}, TypeError, "names must be strings, got int 1"),
        ({"encoders": {"ok": chars, "bad": 42}}, TypeError, "encoder 'bad' is a int, neither"),
        ({"encoders": {"name": "all-MiniLM-L6-v2"}}, TypeError, r"encoder 'name' is the str 'all-MiniLM-L6-v2'.*load_model"),
        ({"repeats": 0}, ValueError, "repeats must be at least 1"),
        ({"pairs": 2}, ValueError, "at least 3 STS pairs, got 2"),
        ({"sizes": {"typo": 1}}, ValueError, r"sizes names \['typo'\]"),
        ({"baseline": "typo"}, ValueError, r"baseline names \['typo'\]"),
    ],
)
def test_bad_input_is_refused_naming_what(kwargs, error, message):
    n = kwargs.pop("pairs", 8)
    encoders = kwargs.pop("encoders", {"chars": chars})
    with pytest.raises(error, match=message):
        measure_encoders(encoders, S1[:n], S2[:n], GOLD[:n], progress=False, **kwargs)


def test_result_round_trips_through_json_and_prints_a_table():
    result = measure_encoders({"chars": chars, "noise": noise}, S1, S2, GOLD, repeats=1, progress=False,
                              baseline="chars", data="toy pairs")
    again = SpeedQualityResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == result
    text = result.text()
    assert text.splitlines()[0].split()[:3] == ["encoder", "sentences/s", "×"]
    assert "chars" in text and "noise" in text and "+0.0000" in text  # the baseline's own Δ
    assert "toy pairs" not in text and "2 encoders, 8 pairs" in repr(result) and "<pre>" in result._repr_html_()
    with pytest.raises(KeyError, match="no encoder 'x'"):
        result.point("x")


def test_figure_marks_the_front_on_a_log_axis():
    points = [_point("teacher", 100, 0.87, size=90_000_000), _point("student", 400, 0.84, size=45_000_000),
              _point("bad", 300, 0.80), _point("static", 9000, 0.70, size=30_000_000)]
    result = SpeedQualityResult(points, pareto_front(points), baseline="teacher", machine="a test box", data="toy")
    fig = speed_quality_figure(result)
    dots, front = fig.data
    assert list(dots.text) == ["teacher", "student", "bad", "static"] and list(dots.x) == [100, 400, 300, 9000]
    assert front.name == "Pareto front" and list(front.text) == ["teacher", "student", "static"]
    assert front.line.shape == "vh" and fig.layout.xaxis.type == "log"
    assert "this machine" in fig.layout.xaxis.title.text and "a test box" in fig.layout.title.text
    sizes = list(dots.marker.size)
    assert sizes[0] == max(sizes) and sizes[2] == min(sizes)  # the largest model, and one of unknown size
    assert "(4× the baseline)" in dots.customdata[1][0] and "Δ -0.0300" in dots.customdata[1][0]
    assert fig.layout.font.size >= 14


# ----- the widget, without a browser ---------------------------------------------------------------
def test_widget_draws_every_encoder_the_front_and_the_table():
    encoders = {"chars": chars, "noise": noise, "object": Encodes(), "first letter": lambda t: chars([s[:1] for s in t])}
    w = SpeedQualityMap(encoders, (S1, S2, GOLD), repeats=2)
    assert len(w.fig.data[0].x) == 0 and "press <b>Measure</b>" in w.status.value and "8 STS pairs" in w.status.value
    result = w.measure()
    assert w.result is result and not w.errors and not w.button.disabled
    dots, front = w.fig.data
    assert sorted(dots.text) == sorted(encoders) and len(dots.x) == 4
    assert list(front.text) == result.pareto and result.pareto
    for name in encoders:
        assert name in w.table.value
    assert w.table.value.count("★ yes") == len(result.pareto)
    assert w.progress.value == w.progress.max == 8
    assert "Pareto front: " in w.status.value


def test_widget_measured_before_display_is_sent_whole_when_displayed():
    # Measured in the cell that shows it: the browser must get the figure as it is now, not as it
    # was created plus changes it may have missed (the CI browser once drew the empty first state).
    w = SpeedQualityMap({"chars": chars, "noise": noise}, (S1, S2, GOLD), repeats=1)
    w.measure()
    assert w.fig._widget_data[0].get("text", []) == []  # plotly only sent the changes
    w._repr_mimebundle_()
    assert sorted(w.fig._widget_data[0]["text"]) == ["chars", "noise"]
    assert w.fig._widget_layout["title"]["text"].startswith("speed vs quality on")


def test_widget_button_measures_in_a_thread_and_a_failure_is_shown():
    def broken(texts):
        raise RuntimeError("this encoder is broken")

    w = SpeedQualityMap({"chars": chars, "broken": broken}, (S1, S2, GOLD), repeats=1)
    w.button.click()  # background: returns at once
    assert w.wait(30)
    assert [str(e) for e in w.errors] == ["this encoder is broken"]
    assert "failed: RuntimeError" in w.status.value and not w.button.disabled


def test_widget_from_a_result_draws_it_without_measuring():
    points = [_point("teacher", 100, 0.87), _point("student", 400, 0.84), _point("bad", 300, 0.80)]
    result = SpeedQualityResult(points, pareto_front(points), baseline="teacher", data="STS-B en dev (1500 pairs)")
    w = SpeedQualityMap(result)
    assert list(w.fig.data[1].text) == ["teacher", "student"] and len(w.fig.data[0].x) == 3
    assert w.button.disabled and "measured result" in w.button.tooltip
    with pytest.raises(RuntimeError, match="measured result"):
        w.measure()


def test_widget_default_pairs_are_stsb_dev_and_a_sample_says_so(monkeypatch):
    import workbench.data
    from workbench.data import load_stsb, sample_file

    asked = []

    def fake_load_stsb(split):  # the built-in sample, as load_stsb gives it without WORKBENCH_DATA
        asked.append(split)
        return load_stsb(split, path=sample_file("sts"))

    monkeypatch.setattr(workbench.data, "load_stsb", fake_load_stsb)
    w = SpeedQualityMap({"chars": chars}, limit=5)
    assert asked == ["dev"] and len(w.pairs[0]) == 5
    assert w.is_sample and "SAMPLE" in w.status.value and w.data.startswith("the first 5 pairs of")
    w.measure()
    assert "SAMPLE" in w.fig.layout.title.text
    with pytest.raises(ValueError, match="at least 3 pairs"):
        SpeedQualityMap({"chars": chars}, limit=2)
    with pytest.raises(TypeError, match="triple; got int"):
        SpeedQualityMap({"chars": chars}, 42)
