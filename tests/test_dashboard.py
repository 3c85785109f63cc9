"""The training dashboard and live curves, driven like a person would, without a browser."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from workbench.training import Done, Eval, Started, Step
from workbench.widgets import LiveCurves, TrainingDashboard

RECIPE = """
name = "tiny-dash"
kind = "train"
description = "a tiny fresh model for dashboard tests"

[model]
fresh = {{ vocab_size = 30522, hidden_size = 32, num_hidden_layers = 1, num_attention_heads = 2, intermediate_size = 64 }}
tokenizer = "{tokenizer}"
dense = 16
normalize = true
max_seq_length = 32

[loss]
name = "MultipleNegativesRankingLoss"
scale = 20.0

[[data]]
name = "pairs"
loader = "file"
path = "{pairs}"

[eval]
sts_dev = true
sts_dev_limit = 40
sts_test = false

[train]
lr = 1e-3
batch_size = 16
log_every = 1
eval_every = 2
"""


@pytest.fixture()
def recipe(tmp_path: Path, minilm_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    pairs = tmp_path / "pairs.tsv"
    nouns = ["cat", "dog", "car", "tree", "house", "river", "bird", "phone"]
    rows = [f"the {nouns[i % 8]} number {i}\ta {nouns[i % 8]} item {i}" for i in range(160)]
    pairs.write_text("anchor\tpositive\n" + "\n".join(rows) + "\n", encoding="utf-8")
    path = tmp_path / "tiny-dash.toml"
    path.write_text(RECIPE.format(tokenizer=minilm_path, pairs=pairs), encoding="utf-8")
    return path


def test_live_curves_gain_points_as_events_arrive():
    curves = LiveCurves()
    curves.on_event(Started(total_steps=100, examples=1000, batch_size=10))
    for step in (10, 20, 30):
        curves.on_event(Step(step=step, epoch=step / 100, loss=3.0 - step / 20, lr=1e-5, examples_per_s=50.0,
                             elapsed_s=step / 10, total_steps=100))
        assert list(curves.fig.data[0].x)[-1] == step
    curves.on_event(Eval(step=30, epoch=0.3, metrics={"sts-dev_spearman_cosine": 0.71}, primary="sts-dev_spearman_cosine",
                         value=0.71, is_best=True))
    assert list(curves.fig.data[0].y) == [2.5, 2.0, 1.5]
    assert list(curves.fig.data[1].x) == [30] and list(curves.fig.data[1].y) == [0.71]
    assert curves.progress.value == pytest.approx(0.3)
    assert "examples/s" in curves.status.value and "left" in curves.status.value
    curves.on_event(Done(step=30, reason="stopped", elapsed_s=3.0))
    assert "stopped" in curves.status.value
    assert curves.errors == []


def test_start_runs_with_the_controls_settings(recipe, tmp_path):
    dash = TrainingDashboard(str(recipe), runs_root=tmp_path / "runs", background=False)
    dash.lr.value = 2e-3
    dash.steps.value = 10
    dash.batch_size.value = 16
    dash.scale.value = 10.0
    dash.start.click()
    assert dash.errors == []
    fig = dash.curves.fig
    assert list(fig.data[0].x) == list(range(1, 11))  # a loss point per step
    assert list(fig.data[1].x) == [0, 2, 4, 6, 8, 10]  # STS-B dev every 2 steps, from the start
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 1
    config = json.loads((runs[0] / "config.json").read_text())
    assert config["train"]["lr"] == pytest.approx(2e-3) and config["train"]["max_steps"] == 10
    assert config["loss"]["params"]["scale"] == 10.0
    # the comparison view reloads the run from disk: its curves and a row of settings and scores
    names = [t.name for t in dash.compare_fig.data]
    assert names == [f"{runs[0].name}: loss", f"{runs[0].name}: STS dev"]
    assert list(dash.compare_fig.data[0].x) == list(range(1, 11))
    assert runs[0].name in dash.table.value and "completed" in dash.table.value
    assert not dash.start.disabled and dash.stop.disabled


def test_stop_ends_a_background_run_mid_way(recipe, tmp_path):
    dash = TrainingDashboard(str(recipe), runs_root=tmp_path / "runs", background=True)
    dash.steps.value = 5000
    dash.start.click()
    deadline = time.time() + 120
    while not dash.curves.history.steps and time.time() < deadline:
        time.sleep(0.1)  # the notebook is free meanwhile: this thread is not blocked
    assert dash.curves.history.steps, "no training step within 2 minutes"
    assert dash.thread.is_alive()
    dash.stop.click()
    dash.wait(timeout=120)
    assert not dash.thread.is_alive()
    done = dash.curves.history.done
    assert done is not None and done.reason == "stopped" and done.step < 5000
    assert Path(done.model_path).is_dir()  # what was learned is saved
    assert dash.errors == []


def test_errors_in_a_run_are_shown_not_lost(recipe, tmp_path):
    dash = TrainingDashboard(str(recipe), runs_root=tmp_path / "runs", background=False)
    dash.overrides.append("model.keep_layers=[0, 9]")  # the model has 1 layer: the run must fail clearly
    dash.start.click()
    assert len(dash.errors) == 1 and "keep_layers" in str(dash.errors[0])
    assert any("keep_layers" in o.get("text", "") for o in dash.log.output.outputs)
    assert not dash.start.disabled  # ready for another try
