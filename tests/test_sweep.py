"""Sweeps: the search space, refusals before the first trial, results.csv, restarts after a kill,
failed trials, Optuna's TPE and its pruning.

Most tests stand a scripted run in for ``run_recipe`` (each trial's objective is a known function of
its settings, so the best trial is known); the end-to-end tests train a tiny fresh model for real,
through the CLI as a user would, and kill one mid-trial.
"""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench.recipes import load_recipe
from workbench.sweep import Param, Sweep, SweepError, TrialDone, TrialEvent, read_trials
from workbench.training.events import Done, Eval, Started, Step, to_json

RECIPE = """
name = "tiny-sweep"
kind = "train"
description = "a tiny fresh model for sweep tests"

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
sts_test = {sts_test}

[train]
lr = 1e-3
batch_size = 16
max_steps = {steps}
log_every = 1
eval_every = 2
checkpoint_every = {checkpoint_every}
"""


def _write_recipe(tmp_path: Path, minilm_path: Path, steps: int = 4, sts_test: bool = False,
                  checkpoint_every: int = 0) -> Path:
    pairs = tmp_path / "pairs.tsv"
    nouns = ["cat", "dog", "car", "tree", "house", "river", "bird", "phone"]
    rows = [f"the {nouns[i % 8]} number {i}\ta {nouns[i % 8]} item {i}" for i in range(160)]
    pairs.write_text("anchor\tpositive\n" + "\n".join(rows) + "\n", encoding="utf-8")
    path = tmp_path / "tiny-sweep.toml"
    path.write_text(RECIPE.format(tokenizer=minilm_path, pairs=pairs, steps=steps, sts_test=str(sts_test).lower(),
                                  checkpoint_every=checkpoint_every), encoding="utf-8")
    return path


@pytest.fixture()
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


@pytest.fixture()
def recipe_file(tmp_path: Path, minilm_path: Path, offline) -> Path:
    return _write_recipe(tmp_path, minilm_path)


# ----- a scripted stand-in for run_recipe ------------------------------------------------------
def score(lr: float, scale: float) -> float:
    """The stand-in's final objective: best at lr 1e-4, scale 20."""
    return 0.8 - abs(math.log10(lr) + 4) * 0.1 - abs(scale - 20) / 100


class ScriptedRuns:
    """Writes what a run writes (config.json, metrics.jsonl with evals every 2 steps, model/) and
    sends the same events; the dev value climbs to ``score(lr, scale)`` over 8 steps."""

    def __init__(self, fail_when=None, steps: int = 8) -> None:
        self.calls: list[dict] = []
        self.fail_when = fail_when
        self.steps = steps

    def __call__(self, recipe, run_dir, callbacks=(), stop_signal=None, resume=False, overwrite=False, **_):
        run_dir = Path(run_dir)
        lr, scale = recipe.train.lr, recipe.loss.value("scale")
        self.calls.append({"run_dir": run_dir.name, "lr": lr, "scale": scale, "resume": resume,
                           "max_steps": recipe.train.max_steps, "sts_test": recipe.eval.sts_test})
        if self.fail_when is not None and self.fail_when(recipe):
            raise RuntimeError("CUDA out of memory (scripted)")
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps({"recipe": recipe.to_dict()}), encoding="utf-8")
        total = min(self.steps, recipe.train.max_steps or self.steps)
        target = score(lr, scale)
        with open(run_dir / "metrics.jsonl", "w", encoding="utf-8") as log:
            def emit(event):
                log.write(to_json(event) + "\n")
                log.flush()
                for callback in callbacks:
                    callback(event)

            emit(Started(total_steps=total, examples=total * 16, batch_size=16, run_dir=str(run_dir)))
            reason, step = "completed", 0
            for step in range(1, total + 1):
                emit(Step(step=step, epoch=step / total, loss=1.0 / step, lr=lr, examples_per_s=100.0, elapsed_s=0.1 * step,
                          total_steps=total))
                if step % 2 == 0:
                    value = target * step / self.steps
                    emit(Eval(step=step, epoch=step / total, metrics={"sts-dev_spearman_cosine": value},
                              primary="sts-dev_spearman_cosine", value=value))
                if stop_signal is not None and stop_signal.is_set():
                    reason = "stopped"
                    break
            (run_dir / "model").mkdir(exist_ok=True)
            (run_dir / "model" / "weights").write_text("w", encoding="utf-8")
            emit(Done(step=step, reason=reason, elapsed_s=0.1 * step, model_path=str(run_dir / "model")))


@pytest.fixture()
def scripted(monkeypatch):
    import workbench.recipes

    runs = ScriptedRuns()
    monkeypatch.setattr(workbench.recipes, "run_recipe", runs)
    return runs


def _recipe():
    return load_recipe("offline-b-mnrl-minilm")


def _sweep(space, **kwargs) -> Sweep:
    """A sweep of the B'(i) recipe whose trials the scripted stand-in runs (no model to test at the end)."""
    return Sweep(_recipe(), space, evaluate_test=False, **kwargs)


def _rows(out: Path) -> list[dict]:
    with open(out / "results.csv", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


# ----- the search space ------------------------------------------------------------------------
def test_grid_and_range_parsing():
    assert Param.grid("train.lr=1e-5, 5e-5,1e-4").values == (1e-5, 5e-5, 1e-4)
    assert Param.grid("model.keep_layers=[0,5],[0, 3, 5]").values == ([0, 5], [0, 3, 5])
    assert Param.grid('model.pooling="mean",cls').values == ("mean", "cls")
    p = Param.range("train.batch_size=16..128")
    assert p.is_int and not p.log
    q = Param.range("train.lr=1e-5..1e-3:log")
    assert q.log and not q.is_int
    for bad, words in [("train.lr", "section.key"), ("lr=1e-4", "section.key"), ("train.lr=1e-4,", "empty value"),
                       ("train.lr=1e-3..1e-5", "low < high"), ("train.lr=0..1:log", "low > 0"),
                       ("train.lr=a..b", "numbers")]:
        with pytest.raises(SweepError, match=words):
            Param.range(bad) if ".." in bad else Param.grid(bad)


def test_random_draws_are_in_range_repeatable_and_depend_on_the_seed():
    space = [Param.range("train.lr=1e-5..1e-3:log"), Param.range("train.batch_size=16..64"),
             Param.grid("loss.scale=10,20,50")]
    a = list(_sweep(space, out="unused", sampler="random", trials=40, seed=1).planned())
    b = list(_sweep(space, out="unused", sampler="random", trials=40, seed=1).planned())
    c = list(_sweep(space, out="unused", sampler="random", trials=40, seed=2).planned())
    assert a == b and a != c
    lrs = [d["train.lr"] for d in a]
    assert all(1e-5 <= x <= 1e-3 for x in lrs)
    assert min(lrs) < 1e-4 < max(lrs)  # log-uniform: about half the draws below the geometric middle
    assert all(isinstance(d["train.batch_size"], int) and 16 <= d["train.batch_size"] <= 64 for d in a)
    assert {d["loss.scale"] for d in a} == {10, 20, 50}


def test_bad_fields_and_values_are_refused_before_the_first_trial(tmp_path, scripted):
    recipe, out = _recipe(), tmp_path / "sw"
    cases = [
        ([Param.grid("train.lrr=1e-4")], "unknown key 'lrr'"),
        ([Param.grid("train.batch_size=16,16.5")], "train.batch_size=16.5"),
        ([Param.grid("loss.scale=10,-1")], "loss.scale=-1"),
        ([Param.grid("model.pooling=mean,meen")], "unknown mode 'meen'"),
        ([Param.grid("data.snli.limit=100")], "no \\[\\[data\\]\\] entry named 'snli'"),
        ([Param.grid("colour.x=1")], "unknown key 'colour'"),
        ([Param.range("train.batch_size=16.0..64.0")], "train.batch_size"),
        ([Param.range("train.lr=1e-5..1e-3")], "a grid needs listed values"),
        ([Param.grid("train.lr=1e-4"), Param.grid("train.lr=1e-5")], "searched twice"),
        ([], "empty search space"),
    ]
    for space, words in cases:
        sampler = {"sampler": "random", "trials": 2} if "grid needs" not in words and any(p.is_range for p in space) else {}
        with pytest.raises(SweepError, match=words):
            Sweep(recipe, space, out=out, **sampler)
    with pytest.raises(SweepError, match="trials >= 1"):
        Sweep(recipe, [Param.grid("train.lr=1e-4")], out=out, sampler="random")
    assert not out.exists() and scripted.calls == []


def test_trial_recipes_apply_settings_turn_test_off_and_cap_steps():
    sweep = _sweep([Param.grid("model.keep_layers=[0,5],[0,3,5]"), Param.grid("data.snli-triplets.limit=500")],
                  out="unused", trial_steps=30)
    first = sweep.trial_recipe(next(sweep.planned()))
    assert first.model.keep_layers == (0, 5)
    assert [d.limit for d in first.data] == [62000, 500]
    assert first.eval.sts_test is False and first.train.max_steps == 30
    short = Sweep(_recipe().with_(train={"max_steps": 10}), [Param.grid("train.lr=1e-4")], out="unused", trial_steps=30)
    assert short.trial_recipe({"train.lr": 1e-4}).train.max_steps == 10  # a cap never lengthens a trial
    assert sweep.best_recipe is not None


# ----- running (scripted) ----------------------------------------------------------------------
def test_grid_sweep_writes_results_keeps_the_best_model_and_its_recipe(tmp_path, scripted):
    out = tmp_path / "sw"
    events = []
    sweep = _sweep([Param.grid("train.lr=1e-5,1e-4"), Param.grid("loss.scale=10,20")], out=out)
    done = sweep.run(callbacks=[events.append])
    rows = _rows(out)
    assert len(rows) == 4 and [r["status"] for r in rows] == ["completed"] * 4
    expected = [score(lr, s) for lr in (1e-5, 1e-4) for s in (10, 20)]
    assert [float(r["sts-dev_spearman_cosine"]) for r in rows] == pytest.approx(expected, abs=1e-6)
    assert [r["train.lr"] for r in rows] == ["1e-05", "1e-05", "0.0001", "0.0001"]
    assert all(r["steps"] == "8" and r["best_step"] == "8" for r in rows)
    assert done.best.number == 3 and done.best.params == {"train.lr": 1e-4, "loss.scale": 20}
    # Only the best trial keeps its model; every trial keeps config and curves (it is a run folder).
    assert [(out / f"trial-{i:03d}" / "model").is_dir() for i in range(4)] == [False, False, False, True]
    from workbench.training.runs import list_runs

    assert len(list_runs(out)) == 4
    best = sweep.best_recipe()
    assert best.train.lr == 1e-4 and best.loss.params["scale"] == 20 and best.eval.sts_test is True
    assert all(c["sts_test"] is False for c in scripted.calls)  # test is never seen by a trial
    assert sum(isinstance(e, TrialDone) for e in events) == 4 and any(isinstance(e, TrialEvent) for e in events)
    assert json.loads((out / "best.json").read_text())["trial"] == 3
    # Restarting a finished sweep runs nothing.
    again = _sweep([Param.grid("train.lr=1e-5,1e-4"), Param.grid("loss.scale=10,20")], out=out).run()
    assert len(scripted.calls) == 4 and again.best.number == 3


def test_a_different_sweep_in_the_folder_is_refused_unless_overwritten(tmp_path, scripted):
    out = tmp_path / "sw"
    _sweep([Param.grid("train.lr=1e-5,1e-4")], out=out).run()
    with pytest.raises(SweepError, match="holds another sweep .*params"):
        _sweep([Param.grid("train.lr=1e-5,2e-4")], out=out).run()
    _sweep([Param.grid("train.lr=1e-5,2e-4")], out=out, overwrite=True).run()
    assert [r["train.lr"] for r in _rows(out)] == ["1e-05", "0.0002"]


def test_a_failed_trial_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
    import workbench.recipes

    runs = ScriptedRuns(fail_when=lambda r: r.train.lr == 1e-5)
    monkeypatch.setattr(workbench.recipes, "run_recipe", runs)
    out = tmp_path / "sw"
    done = _sweep([Param.grid("train.lr=1e-5,1e-4,1e-3")], out=out).run()
    rows = _rows(out)
    assert [r["status"] for r in rows] == ["failed", "completed", "completed"]
    assert rows[0]["error"] == "RuntimeError: CUDA out of memory (scripted)" and rows[0]["sts-dev_spearman_cosine"] == ""
    assert done.best.number == 1
    _sweep([Param.grid("train.lr=1e-5,1e-4,1e-3")], out=out).run()
    assert len(runs.calls) == 3  # a failed trial is finished: a restart does not run it again


def test_an_interrupted_trial_is_run_again_and_only_it(tmp_path, scripted):
    out = tmp_path / "sw"
    space = [Param.grid("train.lr=1e-5,1e-4,1e-3")]

    def interrupt(event):
        if isinstance(event, TrialEvent) and event.number == 1 and isinstance(event.event, Step) and event.event.step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _sweep(space, out=out).run(callbacks=[interrupt])
    assert [r.status for r in read_trials(out)] == ["completed", "running"]
    _sweep(space, out=out).run()
    assert [c["run_dir"] for c in scripted.calls] == ["trial-000", "trial-001", "trial-001", "trial-002"]
    assert [r["status"] for r in _rows(out)] == ["completed"] * 3


def test_the_budget_stops_the_running_trial_and_starts_no_other(tmp_path, monkeypatch):
    import workbench.recipes
    import workbench.sweep as sweep_module

    monkeypatch.setattr(workbench.recipes, "run_recipe", ScriptedRuns(steps=8))
    clock = {"t": 0.0}

    def fake_clock():
        clock["t"] += 1.0  # one second per look at the clock
        return clock["t"]

    monkeypatch.setattr(sweep_module.time, "perf_counter", fake_clock)
    out = tmp_path / "sw"
    done = _sweep([Param.grid("train.lr=1e-5,1e-4,1e-3")], out=out, budget_minutes=8 / 60).run()
    rows = _rows(out)
    assert done.reason == "budget" and done.test_metrics == {}
    assert rows[-1]["status"] == "stopped" and "budget" in rows[-1]["error"]
    assert len(rows) < 3 and int(rows[-1]["steps"]) < 8


# ----- Optuna ----------------------------------------------------------------------------------
def test_tpe_sweep_prunes_bad_trials_and_resumes_its_study(tmp_path, scripted):
    pytest.importorskip("optuna")
    out = tmp_path / "sw"
    space = [Param.range("train.lr=1e-6..1e-2:log"), Param.grid("loss.scale=5,20,80")]
    done = _sweep(space, out=out, sampler="tpe", trials=12, seed=0).run()
    rows = _rows(out)
    assert len(rows) == 12 and {r["status"] for r in rows} <= {"completed", "pruned"}
    pruned = [r for r in rows if r["status"] == "pruned"]
    assert pruned, "the median pruner should stop some of 12 trials"
    assert all(int(r["steps"]) < 8 for r in pruned)
    completed = [float(r["sts-dev_spearman_cosine"]) for r in rows if r["status"] == "completed"]
    assert done.best.objective == pytest.approx(max(completed))
    # The same sweep asked for 14 trials: the study is rebuilt from the folder, the first 12 are not run again.
    calls = len(scripted.calls)
    _sweep(space, out=out, sampler="tpe", trials=14, seed=0).run()
    assert len(scripted.calls) == calls + 2 and len(_rows(out)) == 14


def test_tpe_without_optuna_says_what_to_install(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_optuna(name, *args, **kwargs):
        if name == "optuna" or name.startswith("optuna."):
            raise ImportError("no optuna")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_optuna)
    with pytest.raises(SweepError, match=r"pip install 'workbench\[sweep\]'"):
        _sweep([Param.grid("train.lr=1e-4,1e-5")], out="unused", sampler="tpe", trials=3)


# ----- for real: a tiny model through the CLI --------------------------------------------------
def test_cli_sweep_on_a_2x2_grid_trains_four_trials_and_tests_the_best(tmp_path, minilm_path, offline, capsys):
    from workbench.cli import main

    recipe = _write_recipe(tmp_path, minilm_path, steps=4, sts_test=True)
    out = tmp_path / "sweep"
    rc = main(["sweep", str(recipe), "--grid", "train.lr=1e-4,1e-3", "--grid", "loss.scale=10,20", "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0
    rows = _rows(out)
    assert len(rows) == 4 and all(r["status"] == "completed" for r in rows)
    assert printed.count("completed ·") == 4 and "best trial" in printed
    # Each row's objective is the best sts-dev value in that trial's own metrics.jsonl.
    from workbench.training import RunHistory

    starts = set()
    for r in rows:
        _, values = RunHistory.from_jsonl(Path(r["run_dir"]) / "metrics.jsonl").metric("sts-dev_spearman_cosine")
        assert float(r["sts-dev_spearman_cosine"]) == pytest.approx(max(values), abs=1e-6)
        starts.add(round(values[0], 6))
    # Every trial starts from the same random weights (the recipe has no [model] seed: [train] seed seeds them),
    # whatever ran before it in the process.
    assert len(starts) == 1
    best = json.loads((out / "best.json").read_text())
    best_row = max(rows, key=lambda r: float(r["sts-dev_spearman_cosine"]))
    assert best["trial"] == int(best_row["trial"])
    # STS-B test once, for the chosen trial: equal to evaluating its saved model independently.
    from workbench.data import load_stsb
    from workbench.evaluation import STSEvaluator
    from workbench.models import load_model

    model = load_model(Path(best_row["run_dir"]) / "model", device="cpu")
    independent = STSEvaluator.from_dataset(load_stsb("test"), name="sts-test")(model)
    assert best["test"]["sts-test_spearman_cosine"] == pytest.approx(independent["sts-test_spearman_cosine"], abs=1e-6)
    assert f"--set train.lr={best['params']['train.lr']!r}" in printed


def test_cli_sweep_refuses_a_bad_field_in_one_line(tmp_path, recipe_file, capsys):
    from workbench.cli import main

    rc = main(["sweep", str(recipe_file), "--grid", "train.batch_size=16,sixteen", "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "train.batch_size=sixteen" in err
    assert not (tmp_path / "s").exists()


def test_a_sweep_killed_mid_trial_reruns_only_the_unfinished_trial(tmp_path, minilm_path, offline):
    recipe = _write_recipe(tmp_path, minilm_path, steps=6, checkpoint_every=2)
    out = tmp_path / "sweep"
    command = [sys.executable, "-m", "workbench", "sweep", str(recipe), "--grid", "train.lr=1e-4,1e-3",
               "--grid", "loss.scale=20", "--out", str(out)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    log = out / "trial-001" / "metrics.jsonl"
    deadline = time.time() + 600
    try:
        while time.time() < deadline and proc.poll() is None:  # kill once trial 2 has taken a step
            if log.exists() and '"event": "Step"' in log.read_text(encoding="utf-8"):
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"the sweep ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert [r.status for r in read_trials(out)] == ["completed", "running"]
    first = (out / "trial-000" / "metrics.jsonl").read_text(encoding="utf-8")
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "1 already finished" in done.stdout and done.stdout.count("completed ·") == 1
    assert (out / "trial-000" / "metrics.jsonl").read_text(encoding="utf-8") == first  # not run again
    rows = _rows(out)
    assert [r["status"] for r in rows] == ["completed", "completed"] and rows[1]["steps"] == "6"
