"""Crash safety: training and the teacher cache killed by SIGKILL at chosen moments lose nothing.

Each kill point runs a tiny training (random BERT, hidden 32, dropout on, MiniLM's tokenizer) in a
child process that kills itself with SIGKILL at that moment: after a checkpoint, inside a step,
halfway through writing a checkpoint, during an evaluation, between the two renames that swap
``best/``, halfway through a metrics line, during the final model save and while the checkpoints
are cleared after it. The run is then resumed here, in the test process, from whatever the kill
left on disk; its final weights and metrics must equal those of an uninterrupted run (<= 1e-4).

The teacher cache (:func:`workbench.distill.teacher_embeddings`) is killed the same way while it
writes, and the next call must return exactly what a fresh computation returns.
"""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from workbench import load_model
from workbench.training import RunHistory, Started, list_runs
from workbench.training.runs import RunDir

pytestmark = pytest.mark.usefixtures("one_thread")


TRAIN_CHILD = textwrap.dedent(
    '''
    """Train a tiny model; with a kill point named on the command line, die by SIGKILL there."""
    import io
    import os
    import shutil
    import signal
    import sys
    from pathlib import Path

    import torch

    import workbench.models.model as model_module
    import workbench.training.runs as runs_module
    from workbench import load_model
    from workbench.losses import MultipleNegativesRankingLoss
    from workbench.models.modules import Dense, Transformer
    from workbench.training import Checkpoint, Step, TrainConfig, Trainer

    NOUNS = ["cat", "dog", "car", "tree", "house", "river", "bird", "phone", "chair", "cloud"]
    DATA = {"anchor": [f"the {NOUNS[i % 10]} number {i}" for i in range(60)],
            "positive": [f"a {NOUNS[i % 10]} that is item {i}" for i in range(60)]}
    # 12 steps: evaluations at 0, 4, 8, 12; checkpoints at 3, 6, 9 (two kept); a Step event each step.
    CONFIG = TrainConfig(lr=1e-3, batch_size=16, max_steps=12, warmup_ratio=0.1, eval_every=4, log_every=1,
                         checkpoint_every=3, keep_checkpoints=2, keep_best=True, seed=3)


    class MeanPositiveCosine:
        """Mean cosine of held pairs; ``hook(call)`` runs between its two encodes (mid-evaluation)."""

        primary_metric = "mean_pos_cos"

        def __init__(self):
            self.calls, self.hook = 0, None

        def __call__(self, model):
            self.calls += 1
            a = model.encode(DATA["anchor"][:24])
            if self.hook is not None:
                self.hook(self.calls)
            b = model.encode(DATA["positive"][:24])
            return {"mean_pos_cos": float((a * b).sum(1).mean())}


    def make_trainer(run_dir, student, callbacks=()):
        # the test's saved random student; BertConfig's default dropout (0.1) stays on: resuming
        # must restore the RNG exactly.
        model = load_model(student, device="cpu")
        return Trainer(model, MultipleNegativesRankingLoss(model), CONFIG, DATA, MeanPositiveCosine(),
                       run_dir=run_dir, callbacks=list(callbacks))


    def die():
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)


    def install(point, trainer, run_dir):
        """Arrange for this process to die at ``point``."""
        if point.startswith("after-checkpoint-"):
            step = int(point.rsplit("-", 1)[1])
            trainer.callbacks.append(lambda e: die() if isinstance(e, Checkpoint) and e.step == step else None)
        elif point == "mid-step-7":
            loss, calls = trainer.loss, []
            forward = loss.forward

            def dying_forward(*args, **kwargs):
                value = forward(*args, **kwargs)
                calls.append(1)
                if len(calls) == 7:  # step 7: forward done (dropout drew its masks), no backward yet
                    die()
                return value

            loss.forward = dying_forward
        elif point == "checkpoint-state-6":
            real_save = torch.save

            def half_save(obj, f, *args, **kwargs):
                if isinstance(obj, dict) and obj.get("step") == 6:
                    buf = io.BytesIO()
                    real_save(obj, buf, *args, **kwargs)
                    with open(f, "wb") as fh:  # half of trainer_state.pt reaches the disk
                        fh.write(buf.getvalue()[: len(buf.getvalue()) // 2])
                    die()
                return real_save(obj, f, *args, **kwargs)

            runs_module.torch.save = half_save
        elif point == "checkpoint-model-6":
            real_save = Transformer.save

            def half_model(self, path):
                real_save(self, path)
                if ".step-0000006." in str(path):
                    weights = Path(path) / "model.safetensors"
                    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
                    die()

            Transformer.save = half_model
        elif point == "evaluation-8":
            trainer.evaluator.hook = lambda call: die() if call == 3 else None  # evaluations at 0, 4, 8
        elif point == "best-swap":
            def half_swap(src, dst):
                if dst.name == "best" and dst.exists():
                    os.replace(dst, dst.with_name(".best.old-dying"))  # the old best is out, the new not in
                    die()
                return real_swap(src, dst)

            real_swap = model_module.replace_dir
            model_module.replace_dir = half_swap
        elif point == "log-write-10":
            real_log = runs_module.RunDir.log

            def torn_log(self, event):
                if isinstance(event, Step) and event.step == 10:
                    line = runs_module.to_json(event)
                    with open(self.metrics_path, "a", encoding="utf-8") as fh:
                        fh.write(line[: len(line) // 2])
                    die()
                return real_log(self, event)

            runs_module.RunDir.log = torn_log
        elif point == "final-save":
            real_dense = Dense.save

            def dying_dense(self, folder):
                folder = Path(folder)
                if folder.parent.parent == run_dir and folder.parent.name.startswith(".model.saving-"):
                    (folder / "model.safetensors").write_bytes(b"half a file")
                    die()
                return real_dense(self, folder)

            Dense.save = dying_dense
        elif point == "cleanup":
            real_rmtree = shutil.rmtree

            def dying_rmtree(path, *args, **kwargs):
                path = Path(path)
                steps = sorted(path.glob("step-*")) if "checkpoints" in path.name else []
                if steps:  # the folder of all checkpoints, deleted after the final save
                    newest = steps[-1]
                    (newest / "model" / "model.safetensors").unlink()  # the delete got this far
                    die()
                return real_rmtree(path, *args, **kwargs)

            shutil.rmtree = dying_rmtree
        elif point != "none":
            raise SystemExit(f"unknown kill point {point}")


    if __name__ == "__main__":
        torch.set_num_threads(1)  # as the test process: same arithmetic, and no spinning threads
        run_dir, student, point = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
        trainer = make_trainer(run_dir, student)
        install(point, trainer, run_dir)
        trainer.fit()
    '''
)

# kill point -> the checkpoint step a resume starts from (None: decided by the run, see the test).
KILL_POINTS: dict[str, int | None] = {
    "after-checkpoint-3": 3,
    "after-checkpoint-9": 9,
    "mid-step-7": 6,
    "checkpoint-state-6": 3,
    "checkpoint-model-6": 3,
    "evaluation-8": 6,
    "best-swap": None,
    "log-write-10": 9,
    "final-save": 9,
}


@pytest.fixture(scope="module")
def child(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("child") / "train_child.py"
    path.write_text(TRAIN_CHILD, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def helpers(child) -> dict[str, Any]:
    """The child's own functions, to run the reference and the resumed runs in this process."""
    return runpy.run_path(str(child), run_name="train_child")


@pytest.fixture(scope="module")
def student(tiny_bert, tmp_path_factory) -> str:
    """The folder of the random model every training here starts from (the child loads it too)."""
    return str(tiny_bert(layers=2, dense=16, normalize=True).save(tmp_path_factory.mktemp("student") / "model"))


@pytest.fixture(scope="module")
def reference(helpers, student, tmp_path_factory) -> Path:
    """An uninterrupted run, done once for every kill point."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    helpers["make_trainer"](run_dir, student).fit()
    return run_dir


def _kill(child: Path, run_dir: Path, student: str, point: str) -> None:
    proc = subprocess.run([sys.executable, str(child), str(run_dir), student, point],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, f"{point}: the child was not killed (rc {proc.returncode}): {proc.stderr[-2000:]}"


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_model(folder, device="cpu").state_dict()


def _assert_same_run(ref: Path, run: Path) -> None:
    """Final weights, the loss curve, every evaluation and the ending agree to 1e-4."""
    wa, wb = _weights(ref / "model"), _weights(run / "model")
    assert wa.keys() == wb.keys()
    assert max(float((wa[k] - wb[k]).abs().max()) for k in wa) <= 1e-4
    a, b = RunHistory.from_jsonl(ref / "metrics.jsonl"), RunHistory.from_jsonl(run / "metrics.jsonl")
    assert a.steps == b.steps == list(range(1, 13))
    assert np.allclose(a.losses, b.losses, atol=1e-4, rtol=0)
    (sa, va), (sb, vb) = a.metric("mean_pos_cos"), b.metric("mean_pos_cos")
    assert sa == sb == [0, 4, 8, 12] and np.allclose(va, vb, atol=1e-4, rtol=0)
    assert a.done.reason == b.done.reason == "completed"
    assert a.done.best_step == b.done.best_step
    assert abs(a.done.best_value - b.done.best_value) <= 1e-4


def _expected_start(point: str, ref: Path) -> int:
    if KILL_POINTS[point] is not None:
        return KILL_POINTS[point]
    # best-swap: the child dies at the first evaluation that beats an earlier best; a resume
    # starts at the last checkpoint before it (an evaluation runs before a same-step checkpoint).
    evals = RunHistory.from_jsonl(ref / "metrics.jsonl").evals
    dying = next(e.step for e in evals if e.step > 0 and e.is_best)
    return max(s for s in (3, 6, 9) if s < dying)


@pytest.mark.slow
@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_sigkill_then_resume_equals_an_uninterrupted_run(point, child, helpers, reference, student, tmp_path):
    run_dir = tmp_path / "run"
    _kill(child, run_dir, student, point)

    # What the kill left: no half-written model under a final name, no half checkpoint trusted.
    assert not (run_dir / "model").exists(), "the final model appears only when complete"
    start = _expected_start(point, reference)
    found = RunDir(run_dir).latest_checkpoint()
    assert found is not None and found[0].parent.name == f"step-{start:07d}"
    for ckpt in (run_dir / "checkpoints").glob("step-*"):
        load_model(ckpt / "model", device="cpu")  # every checkpoint under its final name is whole
    if point.startswith("checkpoint-"):
        assert list((run_dir / "checkpoints").glob(".step-0000006.*")), "the half-written checkpoint is left aside"
    assert [r.status for r in list_runs(tmp_path)] == ["unfinished"]

    events: list[Any] = []
    helpers["make_trainer"](run_dir, student, callbacks=[events.append]).fit(resume=True)
    assert isinstance(events[0], Started) and events[0].start_step == start
    _assert_same_run(reference, run_dir)
    leftovers = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob(".*"))
    assert leftovers == [], f"what the kill left aside is removed by the resume: {leftovers}"
    assert [r.status for r in list_runs(tmp_path)] == ["completed"]


@pytest.fixture(scope="module")
def killed_in_cleanup(child, student, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("cleanup") / "run"
    _kill(child, run_dir, student, "cleanup")
    return run_dir


@pytest.mark.slow
def test_sigkill_while_clearing_checkpoints_keeps_the_final_model(killed_in_cleanup, reference):
    """The last act of a run is deleting its checkpoints; a kill there loses nothing.

    The final model is already complete; a checkpoint half-deleted by the kill must never be
    offered for a resume (a resume would fail to load it).
    """
    run_dir = killed_in_cleanup
    wa, wb = _weights(reference / "model"), _weights(run_dir / "model")
    assert max(float((wa[k] - wb[k]).abs().max()) for k in wa) <= 1e-4
    found = RunDir(run_dir).latest_checkpoint()
    if found is not None:
        load_model(found[0], device="cpu")
    history = RunHistory.from_jsonl(run_dir / "metrics.jsonl")
    assert history.steps == list(range(1, 13)) and history.metric("mean_pos_cos")[0] == [0, 4, 8, 12]


@pytest.mark.slow
def test_a_run_killed_while_clearing_checkpoints_reads_as_completed(killed_in_cleanup):
    assert [r.status for r in list_runs(killed_in_cleanup.parent)] == ["completed"]


# ----- the teacher-embedding cache -----------------------------------------------------------------

CACHE_CHILD = textwrap.dedent(
    '''
    """Compute teacher embeddings into a cache; die by SIGKILL at the kill point named."""
    import os
    import signal
    import sys

    import torch

    import workbench.distill as distill
    from workbench import load_model

    TEXTS = [f"sentence number {i} about a {['cat', 'dog', 'tree'][i % 3]}" for i in range(40)]


    def make_teacher(folder):
        return load_model(folder, device="cpu")  # the test's saved random teacher, in eval mode


    def die():
        os.kill(os.getpid(), signal.SIGKILL)


    if __name__ == "__main__":
        torch.set_num_threads(1)
        cache_dir, folder, point = sys.argv[1], sys.argv[2], sys.argv[3]
        teacher = make_teacher(folder)
        real_write = distill.atomic_write_text
        if point == "mid-encode":
            encode, calls = teacher.encode, []

            def dying_encode(texts, *args, **kwargs):
                calls.append(1)
                if len(calls) == 3:  # two chunks written and recorded, the third being computed
                    die()
                return encode(texts, *args, **kwargs)

            teacher.encode = dying_encode
        elif point == "chunk-written-not-recorded":
            from workbench import corpus

            real_progress = corpus.atomic_write_text

            def dying_write(path, text):
                if path.name.endswith(".progress.json") and '"1": "' in text:
                    die()  # chunk 1 (rows 8-15) is in the memory-mapped file, its record is not
                return real_progress(path, text)

            corpus.atomic_write_text = dying_write
        elif point == "record-written-not-renamed":
            def dying_write(path, text):
                real_write(path, text)
                if path.suffix == ".json":  # distill writes only the checksum record itself
                    die()  # the checksum record is in place, the data still under its partial name

            distill.atomic_write_text = dying_write
        distill.teacher_embeddings(teacher, TEXTS, cache_dir, batch_size=4, chunk_size=8)
    '''
)


@pytest.fixture(scope="module")
def teacher_folder(tiny_bert, tmp_path_factory) -> str:
    """The folder of a random one-layer teacher (no Dense, no Normalize), for the child and this process."""
    return str(tiny_bert(layers=1, seed=1).save(tmp_path_factory.mktemp("teacher") / "model"))


@pytest.fixture(scope="module")
def cache_child(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cache-child") / "cache_child.py"
    path.write_text(CACHE_CHILD, encoding="utf-8")
    return path


# kill point -> texts the next call encodes again: chunks 0-1 are recorded before the third encode
# (24 of 40 left); chunk 1 written but not recorded is redone (32 left); once the checksum record is
# written, the finished file is checked against it and renamed, with nothing recomputed.
REDONE = {"mid-encode": 24, "chunk-written-not-recorded": 32, "record-written-not-renamed": 0}


@pytest.mark.slow
@pytest.mark.parametrize("point", list(REDONE))
def test_sigkill_during_teacher_cache_write_never_leaves_a_corrupt_cache(point, cache_child, teacher_folder,
                                                                            tmp_path):
    from workbench.distill import cache_key, teacher_embeddings

    helpers = runpy.run_path(str(cache_child), run_name="cache_child")
    texts = helpers["TEXTS"]
    proc = subprocess.run([sys.executable, str(cache_child), str(tmp_path / "cache"), teacher_folder, point],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    teacher = helpers["make_teacher"](teacher_folder)
    key = cache_key(teacher, texts)
    assert not (tmp_path / "cache" / f"{key}.npy").exists(), "no cache file under its final name after the kill"

    encode, recomputed = teacher.encode, []

    def counting_encode(batch, *args, **kwargs):
        recomputed.extend(batch)
        return encode(batch, *args, **kwargs)

    teacher.encode = counting_encode
    again = teacher_embeddings(teacher, texts, tmp_path / "cache", batch_size=4, chunk_size=8)
    # only what was not safely on disk is computed again (chunks of 8 texts)
    assert len(recomputed) == REDONE[point], (point, len(recomputed))
    teacher.encode = encode
    fresh = teacher.encode(texts, batch_size=4)
    assert again.shape == (40, 32) and np.abs(again - fresh).max() <= 1e-6
    record = json.loads((tmp_path / "cache" / f"{key}.json").read_text())
    assert record["shape"] == [40, 32]
    # the finished cache is read back as is (no warning, no recomputation)
    teacher.encode = None  # any encode now would fail
    assert np.array_equal(teacher_embeddings(teacher, texts, tmp_path / "cache"), again)


# ----- the notebook: interrupting the kernel, re-running cells, reloading past runs --------------

def test_kernel_interrupt_between_steps_keeps_a_checkpoint_and_resume_finishes_the_run(helpers, reference,
                                                                                      student, tmp_path):
    """Interrupting the kernel is a KeyboardInterrupt in the training thread; here a callback raises it."""
    def interrupt(event):
        if type(event).__name__ == "Step" and event.step == 5:
            raise KeyboardInterrupt

    events: list[Any] = []
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        helpers["make_trainer"](run_dir, student, callbacks=[events.append, interrupt]).fit()
    assert type(events[-1]).__name__ == "Done" and events[-1].reason == "interrupted" and events[-1].step == 5
    found = RunDir(run_dir).latest_checkpoint()
    assert found is not None and found[1]["step"] == 5
    assert [r.status for r in list_runs(tmp_path)] == ["interrupted"]

    resumed: list[Any] = []
    helpers["make_trainer"](run_dir, student, callbacks=[resumed.append]).fit(resume=True)
    assert resumed[0].start_step == 5
    _assert_same_run(reference, run_dir)


def test_kernel_interrupt_inside_a_step_then_resume_equals_an_uninterrupted_run(helpers, reference, student,
                                                                                tmp_path):
    run_dir = tmp_path / "run"
    trainer = helpers["make_trainer"](run_dir, student)
    forward, calls = trainer.loss.forward, []

    def interrupted_forward(*args, **kwargs):
        value = forward(*args, **kwargs)
        calls.append(1)
        if len(calls) == 7:  # Ctrl-C lands while step 7 runs (after its forward)
            raise KeyboardInterrupt
        return value

    trainer.loss.forward = interrupted_forward
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    helpers["make_trainer"](run_dir, student).fit(resume=True)
    _assert_same_run(reference, run_dir)


def test_two_runs_side_by_side_do_not_touch_each_other(helpers, student, tmp_path):
    """Two notebooks (or a cell run twice) training into two folders of one root."""
    first = helpers["make_trainer"](tmp_path / "runs" / "a", student)
    first.config = first.config.replace(max_steps=6)
    second = helpers["make_trainer"](tmp_path / "runs" / "b", student)
    second.config = second.config.replace(max_steps=6, lr=3e-3)
    first.fit()
    saved_a = {p.relative_to(tmp_path / "runs" / "a"): p.read_bytes() for p in (tmp_path / "runs" / "a").rglob("*")
               if p.is_file()}
    second.fit()
    after_a = {p.relative_to(tmp_path / "runs" / "a"): p.read_bytes() for p in (tmp_path / "runs" / "a").rglob("*")
               if p.is_file()}
    assert after_a == saved_a
    runs = list_runs(tmp_path / "runs")
    assert [(r.name, r.status, r.config["train"]["lr"]) for r in runs] == [("a", "completed", 1e-3),
                                                                          ("b", "completed", 3e-3)]
    wa, wb = _weights(tmp_path / "runs" / "a" / "model"), _weights(tmp_path / "runs" / "b" / "model")
    assert max(float((wa[k] - wb[k]).abs().max()) for k in wa) > 1e-3


DASHBOARD_RECIPE = """
name = "tiny-reliability"
kind = "train"
description = "a tiny fresh model for reliability tests"

[model]
fresh = {{ vocab_size = 30522, hidden_size = 32, num_hidden_layers = 1, num_attention_heads = 2, intermediate_size = 64 }}
tokenizer = "{tokenizer}"

[loss]
name = "MultipleNegativesRankingLoss"

[[data]]
name = "pairs"
loader = "file"
path = "unused.tsv"

[train]
max_steps = 10
"""


@pytest.fixture()
def recipe_file(tmp_path, minilm_path) -> Path:
    path = tmp_path / "tiny-reliability.toml"
    path.write_text(DASHBOARD_RECIPE.format(tokenizer=minilm_path), encoding="utf-8")
    return path


def _past_runs(root: Path) -> None:
    """Runs as a kernel restart finds them: completed, interrupted, killed (a torn last line), failed, broken."""
    def write(name: str, lines: list[str], config: str = '{"train": {"lr": 0.001, "max_steps": 10}}') -> None:
        (root / name).mkdir(parents=True)
        (root / name / "config.json").write_text(config)
        (root / name / "metrics.jsonl").write_text("".join(lines))

    started = '{"event": "Started", "total_steps": 10, "examples": 80, "batch_size": 8}\n'
    steps = [f'{{"event": "Step", "step": {s}, "epoch": 0.1, "loss": {2 - s / 10}, "lr": 0.001, '
             f'"examples_per_s": 50.0, "elapsed_s": {s}.0, "total_steps": 10}}\n' for s in range(1, 11)]

    def done(step: int, reason: str) -> str:
        return f'{{"event": "Done", "step": {step}, "reason": "{reason}", "elapsed_s": 1.0}}\n'

    write("1-completed", [started, *steps, done(10, "completed")])
    write("2-interrupted", [started, *steps[:4], done(4, "interrupted")])
    write("3-killed", [started, *steps[:6], steps[6][:30]])  # SIGKILL mid-line: no Done, a torn line
    write("4-failed", [started, *steps[:2], done(2, "failed")])
    write("5-broken-config", [started], config='{"train": ')
    (root / "6-not-a-run").mkdir()


def test_past_runs_reload_from_disk_whatever_their_ending(tmp_path):
    _past_runs(tmp_path / "runs")
    runs = list_runs(tmp_path / "runs")
    assert {r.name: r.status for r in runs} == {"1-completed": "completed", "2-interrupted": "interrupted",
                                                "3-killed": "unfinished", "4-failed": "failed"}
    killed = next(r for r in runs if r.name == "3-killed")
    assert killed.history.steps == [1, 2, 3, 4, 5, 6]  # the torn line is skipped, the rest kept


def test_dashboard_lists_past_runs_after_a_kernel_restart(recipe_file, tmp_path):
    from workbench.widgets import TrainingDashboard

    _past_runs(tmp_path / "runs")
    dash = TrainingDashboard(str(recipe_file), runs_root=tmp_path / "runs", background=False)
    # Not this session's runs (nor of this recipe: their config.json predates recipes): the table says where they are.
    assert "no runs of tiny-reliability in this session" in dash.table.value and "4 other runs there" in dash.table.value
    dash.compare.value = "all"
    table = dash.table.value
    for name, status in [("1-completed", "completed"), ("2-interrupted", "interrupted"), ("3-killed", "unfinished"),
                         ("4-failed", "failed")]:
        assert name in table and status in table
    assert "4 runs in" in table and "5-broken-config" not in table
    losses = {t.name: list(t.x) for t in dash.compare_fig.data if t.name.endswith(": loss")}
    assert losses["3-killed: loss"] == [1, 2, 3, 4, 5, 6]
    assert dash.errors == []


def test_dashboard_starts_within_one_second_get_their_own_folders(recipe_file, tmp_path, monkeypatch):
    import workbench.recipes
    from workbench.widgets import TrainingDashboard

    folders: list[Path] = []

    def run_recipe(recipe, run_dir, **kwargs):  # what a run does to its folder first (RunDir.start)
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        folders.append(Path(run_dir))

    monkeypatch.setattr(workbench.recipes, "run_recipe", run_recipe)
    monkeypatch.setattr("workbench.widgets.dashboard.time.strftime", lambda fmt, *a: "20250101-120000")
    first = TrainingDashboard(str(recipe_file), runs_root=tmp_path / "runs", background=False)
    second = TrainingDashboard(str(recipe_file), runs_root=tmp_path / "runs", background=False)
    first.start.click()
    second.start.click()
    assert len(folders) == 2 and folders[0] != folders[1]
