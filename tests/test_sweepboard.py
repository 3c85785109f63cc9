"""The sweep board, driven like a person would, without a browser.

The trials are run by the scripted stand-in for ``run_recipe`` of ``tests/test_sweep.py`` (a trial
takes milliseconds and its objective is a known function of its settings, so the best trial is
known); ``SlowRuns`` adds a pause per event where a test needs the sweep to be still running.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
from test_sweep import ScriptedRuns, score

from workbench.recipes import load_recipe
from workbench.sweep import Param, Sweep, SweepError, TrialEvent, TrialRecord
from workbench.training.events import Step
from workbench.widgets import SweepBoard, TrainingDashboard
from workbench.widgets.sweepboard import (
    BEST_COLOR,
    OTHER_COLOR,
    parcoords_dimensions,
    setting_text,
    trial_label,
)

GRID = ["train.lr=1e-5,1e-4", "loss.scale=10,20"]
OBJECTIVE = "sts-dev_spearman_cosine"


class SlowRuns(ScriptedRuns):
    """The scripted runs, ``pause`` seconds per training event: slow enough to press Stop mid-sweep."""

    def __init__(self, pause: float = 0.02, **kwargs) -> None:
        super().__init__(**kwargs)
        self.pause = pause

    def __call__(self, recipe, run_dir, callbacks=(), **kwargs):
        return super().__call__(recipe, run_dir, callbacks=[*callbacks, lambda _e: time.sleep(self.pause)], **kwargs)


def _use(monkeypatch, runs: ScriptedRuns) -> ScriptedRuns:
    import workbench.recipes

    monkeypatch.setattr(workbench.recipes, "run_recipe", runs)
    return runs


@pytest.fixture()
def scripted(monkeypatch) -> ScriptedRuns:
    return _use(monkeypatch, ScriptedRuns())


def _sweep(out: Path, grid=GRID, **kwargs) -> Sweep:
    return Sweep(load_recipe("offline-b-mnrl-minilm"), [Param.grid(g) for g in grid], out=out, evaluate_test=False,
                 **kwargs)


def _wait_until(condition, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.01)


def _dims(board: SweepBoard) -> list[tuple[str, list]]:
    return [(d["label"], list(d["values"])) for d in board.parcoords.data[0].dimensions]


# ----- a sweep run from the board ---------------------------------------------------------------
def test_parallel_coordinates_hold_each_trials_settings_and_objective(tmp_path, scripted):
    board = SweepBoard(_sweep(tmp_path / "sw"), background=False)
    assert _dims(board) == [("train.lr", []), ("loss.scale", []), (OBJECTIVE, [])]
    board.start.click()
    assert board.errors == []
    records = board.sweep.records()
    assert [r.status for r in records] == ["completed"] * 4
    assert _dims(board) == [
        ("train.lr", [r.params["train.lr"] for r in records]),
        ("loss.scale", [r.params["loss.scale"] for r in records]),
        (OBJECTIVE, [r.objective for r in records]),
    ]
    assert _dims(board)[2][1] == pytest.approx([score(lr, s) for lr in (1e-5, 1e-4) for s in (10, 20)])
    trace = board.parcoords.data[0]
    assert list(trace.line.color) == [r.objective for r in records] and list(trace.customdata) == [1, 2, 3, 4]
    lr_axis = trace.dimensions[0]
    assert list(lr_axis.tickvals) == [1e-5, 1e-4] and list(lr_axis.ticktext) == ["1e-5", "1e-4"]
    assert list(lr_axis.range) == [1e-5, 1e-4]  # the whole search space, not only the trials run so far
    assert "sweep completed" in board.status.value and "trial 4" in board.status.value


def test_log_ranges_are_log10_lists_are_ticks_and_failed_trials_are_left_out():
    params = [Param.range("train.lr=1e-5..1e-3:log"), Param.grid('model.pooling="mean",cls'),
              Param.grid("model.keep_layers=[0,5],[0,3,5]"), Param.range("train.batch_size=16..64")]
    records = [
        TrialRecord(0, {"train.lr": 1e-4, "model.pooling": "cls", "model.keep_layers": [0, 3, 5], "train.batch_size": 32},
                    "completed", 0.8),
        TrialRecord(1, {"train.lr": 3e-5, "model.pooling": "mean", "model.keep_layers": [0, 5], "train.batch_size": 16},
                    "failed", None, error="RuntimeError: CUDA out of memory"),
        TrialRecord(2, {"train.lr": 1e-5, "model.pooling": "mean", "model.keep_layers": [0, 5], "train.batch_size": 64},
                    "pruned", 0.5),
    ]
    drawn, dims = parcoords_dimensions(params, records, OBJECTIVE)
    assert [r.number for r in drawn] == [0, 2]
    lr, pooling, layers, batch, objective = dims
    assert lr["label"] == "train.lr (log10)" and lr["values"] == pytest.approx([-4, -5]) and lr["range"] == [-5, -3]
    assert lr["tickvals"] == [-5, -4, -3] and lr["ticktext"] == ["1e-5", "1e-4", "1e-3"]
    assert (pooling["values"], pooling["ticktext"], pooling["tickvals"]) == ([1, 0], ["mean", "cls"], [0, 1])
    assert (layers["values"], layers["ticktext"]) == ([1, 0], ["[0,5]", "[0,3,5]"])
    assert (batch["label"], batch["values"], batch["range"]) == ("train.batch_size", [32.0, 64.0], [16.0, 64.0])
    assert (objective["label"], objective["values"]) == (OBJECTIVE, [0.8, 0.5])
    # A grid of learning rates over two decades is shown as log10 too (else 1e-5 and 1e-4 would touch).
    _, (wide, _) = parcoords_dimensions([Param.grid("train.lr=1e-5,1e-4,1e-3")],
                                        [TrialRecord(0, {"train.lr": 1e-4}, "completed", 0.7)], OBJECTIVE)
    assert wide["label"] == "train.lr (log10)" and wide["values"] == pytest.approx([-4])
    assert setting_text(1e-4) == "1e-4" and setting_text(0.05) == "0.05" and setting_text(20.0) == "20"


def test_a_failed_trial_is_in_the_table_not_on_the_plot(tmp_path, monkeypatch):
    _use(monkeypatch, ScriptedRuns(fail_when=lambda r: r.train.lr == 1e-5 and r.loss.value("scale") == 10))
    board = SweepBoard(_sweep(tmp_path / "sw"), background=False)
    board.start.click()
    assert board.errors == []
    assert _dims(board)[0] == ("train.lr", [1e-5, 1e-4, 1e-4]) and list(board.parcoords.data[0].customdata) == [2, 3, 4]
    assert "failed" in board.table.value and "CUDA out of memory (scripted)" in board.table.value
    assert len(board.curves.data) == 4 and list(board.curve(0).x) == []  # it never reached an evaluation


def test_dev_curves_one_per_trial_named_by_settings_the_best_highlighted(tmp_path, scripted):
    board = SweepBoard(_sweep(tmp_path / "sw"), background=False)
    board.start.click()
    records = board.sweep.records()
    best = board.sweep.best()
    assert best.number == 3 and best.params == {"train.lr": 1e-4, "loss.scale": 20}
    assert len(board.curves.data) == len(records) == 4
    for r in records:
        trace = board.curve(r.number)
        assert trace.name.startswith(trial_label(r.params, board.keys))
        assert list(trace.x) == [2, 4, 6, 8]
        assert trace.y[-1] == pytest.approx(r.objective)
    assert [t.name for t in board.curves.data] == ["lr=1e-5 scale=10", "lr=1e-5 scale=20", "lr=1e-4 scale=10",
                                                   "lr=1e-4 scale=20 (best)"]
    widths = [t.line.width for t in board.curves.data]
    assert widths.index(max(widths)) == best.number and widths.count(max(widths)) == 1
    assert board.curve(best.number).line.color == BEST_COLOR
    assert [t.line.color for t in board.curves.data[:3]] == [OTHER_COLOR] * 3


def test_the_running_trials_curve_grows_with_its_evaluations(tmp_path, scripted):
    board = SweepBoard(_sweep(tmp_path / "sw"), background=False)
    seen = []

    def look(event):  # after the board has drawn each event: what the running trial's curve holds
        if isinstance(event, TrialEvent) and event.number == 1:
            seen.append((len(board.curve(1).x), board.status.value))

    board.sweep.run(callbacks=[board.on_event, look])
    counts = [n for n, _ in seen]
    assert counts == sorted(counts) and counts[0] == 0 and counts[-1] == 4  # evals at steps 2, 4, 6, 8
    statuses = [s for _, s in seen]
    assert "trial 2/4 · step 3/8 · best so far 0.6000 (trial 1)" in statuses
    assert board.errors == []


def test_the_table_sorts_by_any_column_both_ways(tmp_path, scripted):
    board = SweepBoard(_sweep(tmp_path / "sw", grid=["train.lr=1e-4,1e-5", "loss.scale=25,10"]), background=False)
    board.start.click()
    # trial 1: lr 1e-4, scale 25 (0.75); 2: 1e-4, 10 (0.70); 3: 1e-5, 25 (0.65); 4: 1e-5, 10 (0.60)

    def trials() -> list[int]:
        rows = board.table.value.split("<tbody>")[1].split("</tr>")[:-1]
        return [int(row.split("<td style='padding:2px 8px'>")[1].split("<")[0]) for row in rows]

    assert board.sort_by.options == ("trial", "train.lr", "loss.scale", OBJECTIVE, "best step", "steps", "seconds",
                                     "status", "error")
    assert trials() == [1, 2, 3, 4]
    board.sort_by.value = OBJECTIVE
    assert trials() == [4, 3, 2, 1]
    board.descending.value = True
    assert trials() == [1, 2, 3, 4] and "(descending)" in board.table.value
    board.sort_by.value = "loss.scale"
    assert trials() == [1, 3, 2, 4]  # 25, 25, 10, 10: ties stay in trial order
    board.descending.value = False
    assert trials() == [2, 4, 1, 3]
    board.sort_by.value = "train.lr"
    assert trials() == [3, 4, 1, 2] and "(ascending)" in board.table.value
    assert "1e-4" in board.table.value and "0.7500" in board.table.value


def test_use_best_returns_the_best_trials_recipe(tmp_path, scripted):
    board = SweepBoard(_sweep(tmp_path / "sw", trial_steps=6), background=False)
    assert board.use_best_button.disabled and "no trial" in board.use_best_button.tooltip
    with pytest.raises(SweepError, match="no trial"):
        board.use_best()
    board.start.click()
    assert not board.use_best_button.disabled
    board.use_best_button.click()
    recipe = board.best_recipe
    assert recipe == board.sweep.best_recipe() == board.use_best()
    assert recipe.train.lr == 1e-4 and recipe.loss.params["scale"] == 20
    full = board.sweep.recipe.train.max_steps  # the recipe's own length (150 steps), not the trial cap of 6
    assert full is not None and full > 6
    assert recipe.train.max_steps == full and recipe.eval.sts_test is True  # the full recipe, not a trial's
    summary = board.best_box.value
    assert "trial 4" in summary and "run_recipe(board.best_recipe)" in summary
    assert "workbench train" in summary and "--set train.lr=0.0001 --set loss.scale=20" in summary


# ----- Start, Stop, errors ------------------------------------------------------------------------
def test_start_twice_starts_one_sweep(tmp_path, monkeypatch):
    runs = _use(monkeypatch, SlowRuns(pause=0.005))
    board = SweepBoard(_sweep(tmp_path / "sw"))
    board.start.click()
    assert board.start.disabled and not board.stop.disabled  # at once, before any event
    first = board.thread
    board.start.click()
    assert board.thread is first
    board.wait(60)
    assert not first.is_alive() and board.errors == []
    assert [c["run_dir"] for c in runs.calls] == ["trial-000", "trial-001", "trial-002", "trial-003"]
    assert board.start.disabled and board.start.tooltip == "every trial has finished"
    board.start.click()  # nothing left to run: still nothing happens
    assert board.thread is first and len(runs.calls) == 4


def test_stop_during_a_background_sweep_stops_it(tmp_path, monkeypatch):
    runs = _use(monkeypatch, SlowRuns(pause=0.02))
    board = SweepBoard(_sweep(tmp_path / "sw"))
    board.start.click()
    _wait_until(lambda: 1 in board.histories and board.histories[1].steps)  # trial 2 has taken a step
    board.stop.click()
    assert board.status.value.startswith("stopping…") and board.stop.disabled
    time.sleep(0.05)
    assert board.status.value.startswith("stopping…") or not board.thread.is_alive()
    board.wait(60)
    assert board.result.reason == "stopped" and board.errors == []
    assert [r.status for r in board.sweep.records()] == ["completed", "stopped"]
    assert len(runs.calls) == 2 and board.sweep.records()[1].steps < 8
    assert "sweep stopped" in board.status.value and "press Start to run the rest" in board.status.value
    assert not board.start.disabled and board.stop.disabled
    # Start again: the stopped trial is run again, then the two not run yet.
    board.start.click()
    board.wait(60)
    assert [r.status for r in board.sweep.records()] == ["completed"] * 4
    assert [c["run_dir"] for c in runs.calls] == ["trial-000", "trial-001", "trial-001", "trial-002", "trial-003"]


def test_an_error_while_drawing_is_shown_and_the_sweep_goes_on(tmp_path, scripted, monkeypatch):
    board = SweepBoard(_sweep(tmp_path / "sw"), background=False)

    def broken() -> None:
        raise ValueError("a drawing bug")

    monkeypatch.setattr(board, "_draw_parcoords", broken)
    board.start.click()
    assert [r.status for r in board.sweep.records()] == ["completed"] * 4 and board.result.reason == "completed"
    assert board.errors and all(isinstance(e, ValueError) for e in board.errors)
    assert any("a drawing bug" in o.get("text", "") for o in board.log.output.outputs)


def test_a_sweep_that_cannot_start_says_why(tmp_path, scripted):
    _sweep(tmp_path / "sw", grid=["train.lr=1e-5"]).run()
    board = SweepBoard(_sweep(tmp_path / "sw"), background=False)  # another sweep is in that folder
    board.start.click()
    assert len(board.errors) == 1 and "holds another sweep" in str(board.errors[0])
    assert board.status.value.startswith("failed: SweepError") and not board.start.disabled


# ----- a folder that already holds trials ---------------------------------------------------------
def test_a_board_over_an_existing_folder_shows_its_trials(tmp_path, scripted):
    out = tmp_path / "sw"

    def interrupt(event):
        if isinstance(event, TrialEvent) and event.number == 2 and isinstance(event.event, Step) and event.event.step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _sweep(out).run(callbacks=[interrupt])
    board = SweepBoard(_sweep(out), background=False)
    assert board.errors == [] and sorted(board.records) == [0, 1, 2]
    assert _dims(board)[2] == (OBJECTIVE, [score(1e-5, 10), score(1e-5, 20)])  # the two finished trials
    assert [len(t.x) for t in board.curves.data] == [4, 4, 1]  # the interrupted trial's one evaluation (step 2)
    assert "interrupted" in board.table.value and board.table.value.count("completed") == 2
    assert board.status.value.startswith("2 of 4 trials finished · best so far 0.7000 (trial 2)")
    assert not board.start.disabled
    board.start.click()  # runs the interrupted trial and the last one
    assert [c["run_dir"] for c in scripted.calls][-2:] == ["trial-002", "trial-003"]
    assert [len(t.x) for t in board.curves.data] == [4, 4, 4, 4] and board.errors == []
    finished = SweepBoard(_sweep(out), background=False)
    assert len(finished.curves.data) == 4 and finished.start.disabled
    assert math.isclose(finished.parcoords.data[0].dimensions[2].values[-1], score(1e-4, 20))


# ----- from the training dashboard ----------------------------------------------------------------
def test_the_dashboard_opens_a_sweep_board_over_its_settings(tmp_path, scripted):
    dash = TrainingDashboard(load_recipe("offline-b-mnrl-minilm").with_(train={"max_steps": 8}),
                             runs_root=tmp_path / "runs", background=False)
    dash.lr.value = 2e-4
    dash.steps.value = 6
    board = dash.sweep_board({"loss.scale": [10, 20], "train.batch_size": [16, 32]}, evaluate_test=False)
    assert isinstance(board, SweepBoard) and board.background is False
    assert board.sweep.out.parent == tmp_path / "runs" / "sweeps" and board.sweep.out.name.startswith("offline-b-mnrl-minilm-")
    assert board.sweep.trials == 4 and board.keys == ["loss.scale", "train.batch_size"]
    board.start.click()
    assert board.errors == [] and len(board.sweep.records()) == 4
    assert [(c["lr"], c["scale"], c["max_steps"]) for c in scripted.calls] == [
        (2e-4, 10, 6), (2e-4, 10, 6), (2e-4, 20, 6), (2e-4, 20, 6)]  # the dashboard's settings in every trial
    assert board.use_best().train.lr == 2e-4
    named = dash.sweep_board({"loss.scale": [10]}, out=tmp_path / "mine")
    assert named.sweep.out == tmp_path / "mine"
