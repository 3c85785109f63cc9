"""One copy of the model per finished run, and `clean_runs` / `workbench clean` (issue #15 point 10).

A finished run keeps model/ and no best/ (model/ holds the best weights); a run that stops before
its final save keeps best/ for its resume. The clean-up's numbers are checked against byte counts
made here with os.walk, on run folders built by hand (no training needed for those).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from workbench import load_model
from workbench.cli import main
from workbench.losses import MultipleNegativesRankingLoss
from workbench.training import (
    Done,
    Eval,
    Started,
    Step,
    TrainConfig,
    Trainer,
    TrainingError,
    clean_runs,
    list_runs,
)
from workbench.training.disk import disk_usage, find_runs
from workbench.training.runs import RunDir

pytestmark = pytest.mark.usefixtures("one_thread")

NOUNS = ["cat", "dog", "car", "tree", "house", "river", "bird", "phone"]
PAIRS = {"anchor": [f"the {NOUNS[i % 8]} number {i}" for i in range(32)],
         "positive": [f"a {NOUNS[i % 8]} that is item {i}" for i in range(32)]}
# Scores by the step evaluated: the best is step 2, not the last one, so the run ends by taking the
# step-2 weights back from best/ and saving them as model/.
SCORES = {0: 0.1, 2: 0.9, 4: 0.5, 6: 0.4, 8: 0.3}


class Scripted:
    """An evaluator whose score is set by the step the trainer is at (SCORES)."""

    primary_metric = "score"

    def __init__(self) -> None:
        self.trainer: Trainer | None = None

    def __call__(self, model) -> dict[str, float]:
        return {"score": SCORES[self.trainer.step]}


def _trainer(model_dir: str, run_dir: Path, keep_best: bool = True, callbacks=()) -> Trainer:
    model = load_model(model_dir, device="cpu")
    cfg = TrainConfig(lr=1e-3, batch_size=8, max_steps=8, eval_every=2, log_every=1, checkpoint_every=2,
                      keep_best=keep_best, seed=0)
    evaluator = Scripted()
    trainer = Trainer(model, MultipleNegativesRankingLoss(model), cfg, PAIRS, evaluator, run_dir=run_dir,
                      callbacks=list(callbacks))
    evaluator.trainer = trainer
    return trainer


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_model(folder, device="cpu").state_dict()


def _same_weights(a: Path, b: Path) -> bool:
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.fixture(scope="module")
def student(tiny_bert, tmp_path_factory) -> str:
    return str(tiny_bert(layers=1).save(tmp_path_factory.mktemp("student") / "model"))


# ----- one copy per finished run ---------------------------------------------------------------


def test_a_finished_run_keeps_model_and_no_best(student, tmp_path):
    run_dir = tmp_path / "run"
    snapshot = tmp_path / "best-at-done"

    def at_done(event) -> None:  # Done is logged once model/ is complete, before best/ goes
        if isinstance(event, Done):
            assert (run_dir / "model" / "modules.json").is_file() and (run_dir / "best").is_dir()
            shutil.copytree(run_dir / "best", snapshot)

    _trainer(student, run_dir, callbacks=[at_done]).fit()
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.json", "metrics.jsonl", "model"]
    assert _same_weights(run_dir / "model", snapshot), "model/ holds the weights best/ held"
    done = list_runs(tmp_path)[0].history.done
    assert (done.reason, done.best_step) == ("completed", 2)


def test_without_keep_best_no_best_folder_is_ever_written(student, tmp_path):
    run_dir = tmp_path / "run"
    seen = []
    _trainer(student, run_dir, keep_best=False, callbacks=[lambda e: seen.append((run_dir / "best").exists())]).fit()
    assert seen and not any(seen)
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.json", "metrics.jsonl", "model"]


def test_an_interrupted_run_keeps_best_for_its_resume_then_ends_with_one_copy(student, tmp_path):
    run_dir = tmp_path / "run"

    def interrupt(event) -> None:
        if isinstance(event, Step) and event.step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _trainer(student, run_dir, callbacks=[interrupt]).fit()
    assert (run_dir / "best" / "modules.json").is_file() and not (run_dir / "model").exists()
    assert [r.status for r in list_runs(tmp_path)] == ["interrupted"]
    kept = tmp_path / "best-after-interrupt"
    shutil.copytree(run_dir / "best", kept)

    report = clean_runs(tmp_path)  # the resume state of an interrupted run is not clean-up material
    assert report.removed == () and (run_dir / "best").is_dir() and RunDir(run_dir).latest_checkpoint() is not None

    _trainer(student, run_dir).fit(resume=True)
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.json", "metrics.jsonl", "model"]
    assert _same_weights(run_dir / "model", kept), "the resume took the step-2 weights back from best/"


def test_a_failed_final_save_keeps_best(student, tmp_path):
    run_dir = tmp_path / "run"
    trainer = _trainer(student, run_dir)

    def full_disk():
        raise OSError(28, "No space left on device")

    trainer._save_final = full_disk  # the disk fills up as the final model is written
    with pytest.raises(TrainingError, match="No space left"):
        trainer.fit()
    assert (run_dir / "best" / "modules.json").is_file() and not (run_dir / "model").exists()
    assert list_runs(tmp_path)[0].status == "failed"


# ----- clean_runs on run folders built by hand -------------------------------------------------


def _files(folder: Path, sizes: dict[str, int]) -> None:
    for name, n in sizes.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(n))


def _run(root: Path, name: str, reason: str | None, age: int, folders: dict[str, dict[str, int]]) -> Path:
    """A run folder: config.json, curves (4 steps, 2 evaluations), Done(reason) unless None, and
    ``folders`` ({"model": {"model.safetensors": 3000}, ...}); its config.json is ``age`` hours old."""
    run = RunDir(root / name)
    run.start({"train": {"lr": 1e-4}, "name": name})
    run.log(Started(total_steps=4, examples=32, batch_size=8))
    for step in (1, 2, 3, 4):
        run.log(Step(step=step, epoch=step / 4, loss=2.0 / step, lr=1e-4, examples_per_s=10.0, elapsed_s=step,
                     total_steps=4))
        if step % 2 == 0:
            run.log(Eval(step=step, epoch=step / 4, metrics={"score": step / 10}, primary="score", value=step / 10,
                         is_best=True))
    if reason is not None:
        run.log(Done(step=4, reason=reason, elapsed_s=4.0, best_step=4, best_value=0.4))
    for folder, sizes in folders.items():
        _files(run.path / folder, sizes)
    stamp = 1_700_000_000 + 3600 * (100 - age)
    os.utime(run.path / "config.json", (stamp, stamp))
    return run.path


def _walk_bytes(path: Path) -> int:
    """The bytes of the files under ``path``, counted here (not with the module's own helper)."""
    if path.is_file():
        return path.stat().st_size
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def _tree(root: Path) -> dict[str, int]:
    return {str(Path(d, f).relative_to(root)): os.path.getsize(os.path.join(d, f))
            for d, _, files in os.walk(root) for f in files}


def _curves(root: Path) -> dict[str, tuple]:
    return {str(r.path.relative_to(root)): (r.history.steps, r.history.losses, r.history.metric("score"))
            for r in find_runs(root)}


W = {"model.safetensors": 3000, "config.json": 200}  # a small stand-in for a model folder


@pytest.fixture()
def runs(tmp_path) -> dict[str, Path]:
    """A class's rehearsal: finished runs with best/ and checkpoints, resumable ones, a sweep, a live run."""
    root = tmp_path / "runs"
    ckpt = {"checkpoints/step-0000002": W, "checkpoints/.step-0000004.saving-0a1b2c3d": {"model.safetensors": 99}}
    paths = {
        "old": _run(root, "old", "completed", 9, {"model": W, "best": W, **ckpt,
                                                  ".model.saving-1a2b3c4d": {"model.safetensors": 1234}}),
        "stopped": _run(root, "stopped", "stopped", 8, {"model": W, "best": {"model.safetensors": 2900}}),
        "interrupted": _run(root, "interrupted", "interrupted", 7, {"best": W, "checkpoints/step-0000004": W}),
        "killed": _run(root, "killed", None, 6, {**ckpt, ".best.old-deadbeef": {"model.safetensors": 777}}),
        "trial": _run(root / "sweeps" / "lr", "trial-000", "completed", 5, {"model": W, "best": W}),
        "new": _run(root, "new", "completed", 1, {"model": {"model.safetensors": 4000}}),
        "live": _run(root, "live", None, 0, {"best": W, "checkpoints/step-0000002": W}),
    }
    RunDir(paths["live"]).claim()  # held by this (live) process: a run that is training
    paths["root"] = root
    return paths


def test_dry_run_removes_nothing_and_reports_what_the_real_run_frees(runs):
    root = runs["root"]
    before, curves = _tree(root), _curves(root)
    # the half checkpoint left aside in old/checkpoints goes with that folder; killed/'s is a leftover of its own
    expected = [runs["old"] / "best", runs["old"] / "checkpoints", runs["old"] / ".model.saving-1a2b3c4d",
                runs["stopped"] / "best", runs["killed"] / ".best.old-deadbeef",
                runs["killed"] / "checkpoints" / ".step-0000004.saving-0a1b2c3d", runs["trial"] / "best"]
    expected_bytes = sum(_walk_bytes(p) for p in expected)

    dry = clean_runs(root, dry_run=True)
    assert _tree(root) == before, "a dry run removes nothing"
    assert sorted(r.path for r in dry.removed) == sorted(expected)
    assert dry.freed == expected_bytes and dry.runs == 4

    real = clean_runs(root)
    assert sorted(r.path for r in real.removed) == sorted(expected) and real.freed == dry.freed == expected_bytes
    assert sum(before.values()) - sum(_tree(root).values()) == expected_bytes, "freed is what left the disk"
    assert not any(p.exists() for p in expected)
    for name in ("old", "stopped", "trial", "new"):
        assert (runs[name] / "model" / "model.safetensors").is_file(), f"{name} keeps its model"
    assert (runs["interrupted"] / "best").is_dir() and (runs["interrupted"] / "checkpoints").is_dir()
    assert (runs["killed"] / "checkpoints" / "step-0000002").is_dir(), "an unfinished run keeps its resume state"
    assert real.skipped == (runs["live"],) and (runs["live"] / "best").is_dir() and (runs["live"] / ".lock").is_file()
    assert _curves(root) == curves and len(curves) == 7, "every run's curves still read"
    assert [r.status for r in list_runs(root)] == ["completed", "stopped", "interrupted", "unfinished", "completed",
                                                   "running"]
    assert clean_runs(root).removed == (), "a second clean-up finds nothing more"


def test_keep_models_removes_the_weights_of_older_runs_but_never_the_curves(runs):
    root = runs["root"]
    before, curves = _tree(root), _curves(root)
    live = {k: v for k, v in before.items() if k.startswith("live/")}

    report = clean_runs(root, keep_models=2)  # "new" and the sweep's trial are the 2 newest with a model
    gone = {r.path for r in report.removed}
    assert {runs["old"] / "model", runs["stopped"] / "model"} <= gone
    assert {runs["interrupted"] / "best", runs["interrupted"] / "checkpoints", runs["killed"] / "checkpoints"} <= gone
    assert (runs["new"] / "model").is_dir() and (runs["trial"] / "model").is_dir() and not (runs["trial"] / "best").exists()
    assert report.freed == sum(before.values()) - sum(_tree(root).values())
    assert {k: v for k, v in _tree(root).items() if k.startswith("live/")} == live, "the live run is untouched"
    assert _curves(root) == curves
    for info in find_runs(root):
        if info.path != runs["live"]:
            assert {p.name for p in info.path.iterdir()} <= {"config.json", "metrics.jsonl", "model"}

    clean_runs(root, keep_models=0)
    assert not any((runs[n] / "model").exists() for n in ("new", "trial")) and _curves(root) == curves


def test_disk_usage_counts_each_folder(runs):
    usage = {u.path: u for u in disk_usage(runs["root"])}
    old = usage[runs["old"]]
    assert (old.status, old.model, old.best) == ("completed", _walk_bytes(runs["old"] / "model"), 3200)
    assert old.checkpoints == _walk_bytes(runs["old"] / "checkpoints")
    assert old.total == _walk_bytes(runs["old"]) and usage[runs["killed"]].total == _walk_bytes(runs["killed"])
    assert usage[runs["live"]].status == "running" and usage[runs["interrupted"]].model is None
    assert usage[runs["old"]].finished and not usage[runs["interrupted"]].finished


def test_a_run_taken_after_planning_is_skipped(runs, monkeypatch):
    """A run that starts between the look and the removal is skipped, not cut short."""
    import workbench.training.disk as disk

    real_plan = disk.plan_clean

    def plan_then_start(usage, keep_models=None):
        plan = real_plan(usage, keep_models)
        RunDir(runs["old"]).claim()  # a resume takes the folder meanwhile
        return plan

    monkeypatch.setattr(disk, "plan_clean", plan_then_start)
    report = clean_runs(runs["root"])
    assert runs["old"] in report.skipped and (runs["old"] / "best").is_dir()
    assert not (runs["stopped"] / "best").exists()


# ----- the command line ------------------------------------------------------------------------


def test_cli_prints_a_line_per_removal_and_the_total(runs, capsys):
    root = runs["root"]
    assert main(["clean", str(root), "--dry-run"]) == 0
    dry = capsys.readouterr().out.splitlines()
    assert dry[0].startswith(f"would remove {runs['old'] / 'best'} (3.2 kB): ")
    assert dry[-1].startswith("would free ") and "in 4 runs" in dry[-1]
    assert f"skipped {runs['live']}: a running process holds it" in dry

    assert main(["clean", str(root)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:-1] == [line.replace("would remove ", "removed ", 1) for line in dry[:-1]]
    assert out[-1] == dry[-1].replace("would free", "freed").removesuffix(" (dry run: nothing was removed)")
    assert clean_runs(root, dry_run=True).removed == ()

    assert main(["clean", str(root), "--models", "--dry-run"]) == 0
    assert f"would remove {runs['new'] / 'model'}" in capsys.readouterr().out


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["clean", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"workbench clean: error: {tmp_path / 'nowhere'}: no such folder (give the folder that holds the runs, e.g. runs)"
    (tmp_path / "file").write_text("x")
    assert main(["clean", str(tmp_path / "file")]) == 2
    assert "is a file" in capsys.readouterr().err
    assert main(["clean", str(tmp_path), "--keep", "-1"]) == 2
    assert "--keep -1" in capsys.readouterr().err


def test_a_sweep_trial_whose_model_was_cleaned_says_so(tmp_path):
    import json

    from workbench.sweep import read_trials

    folder = tmp_path / "sweep" / "trial-000"
    (folder / "model").mkdir(parents=True)
    record = {"number": 0, "params": {"train.lr": 1e-4}, "status": "completed", "objective": 0.8, "has_model": True,
              "run_dir": str(folder)}
    (folder / "trial.json").write_text(json.dumps(record), encoding="utf-8")
    assert read_trials(tmp_path / "sweep")[0].has_model is True
    (folder / "model").rmdir()  # what `workbench clean --models` does to it
    assert read_trials(tmp_path / "sweep")[0].has_model is False
