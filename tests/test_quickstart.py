"""``workbench quickstart``: a headless run that prints the events and writes the HTML report."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser

import numpy as np
import pytest

from workbench.report import (
    Section,
    card_text,
    curve_summary,
    curves_figure,
    projection_figure,
    render_report,
    similarity_figure,
)
from workbench.training import Eval, RunHistory, Step


class _Tags(HTMLParser):
    """Counts start/end tags, so that a report with unbalanced structure fails."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.seen: dict[str, int] = {}
        self.mismatched: list[str] = []
        self.void = {"meta", "br", "img", "input", "link", "hr"}

    def handle_starttag(self, tag, attrs):
        self.seen[tag] = self.seen.get(tag, 0) + 1
        if tag not in self.void:
            self.open.append(tag)

    def handle_endtag(self, tag):
        if tag in self.void:
            return
        if not self.open or self.open[-1] != tag:
            self.mismatched.append(tag)
        else:
            self.open.pop()


def _check_html(text: str) -> _Tags:
    assert text.startswith("<!DOCTYPE html>")
    parser = _Tags()
    parser.feed(text)
    parser.close()
    assert not parser.mismatched and not parser.open, (parser.mismatched, parser.open)
    return parser


def _history() -> RunHistory:
    h = RunHistory()
    for step, loss in [(10, 2.0), (20, 1.5), (30, 1.2)]:
        h.on_event(Step(step=step, epoch=0.1, loss=loss, lr=1e-5, examples_per_s=50.0, elapsed_s=1.0, total_steps=30))
    for step, value in [(0, 0.70), (15, 0.74), (30, 0.73)]:
        h.on_event(Eval(step=step, epoch=0.0, metrics={"sts-dev_spearman_cosine": value},
                        primary="sts-dev_spearman_cosine", value=value))
    return h


# ----- the report, from numbers ------------------------------------------------------------------
def test_figures_hold_exactly_the_numbers_given():
    m = np.array([[1.0, 0.25], [0.25, 1.0]])
    fig = similarity_figure(m, ["a", "b <i>"])
    assert np.array_equal(np.asarray(fig.data[0].z), m) and (fig.data[0].zmin, fig.data[0].zmax) == (-1.0, 1.0)
    assert "&lt;i&gt;" in fig.data[0].text[1][1]  # texts are escaped in the hover
    coords = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    fig = projection_figure(coords, ["x", "y", "z"], ["p", "q", "p"])
    assert [t.name for t in fig.data] == ["p", "q"]
    assert list(fig.data[0].x) == [0.0, 4.0] and list(fig.data[1].y) == [3.0]
    fig = curves_figure(_history())
    assert list(fig.data[0].y) == [2.0, 1.5, 1.2] and list(fig.data[1].x) == [0, 15, 30]
    with pytest.raises(ValueError):
        similarity_figure(np.eye(3), ["a", "b"])


def test_curve_summary_first_last_best():
    assert curve_summary(_history()) == (
        "sts-dev_spearman_cosine: 0.7000 at step 0 -> 0.7300 at step 30 (+0.0300); best 0.7400 at step 15")
    assert curve_summary(RunHistory()) == "sts-dev_spearman_cosine: no evaluations"


def test_card_text_drops_the_front_matter(tmp_path):
    (tmp_path / "README.md").write_text("---\ntags:\n- x\n---\n\n# My model\n\ntext\n", encoding="utf-8")
    assert card_text(tmp_path) == "# My model\n\ntext\n"
    assert card_text(tmp_path, front_matter=True).startswith("---\ntags:")


def test_report_is_one_self_contained_html_file():
    sections = [Section("One", "para 1\n\npara <2>", figure=similarity_figure(np.eye(2), ["a", "b"])),
                Section("Two", figure=curves_figure(_history()), pre="a | b")]
    text = render_report("T & t", sections, note="n")
    tags = _check_html(text)
    assert tags.seen["h2"] == 2 and tags.seen["pre"] == 1
    assert text.count('class="plotly-graph-div"') == 2 and text.count("Plotly.newPlot") == 2
    assert "para &lt;2&gt;" in text and "T &amp; t" in text
    assert "cdn.plot.ly" not in text.split("</head>")[1] and "<script src=" not in text  # nothing to fetch


# ----- the command --------------------------------------------------------------------------------
def test_quickstart_smoke_writes_the_report_and_prints_the_events(minilm_path, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "quickstart", "--smoke", "--out", str(out)],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout
    # the live events, as format_event writes them: steps and evaluations
    assert re.search(r"^training: 4 steps", log, re.M)
    assert len(re.findall(r"^step +\d+/4 \| epoch", log, re.M)) >= 2
    assert len(re.findall(r"^eval step +\d+ \| sts-dev_spearman_cosine -?[01]\.\d{4}", log, re.M)) >= 3  # steps 0, 2, 4
    assert re.search(r"^done \(completed\) after 4 steps", log, re.M)
    assert "sts-test" in log and "spearman" in log
    if not os.environ.get("WORKBENCH_DATA"):
        assert "SAMPLE" in log
    assert "jupyter lab notebooks/" in log
    report = out / "report.html"
    assert str(report.resolve()) in log
    text = report.read_text(encoding="utf-8")
    _check_html(text)
    assert text.count('class="plotly-graph-div"') == 3  # heatmap, projection, curves
    assert '"type":"heatmap"' in text and '"type":"scatter"' in text
    assert len(text) > 3_000_000, "plotly.js is embedded, so the file opens offline"
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert 0 < metrics["base"]["sts-test_spearman_cosine"] <= 1
    assert sorted(int(k) for k in metrics["sts_dev_curve"]) == [0, 2, 4]
    assert (out / "run" / "model" / "modules.json").is_file()
