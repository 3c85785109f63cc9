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
    curves = LiveCurves(redraw_s=0)  # every step drawn
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
    assert "examples/s" in curves.status_text and "left" in curves.status_text
    curves.on_event(Done(step=30, reason="stopped", elapsed_s=3.0))
    assert "stopped" in curves.status_text
    assert curves.errors == []


def test_the_end_of_a_run_is_read_in_full_under_a_full_width_bar():
    curves = LiveCurves()
    path = "runs/offline-a-distill-20261201-101010/" + "deep/" * 12 + "model"
    curves.on_event(Started(total_steps=10, examples=100, batch_size=10))
    curves.on_event(Done(step=10, reason="completed", elapsed_s=30.0, model_path=path))
    assert curves.status_text.endswith(f"model saved to {path}")  # the whole path, nothing cut
    assert "white-space: normal" in curves.status.value  # it wraps in the browser instead of being cut off
    assert curves.progress.layout.width == curves.status.layout.width == "100%"
    assert curves.status in curves.widget.children and curves.progress in curves.widget.children  # own rows
    curves.say("a <b>tag</b> & more")
    assert curves.status_text == "a <b>tag</b> & more" and "<b>" not in curves.status.value


def test_start_runs_with_the_controls_settings(recipe, tmp_path):
    dash = TrainingDashboard(str(recipe), runs_root=tmp_path / "runs", background=False)
    dash.lr.value = 2e-3
    dash.steps.value = 12
    dash.batch_size.value = 16
    dash.scale.value = 10.0
    dash.start.click()
    assert dash.errors == []
    fig = dash.curves.fig
    assert list(fig.data[0].x) == list(range(1, 13))  # a loss point per step
    assert list(fig.data[1].x) == [0, 2, 4, 6, 8, 10, 12]  # STS-B dev every 2 steps, from the start
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 1
    config = json.loads((runs[0] / "config.json").read_text())
    assert config["train"]["lr"] == pytest.approx(2e-3) and config["train"]["max_steps"] == 12
    assert config["loss"]["params"]["scale"] == 10.0
    # the comparison view reloads the run from disk: its curves and a row of settings and scores
    names = [t.name for t in dash.compare_fig.data]
    assert names == ["scale 10 · lr 0.002 · steps 12: loss", "scale 10 · lr 0.002 · steps 12"]  # what changed
    assert list(dash.compare_fig.data[0].x) == list(range(1, 13))
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


def test_start_clicked_twice_starts_one_run_and_shows_no_error(recipe, tmp_path):
    dash = TrainingDashboard(str(recipe), runs_root=tmp_path / "runs", background=True)
    dash.steps.value = 4
    dash.start.click()
    assert dash.start.disabled  # greyed at once, before the run's first step
    first = dash.thread
    dash.start.click()  # a double click: the second does nothing
    assert dash.thread is first
    dash.wait(timeout=120)
    assert dash.errors == [] and not any(o.get("text") for o in dash.log.output.outputs)
    assert len(list((tmp_path / "runs").iterdir())) == 1
    assert not dash.start.disabled and dash.stop.disabled  # ready for the next run


def test_after_stop_the_status_says_stopping_until_the_run_has_saved(recipe, tmp_path):
    dash = TrainingDashboard(str(recipe), runs_root=tmp_path / "runs", background=True)
    dash.steps.value = 5000
    seen = []
    dash.start.click()
    deadline = time.time() + 120
    while not dash.curves.history.steps and time.time() < deadline:
        time.sleep(0.05)
    dash.curves.status.observe(lambda change: seen.append(dash.curves.status_text), names="value")
    dash.stop.click()
    assert dash.curves.status_text.startswith("stopping…")  # at once, not after the next step
    dash.wait(timeout=120)
    assert seen[-1].startswith("done (stopped)")
    between = seen[:-1]
    assert between and all(v.startswith("stopping…") for v in between), between  # no ETA after Stop
    assert dash.errors == []


def test_errors_in_a_run_are_shown_not_lost(recipe, tmp_path):
    dash = TrainingDashboard(str(recipe), runs_root=tmp_path / "runs", background=False)
    dash.recipe = dash.recipe.with_(model={"keep_layers": [0, 9]})  # the model has 1 layer: the run must fail clearly
    dash.start.click()
    assert len(dash.errors) == 1 and "keep_layers" in str(dash.errors[0])
    assert any("keep_layers" in o.get("text", "") for o in dash.log.output.outputs)
    assert not dash.start.disabled  # ready for another try


def _run_config(runs_root: Path) -> tuple[Path, dict]:
    runs = sorted(runs_root.iterdir())
    assert len(runs) == 1
    return runs[0], json.loads((runs[0] / "config.json").read_text())


def test_start_without_touching_the_steps_runs_the_recipes_epoch(recipe, tmp_path):
    # 160 pairs, batch 16, epochs = 1 and no max_steps: one epoch is 10 steps, not a slider default
    dash = TrainingDashboard(str(recipe), runs_root=tmp_path / "runs", background=False)
    assert dash.steps.value == 10 and "1 epoch" in dash.steps_note.value
    dash.batch_size.value = 32  # an epoch of batch 32 is 5 steps; the untouched steps control follows
    assert dash.steps.value == 5 and "1 epoch" in dash.steps_note.value
    dash.batch_size.value = 16
    assert dash.steps.value == 10
    dash.start.click()
    assert dash.errors == []
    run, config = _run_config(tmp_path / "runs")
    assert config["train"]["max_steps"] is None and config["train"]["epochs"] == 1
    assert config["recipe"]["train"] == config["train"]  # the recipe as it ran
    started = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
               if json.loads(line)["event"] == "Started"]
    assert [e["total_steps"] for e in started] == [10]
    assert dash.curves.history.done.step == 10 and dash.curves.history.done.reason == "completed"


PRETRAINED = """
name = "tiny-pretrained"
kind = "train"
description = "one MiniLM layer, for the dashboard's model controls"

[model]
base = "{minilm}"
keep_layers = [0, 1]
max_seq_length = 24

[loss]
name = "MultipleNegativesRankingLoss"

[[data]]
name = "pairs"
loader = "file"
path = "{pairs}"

[eval]
sts_dev = true
sts_dev_limit = 20
sts_test = false

[train]
max_steps = 2
batch_size = 16
eval_every = 0
"""


def test_every_control_changes_what_config_json_records(recipe, minilm_path, tmp_path):
    from workbench.models import load_model

    path = tmp_path / "pretrained.toml"
    path.write_text(PRETRAINED.format(minilm=minilm_path, pairs=tmp_path / "pairs.tsv"), encoding="utf-8")
    dash = TrainingDashboard(str(path), runs_root=tmp_path / "runs", background=False)
    controls = [dash.lr, dash.batch_size, dash.warmup, dash.steps, dash.scale, dash.pooling, dash.layers]
    assert not any(c.disabled for c in controls)  # a pretrained base: every control applies
    assert dash.scale.value == 20.0  # MultipleNegativesRankingLoss's own default, the recipe names none
    dash.lr.value, dash.batch_size.value, dash.warmup.value, dash.steps.value = 3e-4, 8, 0.25, 3
    dash.scale.value, dash.pooling.value, dash.layers.value = 12.0, "cls", "0"
    dash.start.click()
    assert dash.errors == []
    run, config = _run_config(tmp_path / "runs")
    train = config["train"]
    assert (train["lr"], train["batch_size"], train["warmup_ratio"], train["max_steps"]) == (
        pytest.approx(3e-4), 8, 0.25, 3)
    assert config["loss"]["params"]["scale"] == 12.0 and config["recipe"]["loss"]["scale"] == 12.0
    assert config["recipe"]["model"]["pooling"] == "cls" and config["recipe"]["model"]["keep_layers"] == [0]
    trained = load_model(run / "model")  # and the model really has them
    assert trained.layers[1].modes == ["cls"] and len(trained.transformer.auto_model.encoder.layer) == 1


def test_controls_that_cannot_apply_are_disabled_with_a_reason(recipe, tmp_path):
    dash = TrainingDashboard(str(recipe), runs_root=tmp_path / "runs", background=False)
    assert dash.layers.disabled and "fresh" in dash.layers.tooltip  # a fresh model: its config sets the layers
    cosent = dash.recipe.with_(loss={"name": "CoSENTLoss"})
    assert not TrainingDashboard(cosent, runs_root=tmp_path / "runs").scale.disabled  # CoSENT has a scale
    # a recipe without a scale-taking loss: the control is off and says why
    from workbench.recipes import load_data, load_recipe

    distill = load_recipe("offline-a-distill").with_(data={"limit": 200}, eval={"mse_sentences": 40})
    dash = TrainingDashboard(distill, runs_root=tmp_path / "runs")
    assert dash.scale.disabled and "MSELoss has no scale" in dash.scale.tooltip
    assert not dash.pooling.disabled and dash.pooling.value == "teacher's" and dash.layers.value == "0,2,4,5"
    sentences = len(load_data(distill.data[0])) - 40  # the held-out sentences are not trained on
    assert dash.steps.value == -(-sentences // 64) and "1 epoch" in dash.steps_note.value
    dash.pooling.value = "max"
    assert dash.planned_recipe().model.pooling == "max"
    assert dash.planned_recipe().model.keep_layers == (0, 2, 4, 5) and dash.planned_recipe().train.max_steps is None


def test_the_estimate_includes_the_evaluations_still_due_and_the_rate_is_smoothed(monkeypatch):
    """#15 point 4: the ETA said "~0s left", then came ~40 s of final evaluation and save; the rate jumped 12/16/9."""
    import workbench.widgets.dashboard as dashboard

    clock = {"t": 0.0}
    monkeypatch.setattr(dashboard.time, "monotonic", lambda: clock["t"])
    curves = LiveCurves(redraw_s=0)

    def at(t, event):
        clock["t"] = t
        curves.on_event(event)

    def step(n, elapsed, rate=100.0):
        return Step(step=n, epoch=n / 40, loss=1.0, lr=1e-5, examples_per_s=rate, elapsed_s=elapsed, total_steps=40)

    def evaluation(n):
        return Eval(step=n, epoch=n / 40, metrics={"sts-dev_spearman_cosine": 0.8}, primary="sts-dev_spearman_cosine",
                    value=0.8)

    at(0, Started(total_steps=40, examples=640, batch_size=16))
    at(10, evaluation(0))  # the evaluation at the start took 10 s
    at(15, step(10, 15.0))  # 0.5 s a step; the evaluations' spacing is not known yet: the final one is due
    assert "~25s left (with 1 evaluation)" in curves.status_text  # 30 steps x 0.5 s + 10 s
    at(20, step(20, 20.0, rate=160.0))
    at(30, evaluation(20))  # every 20 steps, 10 s each
    at(35, step(30, 35.0, rate=90.0))
    assert "~15s left (with 1 evaluation)" in curves.status_text  # 10 steps x 0.5 s + the evaluation at step 40
    assert "~0.0s left" not in curves.status_text
    at(40, step(40, 40.0))
    assert "~10s left (with 1 evaluation)" in curves.status_text  # the last step: the final evaluation is still due
    rates = [100.0, 160.0, 90.0, 100.0]
    smoothed = rates[0]
    for r in rates[1:]:
        smoothed = 0.7 * smoothed + 0.3 * r
    assert f"{smoothed:,.0f} examples/s" in curves.status_text


def _fake_run(root: Path, name: str, recipe: dict, losses: list[float], sts: list[tuple[int, float]],
              done: tuple[int, str] | None) -> Path:
    """A run folder as the trainer leaves it (config.json with the recipe, metrics.jsonl of events)."""
    from workbench.training.runs import RunDir

    run = RunDir(root / name)
    run.start({"recipe": recipe, "train": recipe["train"], "loss": {"params": {"scale": recipe["loss"]["scale"]}}})
    total = recipe["train"]["max_steps"]
    run.log(Started(total_steps=total, examples=total * 16, batch_size=16))
    for step, value in sts[:1]:
        run.log(Eval(step=step, epoch=0.0, metrics={"sts-dev_spearman_cosine": value}, primary="sts-dev_spearman_cosine",
                     value=value, is_best=True))
    for i, loss in enumerate(losses):
        run.log(Step(step=2 * (i + 1), epoch=0.1, loss=loss, lr=1e-3, examples_per_s=50.0, elapsed_s=1.0,
                     total_steps=total))
    for step, value in sts[1:]:
        run.log(Eval(step=step, epoch=0.1, metrics={"sts-dev_spearman_cosine": value}, primary="sts-dev_spearman_cosine",
                     value=value, is_best=False))
    if done is not None:
        run.log(Done(step=done[0], reason=done[1], elapsed_s=2.0))
    return run.path


def test_run_comparison_shows_this_sessions_runs_named_by_what_changed(recipe, tmp_path):
    import os

    from workbench.recipes import load_recipe
    from workbench.widgets.dashboard import SESSION_STARTED

    runs = tmp_path / "runs"
    planned = load_recipe(str(recipe)).with_(train={"max_steps": 30})
    dash = TrainingDashboard(planned, runs_root=runs, background=False)
    base = planned.to_dict()
    scale5 = {**base, "loss": {**base["loss"], "scale": 5.0}}
    old = _fake_run(runs, "a-yesterday", scale5, [3.0, 2.5], [(0, 0.5)], (4, "completed"))
    t = SESSION_STARTED - 86400
    os.utime(old / "config.json", (t, t))  # yesterday's rehearsal
    _fake_run(runs, "b-distill", {**base, "name": "some-distill"}, [0.1], [(0, 0.6)], (2, "completed"))
    _fake_run(runs, "c-scale5", scale5, [3.0, 2.9, 2.8, 2.7, 2.6, 2.5], [(0, 0.5), (12, 0.55)], (13, "stopped"))
    _fake_run(runs, "d-default", base, [2.0], [(0, 0.5)], (5, "stopped"))  # one loss point
    _fake_run(runs, "e-scale5-again", scale5, [3.1, 2.4], [(0, 0.5)], None)  # unfinished: reached step 4
    dash.refresh_runs()
    fig = dash.compare_fig
    assert [t.name for t in fig.data[1::2]] == ["scale 5", "the recipe's settings", "scale 5 (2)"]  # this session, this recipe
    assert "a-yesterday" not in dash.table.value and "b-distill" not in dash.table.value
    for loss, metric in zip(fig.data[0::2], fig.data[1::2], strict=True):
        assert loss.line.color == metric.line.color == loss.marker.color and loss.legendgroup == metric.legendgroup
        assert loss.showlegend is False and "markers" in loss.mode  # a short run's points are drawn
    assert len({t.line.color for t in fig.data}) == 3
    assert list(fig.data[2].x) == [2]  # the run with one loss point
    rows = dash.table.value.split("<tr>")[2:]
    assert [r.rsplit("<td style='padding:2px 8px'>", 1)[1].split("<")[0] for r in rows] == ["13", "5", "4"]
    assert "3 runs of tiny-dash in this session" in dash.table.value
    dash.compare.value = "recipe"  # yesterday's run too
    assert [t.name for t in fig.data[1::2]] == ["scale 5", "scale 5 (2)", "the recipe's settings", "scale 5 (3)"]
    dash.compare.value = "all"
    assert len(fig.data) == 10 and "b-distill" in dash.table.value
    assert dash.errors == []


def test_fast_steps_are_drawn_together_and_the_end_draws_them_all():
    curves = LiveCurves()  # steps closer than 0.25 s are drawn together
    sent = []
    curves.fig.data[0].on_change(lambda trace, x: sent.append(len(x)), "x")
    curves.on_event(Started(total_steps=200, examples=3200, batch_size=16))
    for step in range(1, 151):  # a fast run: 150 steps within a few milliseconds
        curves.on_event(Step(step=step, epoch=step / 200, loss=3.0 - step / 100, lr=1e-3, examples_per_s=900.0,
                             elapsed_s=step / 100, total_steps=200))
    assert sent == [1] and curves.history.steps == list(range(1, 151))  # the first step drawn, the rest held
    assert curves.status_text.startswith("step 1/200")
    curves.on_event(Eval(step=150, epoch=0.75, metrics={"m": 0.5}, primary="m", value=0.5, is_best=True))
    assert list(curves.fig.data[0].x) == list(range(1, 151))  # an evaluation draws every step so far
    curves.on_event(Step(step=151, epoch=0.76, loss=1.4, lr=1e-3, examples_per_s=900.0, elapsed_s=1.6, total_steps=200))
    curves.on_event(Done(step=151, reason="stopped", elapsed_s=1.7))
    assert list(curves.fig.data[0].x) == list(range(1, 152)) and "done (stopped)" in curves.status_text
    assert curves.errors == []
