"""Training and distillation on 2 CPU processes under torchrun, from the same recipe file and CLI
as one process.

``python -m torch.distributed.run --nproc_per_node 2`` is the launcher a multi-GPU user runs
(``torchrun``); on CPU it starts two gloo processes. (``accelerate launch --cpu
--num_processes 2`` starts only one process unless MPI is set up.) Each process takes half of
every batch, so the global batch is the recipe's ``batch_size``; gradients are averaged.
MultipleNegativesRankingLoss gathers the positives of both halves (``gather_across_devices``),
so each anchor meets all 31 in-batch negatives, as in one process: without dropout the
gradient equals the one-process gradient (checked directly below); with dropout the two runs
differ by their random masks only. Distillation's MSE is a mean over examples, so the same
holds there; its teacher embeddings are computed once, by the main process, into the one
shared cache. Gradients DDP's hooks never see (GradCache's, a loss's own weights) are averaged
by the trainer: both processes end with the same weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from workbench import cli, load_model

# This process on one thread (on a busy machine, two spinning OpenMP threads can be several times
# slower than one); the torchrun workers get OMP_NUM_THREADS=1.
pytestmark = pytest.mark.usefixtures("one_thread")

# cli.main with one addition: each process records a digest of its final weights, which DDP
# must have kept identical.
_LAUNCH = textwrap.dedent("""
    import hashlib, os, sys
    from pathlib import Path
    from workbench import cli
    from workbench.training import Trainer

    _fit = Trainer.fit

    def fit(self, *args, **kwargs):
        model = _fit(self, *args, **kwargs)
        h = hashlib.sha256()
        for name, t in sorted(model.state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        Path(sys.argv[1], "rank" + os.environ["RANK"] + ".sha256").write_text(h.hexdigest())
        return model

    Trainer.fit = fit
    sys.exit(cli.main(sys.argv[2:]))
""")


def _schedule(extra_eval: str = "") -> str:
    """The [eval] and [train] sections both tiny recipes share: 30 steps of global batch 32."""
    return textwrap.dedent("""
        [eval]
        sts_dev = true
        sts_dev_limit = 300
        sts_test = false
        {extra}

        [train]
        lr = 2e-4
        batch_size = 32
        max_steps = 30
        eval_every = 15
        log_every = 5
        checkpoint_every = 15
        keep_best = false
    """).replace("{extra}", extra_eval)


def _recipe(minilm_path: Path) -> str:
    # all-MiniLM-L6-v2 cut to its first layer: STS-B dev moves from 0.66 to ~0.73 in 30 steps.
    return textwrap.dedent(f"""
        name = "tiny-ddp"
        kind = "train"
        description = "MiniLM layer 0, MNRL on 960 caption pairs"

        [model]
        base = "{minilm_path}"
        keep_layers = [0]
        max_seq_length = 32

        [loss]
        name = "MultipleNegativesRankingLoss"

        [[data]]
        name = "captions"
        loader = "caption_pairs"
        split = "train"
        limit = 960
    """) + _schedule()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _events(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]


def _steps(events: list[dict], kind: str) -> list[int]:
    return [e["step"] for e in events if e["event"] == kind]


def _digest(model) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _torchrun_cmd(tmp_path: Path, stsb_dir: Path, args: list[str], **env_extra: str) -> tuple[list[str], dict]:
    launch = tmp_path / "launch.py"
    launch.write_text(_LAUNCH, encoding="utf-8")
    digests = tmp_path / "digests"
    digests.mkdir(exist_ok=True)
    # One thread per process: two processes on two cores, not four threads fighting for them.
    env = dict(os.environ, WORKBENCH_DATA=str(stsb_dir.parent), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", **env_extra)
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
            "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), str(launch), str(digests), *args], env


def _torchrun(tmp_path: Path, stsb_dir: Path, args: list[str], **env_extra: str) -> None:
    cmd, env = _torchrun_cmd(tmp_path, stsb_dir, args, **env_extra)
    two = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert two.returncode == 0, two.stdout[-3000:] + two.stderr[-3000:]


def _one_process(args: list[str]) -> None:
    """The same CLI command in this process (on one thread, as the whole module)."""
    assert cli.main(args) == 0


def _check_one_run_folder(runs: Path, run: Path, digests: Path, name: str) -> list[dict]:
    """One run folder, written once, whose model has the weights both processes ended with."""
    assert [p.name for p in runs.iterdir()] == [run.name]
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "metrics.jsonl", "model"]  # checkpoints cleared
    events = _events(run)
    assert [e["event"] for e in events].count("Started") == 1
    assert [e["event"] for e in events if e["event"] == "Done"] == ["Done"] and events[-1]["reason"] == "completed"
    assert "precision_used" in json.loads((run / "config.json").read_text())
    assert name in (run / "model" / "README.md").read_text(encoding="utf-8")
    ranks = sorted(p.read_text() for p in digests.iterdir())
    assert len(ranks) == 2 and ranks[0] == ranks[1]
    assert _digest(load_model(run / "model", device="cpu")) == ranks[0]
    return events


def _sts(events: list[dict]) -> list[float]:
    return [e["metrics"]["sts-dev_spearman_cosine"] for e in events if e["event"] == "Eval"]


@pytest.mark.slow
def test_two_processes_train_like_one(minilm_path, stsb_dir, tmp_path, monkeypatch):
    recipe = tmp_path / "tiny-ddp.toml"
    recipe.write_text(_recipe(minilm_path), encoding="utf-8")
    runs = tmp_path / "runs"
    _torchrun(tmp_path, stsb_dir, ["train", str(recipe), "--run-dir", str(runs / "two")])

    events = _check_one_run_folder(runs, runs / "two", tmp_path / "digests", "tiny-ddp")
    assert _steps(events, "Step") == [5, 10, 15, 20, 25, 30]
    assert _steps(events, "Eval") == [0, 15, 30]
    assert _steps(events, "Checkpoint") == [15]

    # the same recipe in one process, through the same CLI
    monkeypatch.setenv("WORKBENCH_DATA", str(stsb_dir.parent))
    _one_process(["train", str(recipe), "--run-dir", str(tmp_path / "one")])
    single = _events(tmp_path / "one")
    assert _steps(single, "Eval") == [0, 15, 30]

    one_sts, two_sts = _sts(single), _sts(events)
    assert one_sts[0] == pytest.approx(two_sts[0], abs=1e-6)  # the same starting model
    assert one_sts[-1] > one_sts[0] + 0.03 and two_sts[-1] > two_sts[0] + 0.03  # both learned
    assert abs(two_sts[-1] - one_sts[-1]) < 0.01, (one_sts, two_sts)
    # the same negatives as one process (gathered), so the same loss up to dropout; each process
    # on its own half would log ~0.5 less at first (15 negatives instead of 31)
    one_loss, two_loss = (np.mean([e["loss"] for e in evs if e["event"] == "Step"]) for evs in (single, events))
    assert two_loss == pytest.approx(one_loss, rel=0.03), (one_loss, two_loss)


@pytest.mark.slow
def test_two_processes_killed_then_resumed_equal_an_uninterrupted_run(minilm_path, stsb_dir, tmp_path):
    recipe = tmp_path / "tiny-ddp.toml"
    recipe.write_text(_recipe(minilm_path), encoding="utf-8")
    runs = tmp_path / "runs"
    _torchrun(tmp_path, stsb_dir, ["train", str(recipe), "--run-dir", str(runs / "whole")])

    # the same run, every process SIGKILLed once the step-15 checkpoint is complete
    cmd, env = _torchrun_cmd(tmp_path, stsb_dir, ["train", str(recipe), "--run-dir", str(runs / "killed")])
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    checkpoint = runs / "killed" / "checkpoints" / "step-0000015"
    deadline = time.monotonic() + 600
    while not checkpoint.is_dir() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    _kill_tree(proc.pid)  # torchrun starts its workers in sessions of their own
    proc.wait()
    assert checkpoint.is_dir() and not (runs / "killed" / "model").exists(), "killed before the end"
    _torchrun(tmp_path, stsb_dir, ["train", str(recipe), "--run-dir", str(runs / "killed"), "--resume"])

    whole, resumed = _events(runs / "whole"), _events(runs / "killed")
    assert [e for e in resumed if e["event"] == "Started"][-1]["start_step"] == 15
    assert _steps(resumed, "Eval")[-1] == 30 and resumed[-1]["reason"] == "completed"
    # every process restored its own RNG state: the second half replays exactly
    assert _sts(resumed)[-1] == pytest.approx(_sts(whole)[-1], abs=1e-4)
    wa = load_model(runs / "whole" / "model", device="cpu").state_dict()
    wb = load_model(runs / "killed" / "model", device="cpu").state_dict()
    assert max(float((wa[k] - wb[k]).abs().max()) for k in wa) <= 1e-4


def _kill_tree(pid: int) -> None:
    """SIGKILL a process and every process below it (found through /proc), the workers first."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    tree, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        tree.extend(children)
        frontier = children
    for victim in [*reversed(tree), pid]:
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _distill_recipe(minilm_path: Path) -> str:
    # all-MiniLM-L6-v2 taught to its own first layer on 960 local sentences.
    return textwrap.dedent(f"""
        name = "tiny-ddp-distill"
        kind = "distill"
        description = "all-MiniLM-L6-v2 distilled into its layer 0 on 960 local sentences"

        [teacher]
        model = "{minilm_path}"

        [student]
        keep_layers = [0]
        max_seq_length = 32

        [loss]
        name = "MSELoss"

        [[data]]
        name = "english-sentences"
        loader = "sentences"
        sources = ["wikipedia", "misc", "captions"]
        limit = 960
        seed = 0
    """) + _schedule("mse_sentences = 100")


@pytest.mark.slow
def test_two_processes_distill_like_one(minilm_path, stsb_dir, tmp_path, monkeypatch):
    recipe = tmp_path / "tiny-ddp-distill.toml"
    recipe.write_text(_distill_recipe(minilm_path), encoding="utf-8")
    runs, cache = tmp_path / "runs", tmp_path / "teacher-cache"
    _torchrun(tmp_path, stsb_dir, ["distill", str(recipe), "--run-dir", str(runs / "two")], WORKBENCH_CACHE=str(cache))

    events = _check_one_run_folder(runs, runs / "two", tmp_path / "digests", "tiny-ddp-distill")
    assert _steps(events, "Step") == [5, 10, 15, 20, 25, 30]
    assert _steps(events, "Eval") == [0, 15, 30]
    # one teacher cache, written once: the training and the held-out sentences, nothing partial
    cached = sorted(p.name for p in cache.iterdir())
    assert len(cached) == 4 and [n.rsplit(".", 1)[1] for n in cached] == ["json", "npy", "json", "npy"], cached
    stamps = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}

    monkeypatch.setenv("WORKBENCH_DATA", str(stsb_dir.parent))
    monkeypatch.setenv("WORKBENCH_CACHE", str(cache))
    _one_process(["distill", str(recipe), "--run-dir", str(tmp_path / "one")])
    assert {p.name: p.stat().st_mtime_ns for p in cache.iterdir()} == stamps  # read back, not recomputed
    single = _events(tmp_path / "one")

    one_sts, two_sts = _sts(single), _sts(events)
    assert one_sts[0] == pytest.approx(two_sts[0], abs=1e-6)

    def mse(evs: list[dict]) -> list[float]:
        return [e["metrics"]["mse_negative_mse"] for e in evs if e["event"] == "Eval"]

    one_mse, two_mse = mse(single), mse(events)
    assert one_mse[-1] > one_mse[0] and two_mse[-1] > two_mse[0]  # both moved toward the teacher
    assert abs(two_sts[-1] - one_sts[-1]) < 0.01, (one_sts, two_sts)
    assert two_mse[-1] == pytest.approx(one_mse[-1], rel=0.02), (one_mse, two_mse)


# One MNRL step on a fixed batch of 7 triplets (7 does not split evenly: 4 + 3 rows), without
# dropout, in one process or in each of two under DDP; rank 0 saves the averaged gradients.
_GRADIENT = textwrap.dedent("""
    import faulthandler, os, sys
    import torch
    import torch.distributed as dist

    faulthandler.enable()  # a crash in a worker prints its Python stack
    from workbench import load_model
    from workbench.losses import MultipleNegativesRankingLoss
    from workbench.training.batching import TokenizedData

    folder, out, gather = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
    torch.set_num_threads(1)
    model = load_model(folder, device="cpu").train()  # the test's random model, without dropout
    words = ["cat", "dog", "car", "tree", "river", "bird", "chair"]
    data = TokenizedData({"anchor": [f"the {w} is here" for w in words],
                          "positive": [f"a {w} was seen" for w in words],
                          "negative": [f"no {w} at all, only {words[i - 1]}" for i, w in enumerate(words)]},
                         model.tokenizer, 32)
    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    net = model
    if world > 1:
        dist.init_process_group("gloo")
        net = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
    features, _ = data.batch(list(range(7))[rank::world], torch.device("cpu"))
    loss = MultipleNegativesRankingLoss(net, gather_across_devices=gather)(features)
    loss.backward()
    value = loss.detach().clone()
    if world > 1:
        dist.all_reduce(value)
        value /= world
    if rank == 0:
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        torch.save({"loss": float(value), "grads": grads}, out)
    if world > 1:
        dist.barrier()  # no process leaves while another still talks to it
    # Leave without the interpreter's teardown: in 2 of 3 full CI runs (never alone) one process
    # died with SIGABRT, "terminate called without an active exception", most likely gloo's
    # threads at exit (pytorch/pytorch#190489 reports the same message there).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
""")


@pytest.mark.slow
def test_gathered_negatives_give_two_processes_the_one_process_gradient(tiny_bert, tmp_path):
    script = tmp_path / "gradient.py"
    script.write_text(_GRADIENT, encoding="utf-8")
    no_dropout = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    tiny = tiny_bert(layers=1, dense=16, normalize=True, seed=3, config=no_dropout).save(tmp_path / "tiny")
    env = dict(os.environ, OMP_NUM_THREADS="1")

    def run(processes: int, gather: bool) -> dict:
        out = tmp_path / f"grads-{processes}-{int(gather)}.pt"
        launcher = [sys.executable] if processes == 1 else [
            sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", str(processes),
            "--master_addr", "127.0.0.1", "--master_port", str(_free_port())]
        done = subprocess.run([*launcher, str(script), str(tiny), str(out), str(int(gather))],
                              env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return torch.load(out)

    one, two, own = run(1, True), run(2, True), run(2, False)
    assert one["grads"].keys() == two["grads"].keys() and len(one["grads"]) > 10

    def gap(a: dict, b: dict) -> float:
        return max(float((a["grads"][k] - b["grads"][k]).abs().max()) for k in a["grads"])

    scale = max(float(g.abs().max()) for g in one["grads"].values())
    # gathered: every anchor sees all 7 positives and 7 negatives, as in one process
    assert gap(one, two) <= 1e-5 * max(1.0, scale), gap(one, two)  # float32 sums in another order
    assert two["loss"] == pytest.approx(one["loss"], abs=1e-6)
    # each process on its own share: fewer negatives, a lower loss and another gradient
    assert own["loss"] < one["loss"] - 0.05 and gap(one, own) > 1e-3 * scale, (own["loss"], one["loss"], gap(one, own))


# Two trainings through Trainer under 2 processes, with gradients DDP's hooks never see: Cached
# MNRL (GradCache re-runs the bare model in its backward pass) and a loss with a weight of its own
# (outside the DDP-wrapped model; initialised differently on each process, on purpose). Each
# process writes a digest of its loss's state: the model's weights and the loss's own.
_UNHOOKED = textwrap.dedent("""
    import faulthandler, hashlib, os, sys
    import torch
    import torch.distributed as dist

    faulthandler.enable()
    from workbench import load_model
    from workbench.losses import CachedMultipleNegativesRankingLoss, mnrl_loss
    from workbench.training import TrainConfig, Trainer

    class HeadLoss(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model
            torch.manual_seed(int(os.environ["RANK"]))  # the trainer must give every process rank 0's
            self.head = torch.nn.Linear(16, 16)

        def forward(self, features, labels=None):
            anchors, positives = (self.head(self.model(f)) for f in features)  # each (share, 16)
            return mnrl_loss(anchors, positives)

    folder, out = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    nouns = ["cat", "dog", "car", "tree", "house", "river", "bird", "phone", "chair", "cloud"]
    data = {"anchor": [f"the {nouns[i % 10]} number {i}" for i in range(80)],
            "positive": [f"a {nouns[i % 10]} item {i}" for i in range(80)]}
    for name in ["cached", "head"]:
        model = load_model(folder, device="cpu")  # the test's random model, afresh for each loss
        loss = CachedMultipleNegativesRankingLoss(model, mini_batch_size=3) if name == "cached" else HeadLoss(model)
        Trainer(model, loss, TrainConfig(lr=1e-3, batch_size=16, max_steps=4, eval_at_start=False), data).fit()
        h = hashlib.sha256()
        for key, t in sorted(loss.state_dict().items()):
            h.update(key.encode())
            h.update(t.detach().contiguous().numpy().tobytes())
        with open(os.path.join(out, f"{name}-rank{os.environ['RANK']}"), "w") as fh:
            fh.write(h.hexdigest())
    dist.barrier()  # no process leaves while another still talks to it
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # see _GRADIENT: no interpreter teardown under gloo
""")


@pytest.mark.slow
def test_gradients_outside_ddp_hooks_are_averaged_too(tiny_bert, tmp_path):
    script = tmp_path / "unhooked.py"
    script.write_text(_UNHOOKED, encoding="utf-8")
    tiny = tiny_bert(layers=1, dense=16, normalize=True).save(tmp_path / "tiny")
    out = tmp_path / "digests"
    out.mkdir()
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
                           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), str(script),
                           str(tiny), str(out)],
                          env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ["cached", "head"]:
        assert (out / f"{name}-rank0").read_text() == (out / f"{name}-rank1").read_text(), name
