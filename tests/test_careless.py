"""A careless (or hostile) user at the command line: outputs never replace data silently, one
process owns a run folder, a resume keeps its settings, and every foreseeable failure is one
line and exit code 2, found before the work where it can be."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench.cli import main


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder`` with its bytes and mode: what must not change."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mode) for p in folder.rglob("*") if p.is_file()}


def _refused(capsys, argv: list[str], *needles: str) -> str:
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1, err  # one line, no traceback
    for needle in needles:
        assert needle in err, err
    return err


@pytest.fixture()
def no_model(monkeypatch):
    """Loading a model fails the test: the refusal must come before any work."""
    import workbench.models

    def fail(*args, **kwargs):
        raise AssertionError("a model was loaded before the command refused")

    monkeypatch.setattr(workbench.models, "load_model", fail)


# ----- outputs never replace data silently --------------------------------------------------------
def test_encode_refuses_an_existing_out_unless_overwrite(tmp_path, capsys, no_model, monkeypatch):
    out = tmp_path / "important.txt"
    out.write_text("my notes\n")
    before = _snapshot(tmp_path)
    _refused(capsys, ["encode", "a sentence", "--out", str(out)], "already exists", "--overwrite")
    assert _snapshot(tmp_path) == before


def test_encode_with_overwrite_replaces_it_keeping_the_umask_mode(tmp_path, capsys, minilm_path):
    out = tmp_path / "emb.npy"
    out.write_text("old")
    old = os.umask(0o022)
    try:
        assert main(["encode", "a sentence", "--out", str(out), "--overwrite", "--model", str(minilm_path), "--quiet"]) == 0
    finally:
        os.umask(old)
    import numpy as np

    assert np.load(out).shape == (1, 384)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["emb.npy"]  # nothing left aside


def test_encode_never_writes_over_its_own_input(tmp_path, capsys, no_model):
    source = tmp_path / "in.txt"
    source.write_text("one\ntwo\n")
    before = _snapshot(tmp_path)
    for extra in ([], ["--overwrite"]):
        _refused(capsys, ["encode", "--file", str(source), "--out", str(source), *extra], "is the input file")
    link = tmp_path / "link.txt"
    link.symlink_to(source)  # the same file under another name
    _refused(capsys, ["encode", "--file", str(source), "--out", str(link), "--overwrite"], "is the input file")
    link.unlink()
    assert _snapshot(tmp_path) == before


def test_encode_corpus_refuses_an_existing_out_and_its_own_source(tmp_path, capsys, no_model):
    source = tmp_path / "corpus.txt"
    source.write_text("one\ntwo\n")
    out = tmp_path / "done.npy"
    out.write_bytes(b"finished work")
    before = _snapshot(tmp_path)
    _refused(capsys, ["encode-corpus", str(source), "--out", str(out)], "already exists", "--overwrite")
    _refused(capsys, ["encode-corpus", str(source), "--out", str(source), "--overwrite"], "is the input file")
    assert _snapshot(tmp_path) == before


def _unwritable(tmp_path: Path) -> Path:
    """A folder this process cannot write in (root writes anywhere on a writable file system, but not in /sys)."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    if os.access("/sys", os.F_OK):
        try:
            (Path("/sys") / "workbench-probe").write_text("x")
        except OSError:
            return Path("/sys")
    pytest.skip("no folder here that root cannot write in")


def test_an_unwritable_out_is_found_before_the_work(tmp_path, capsys, no_model):
    folder = _unwritable(tmp_path)
    _refused(capsys, ["encode", "a sentence", "--out", str(folder / "emb.npy")], "cannot write in")
    source = tmp_path / "corpus.txt"
    source.write_text("one\n")
    _refused(capsys, ["encode-corpus", str(source), "--out", str(folder / "emb.npy")], "cannot write in")
    _refused(capsys, ["eval", "--json", str(folder / "m.json")], "cannot write in")


# ----- bad input: one line, before the work ----------------------------------------------------
def test_file_given_a_folder_or_binary_text(tmp_path, capsys, no_model):
    _refused(capsys, ["encode", "--file", str(tmp_path), "--out", str(tmp_path / "e.npy")], "is a folder")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"fine\nthis one \x00 is not\n")
    _refused(capsys, ["encode", "--file", str(binary), "--out", str(tmp_path / "e.npy")], "line 2", "NUL byte")
    _refused(capsys, ["encode", "--file", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "e.npy")], "no such file")


def test_eval_checks_splits_and_json_before_evaluating(tmp_path, capsys, no_model):
    _refused(capsys, ["eval", "--splits", "dev,bogus"], "unknown 'bogus'", "choose from")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    _refused(capsys, ["eval", "--json", str(blocker / "m.json")], "is a file, not a folder")
    existing = tmp_path / "m.json"
    existing.write_text("{}")
    _refused(capsys, ["eval", "--json", str(existing)], "already exists")


def test_eval_json_into_a_missing_folder_is_written(tmp_path, capsys, minilm_path, stsb_dir):
    out = tmp_path / "new" / "folder" / "m.json"
    assert main(["eval", "--model", str(minilm_path), "--splits", "test", "--data", str(stsb_dir.parent),
                 "--json", str(out)]) == 0
    assert json.loads(out.read_text())["sts-test_spearman_cosine"] == pytest.approx(0.8203, abs=1e-4)


# ----- one process per run folder; a resume keeps its settings -------------------------------------
RECIPE = """
name = "tiny-careless"
kind = "train"

[model]
fresh = {{ vocab_size = 30522, hidden_size = 32, num_hidden_layers = 1, num_attention_heads = 2, intermediate_size = 64 }}
tokenizer = "{tokenizer}"
dense = 16
normalize = true
max_seq_length = 16
seed = 0

[[data]]
name = "pairs"
loader = "file"
path = "{pairs}"

[eval]
sts_dev = false
sts_test = false

[train]
lr = 1e-3
batch_size = 16
max_steps = {steps}
log_every = 1
eval_every = 0
checkpoint_every = 5
"""


@pytest.fixture()
def tiny_recipe(tmp_path, minilm_path):
    def make(steps: int) -> Path:
        pairs = tmp_path / "pairs.tsv"
        rows = [f"the thing number {i}\ta thing called {i}" for i in range(320)]
        pairs.write_text("anchor\tpositive\n" + "\n".join(rows) + "\n", encoding="utf-8")
        path = tmp_path / f"tiny-{steps}.toml"
        path.write_text(RECIPE.format(tokenizer=minilm_path, pairs=pairs, steps=steps), encoding="utf-8")
        return path

    return make


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
            "WORKBENCH_CACHE": str(tmp_path / "cache")}


def _events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_two_simultaneous_starts_into_one_run_folder(tmp_path, tiny_recipe):
    recipe, run_dir = tiny_recipe(400), tmp_path / "shared-run"
    cmd = [sys.executable, "-m", "workbench", "train", str(recipe), "--run-dir", str(run_dir)]
    procs = [subprocess.Popen(cmd, cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    results = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    codes = sorted(rc for rc, _ in results)
    assert codes == [0, 2], results
    refused = next(err for rc, err in results if rc == 2).strip().splitlines()
    assert len(refused) == 1 and "is in use by process" in refused[0] and "on " in refused[0], refused
    kinds = [e["event"] for e in _events(run_dir)]
    assert kinds.count("Started") == 1 and kinds.count("Done") == 1
    assert not (run_dir / ".lock").exists()  # given back when the run ended


def test_a_live_lock_names_its_holder_and_a_stale_one_is_taken_over(tmp_path):
    from workbench.training.runs import RunDir, RunFolderBusy

    run = RunDir(tmp_path / "run")
    run.claim()
    with pytest.raises(RunFolderBusy, match=f"in use by process {os.getpid()}"):
        RunDir(tmp_path / "run").claim()
    run.release()
    assert not run.lock_path.exists()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket

    run.lock_path.write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "since": "then", "token": "x"}))
    again = RunDir(tmp_path / "run")
    again.claim()  # its process is gone: the folder is free
    assert json.loads(again.lock_path.read_text())["pid"] == os.getpid()
    again.release()


def test_a_fresh_start_into_a_folder_holding_a_run_is_refused(tmp_path, tiny_recipe, capsys):
    recipe, run_dir = tiny_recipe(3), tmp_path / "run"
    assert main(["train", str(recipe), "--run-dir", str(run_dir)]) == 0
    capsys.readouterr()
    before = _snapshot(run_dir)
    _refused(capsys, ["train", str(recipe), "--run-dir", str(run_dir)], "holds a completed run", "--resume", "--overwrite")
    assert _snapshot(run_dir) == before
    assert main(["train", str(recipe), "--run-dir", str(run_dir), "--overwrite"]) == 0


def _interrupted_run(recipe: Path, run_dir: Path) -> None:
    """A run killed (here: interrupted) after its step-5 checkpoint."""
    from workbench.recipes import load_recipe, run_recipe

    def interrupt(event):
        if getattr(event, "step", 0) == 7 and type(event).__name__ == "Step":
            raise KeyboardInterrupt

    from workbench.training import Trainer

    original = Trainer._emit

    def emit(self, event):
        original(self, event)
        interrupt(event)

    Trainer._emit = emit
    try:
        with pytest.raises(KeyboardInterrupt):
            run_recipe(load_recipe(recipe), run_dir=run_dir)
    finally:
        Trainer._emit = original


def test_resume_with_changed_settings_is_refused_unless_allowed(tmp_path, tiny_recipe, capsys):
    recipe, run_dir = tiny_recipe(12), tmp_path / "run"
    _interrupted_run(recipe, run_dir)
    assert (run_dir / "checkpoints").is_dir()
    before = _snapshot(run_dir)
    err = _refused(capsys, ["train", str(recipe), "--run-dir", str(run_dir), "--resume", "--set", "train.lr=1e-2"],
                   "train.lr 0.001 -> 0.01", "--allow-changes")
    assert "batch_size" not in err  # only what changed is named
    _refused(capsys, ["train", str(recipe), "--run-dir", str(run_dir), "--resume", "--set", "train.batch_size=8",
                      "--set", "data.limit=100"], "train.batch_size 16 -> 8", "data[0].limit None -> 100")
    assert _snapshot(run_dir) == before
    assert main(["train", str(recipe), "--run-dir", str(run_dir), "--resume", "--set", "train.lr=1e-2",
                 "--allow-changes"]) == 0
    changed = [e for e in _events(run_dir) if e["event"] == "Changed"]
    assert changed == [{"event": "Changed", "step": 7, "changes": {"train.lr": [0.001, 0.01]}}]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["train"]["lr"] == 0.01 and config["changes"] == [{"step": 7, "changes": {"train.lr": [0.001, 0.01]}}]
    card = (run_dir / "model" / "README.md").read_text()
    assert "### Settings Changed During Training" in card and "| after step 7 | `train.lr` | `0.001` | `0.01` |" in card
    assert _events(run_dir)[-1]["event"] == "Done" and _events(run_dir)[-1]["reason"] == "completed"


def test_resume_with_the_same_settings_needs_no_permission(tmp_path, tiny_recipe):
    recipe, run_dir = tiny_recipe(12), tmp_path / "run"
    _interrupted_run(recipe, run_dir)
    t0 = time.time()
    assert main(["train", str(recipe), "--run-dir", str(run_dir), "--resume"]) == 0
    assert time.time() - t0 < 300
    assert not [e for e in _events(run_dir) if e["event"] == "Changed"]


def test_a_failed_final_save_is_a_failed_event_and_one_line(tmp_path, tiny_recipe, capsys, monkeypatch):
    from workbench.models.model import EmbeddingModel

    recipe, run_dir = tiny_recipe(3), tmp_path / "run"
    real_save = EmbeddingModel.save

    def full_disk(self, path, *args, **kwargs):
        if Path(path).name == "model" and Path(path).parent == run_dir:
            raise OSError(28, "No space left on device")
        return real_save(self, path, *args, **kwargs)

    monkeypatch.setattr(EmbeddingModel, "save", full_disk)
    _refused(capsys, ["train", str(recipe), "--run-dir", str(run_dir)], "No space left on device", "saving the final model")
    done = _events(run_dir)[-1]
    assert done["event"] == "Done" and done["reason"] == "failed" and "No space left on device" in done["error"]
    from workbench.training import list_runs

    assert [r.status for r in list_runs(tmp_path)] == ["failed"]


def test_a_full_disk_while_writing_the_embeddings_is_one_line_and_leaves_nothing(tmp_path, capsys, minilm_path,
                                                                                  monkeypatch):
    import numpy as np

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", full)
    _refused(capsys, ["encode", "a sentence", "--out", str(tmp_path / "e.npy"), "--model", str(minilm_path), "--quiet"],
             "No space left on device")
    assert list(tmp_path.iterdir()) == []  # no half-written file, no temporary left aside
