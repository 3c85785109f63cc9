"""The training loop: events, learning, stop, resume after SIGKILL, NaN handling, run files."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
import torch

from workbench import build_model, load_model, rng
from workbench.data import load_caption_pairs, load_stsb
from workbench.evaluation import STSEvaluator
from workbench.losses import MultipleNegativesRankingLoss, mnrl_loss
from workbench.training import (
    Done,
    Eval,
    RunHistory,
    Started,
    Step,
    TrainConfig,
    Trainer,
    TrainingError,
    list_runs,
)
from workbench.training.batching import TokenizedData
from workbench.training.loop import _param_groups


def _tiny(tiny_bert, seed: int = 0):
    """The model these tests train: 2 layers, BertConfig's default dropout (0.1), Dense 16, Normalize."""
    return tiny_bert(layers=2, dense=16, normalize=True, seed=seed)


def _pairs(n: int = 200) -> dict[str, list[str]]:
    # Distinct made-up pairs: row i's positive shares its two key words.
    nouns = ["cat", "dog", "car", "tree", "house", "river", "bird", "phone", "chair", "cloud"]
    verbs = ["runs", "sleeps", "waits", "shines", "falls", "moves", "sings", "turns"]
    anchors, positives = [], []
    for i in range(n):
        noun, verb = nouns[i % len(nouns)], verbs[(i // len(nouns)) % len(verbs)]
        anchors.append(f"the {noun} {verb} number {i}")
        positives.append(f"a {noun} that {verb}, item {i}")
    return {"anchor": anchors, "positive": positives}


def test_short_training_lowers_loss_and_raises_sts(minilm_path, stsb_dir, tmp_path):
    """The acceptance test of the loop, read entirely from the event stream."""
    torch.manual_seed(0)
    model = build_model(minilm_path, keep_layers=[0, 5], dense=256, normalize=True, max_seq_length=48, seed=0, device="cpu")
    data = load_caption_pairs("train", path=stsb_dir.parent).select(range(1280))
    evaluator = STSEvaluator.from_dataset(load_stsb("dev", path=stsb_dir.parent).select(range(300)), name="sts-dev")
    events = []
    cfg = TrainConfig(lr=5e-5, batch_size=32, max_steps=30, eval_every=15, log_every=5, seed=0)
    Trainer(model, MultipleNegativesRankingLoss(model), cfg, data, evaluator, run_dir=tmp_path / "run",
            callbacks=[events.append]).fit()

    steps = [e for e in events if isinstance(e, Step)]
    evals = [e for e in events if isinstance(e, Eval)]
    assert isinstance(events[0], Started) and isinstance(events[-1], Done) and events[-1].reason == "completed"
    assert [e.step for e in steps] == [5, 10, 15, 20, 25, 30]
    assert [e.step for e in evals] == [0, 15, 30]
    assert np.mean([s.loss for s in steps[-2:]]) < 0.8 * steps[0].loss
    sts = [e.metrics["sts-dev_spearman_cosine"] for e in evals]
    assert sts[-1] > sts[0] + 0.005, sts
    # the run directory replays to the same curves
    replay = RunHistory.from_jsonl(tmp_path / "run" / "metrics.jsonl")
    assert replay.losses == [s.loss for s in steps]
    assert replay.metric("sts-dev_spearman_cosine")[1] == pytest.approx(sts)
    saved = load_model(tmp_path / "run" / "model", device="cpu")
    again = evaluator(saved)["sts-dev_spearman_cosine"]
    assert again == pytest.approx(max(sts), abs=1e-6)  # best model kept


def test_schedule_warmup_then_linear_decay(tiny_bert):
    model = _tiny(tiny_bert)
    events = []
    cfg = TrainConfig(lr=1e-3, batch_size=20, max_steps=10, warmup_ratio=0.2, log_every=1, eval_at_start=False)
    Trainer(model, MultipleNegativesRankingLoss(model), cfg, _pairs(), callbacks=[events.append]).fit()
    lrs = [e.lr for e in events if isinstance(e, Step)]
    # lr after step s: warmup over 2 steps, then linear to 0 at step 10 (the HF/sentence-transformers schedule)
    expected = [1e-3 * min(s / 2, (10 - s) / 8) for s in range(1, 11)]
    assert lrs == pytest.approx(expected)


def test_stop_from_another_thread_keeps_what_was_learned(tiny_bert, tmp_path):
    model = _tiny(tiny_bert)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = None
    events = []

    def on_event(event):
        events.append(event)
        if isinstance(event, Step) and event.step == 4:
            threading.Thread(target=trainer.stop).start()

    trainer = Trainer(model, MultipleNegativesRankingLoss(model),
                      TrainConfig(lr=1e-3, batch_size=10, max_steps=100, log_every=1, eval_at_start=False),
                      _pairs(), run_dir=tmp_path / "run", callbacks=[on_event])
    trainer.fit()
    done = events[-1]
    assert isinstance(done, Done) and done.reason == "stopped"
    assert 4 <= done.step <= 6
    changed = any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert changed
    saved = load_model(done.model_path, device="cpu")
    assert np.allclose(saved.encode(["a cat"]), model.encode(["a cat"]), atol=1e-6)


def test_non_finite_loss_stops_with_clear_error_and_keeps_checkpoint(tiny_bert, tmp_path):
    model = _tiny(tiny_bert)
    inner = MultipleNegativesRankingLoss(model)

    class PoisonedLoss(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.calls = 0
            self.model = model

        def forward(self, features, labels=None):
            self.calls += 1
            inner.model = self.model
            value = inner(features, labels)
            return value * float("nan") if self.calls == 6 else value

    events = []
    cfg = TrainConfig(lr=1e-3, batch_size=10, max_steps=20, log_every=1, checkpoint_every=3, eval_at_start=False)
    trainer = Trainer(model, PoisonedLoss(), cfg, _pairs(), run_dir=tmp_path / "run", callbacks=[events.append])
    with pytest.raises(TrainingError, match=r"non-finite .* at step 6.*learning rate"):
        trainer.fit()
    done = events[-1]
    assert isinstance(done, Done) and done.reason == "failed" and "step 6" in done.error
    ckpts = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert ckpts == ["step-0000003", "step-0000005"]
    restored = load_model(tmp_path / "run" / "checkpoints" / "step-0000005" / "model", device="cpu")
    for p in restored.parameters():
        assert torch.isfinite(p).all()
    assert np.allclose(restored.encode(["a dog"]), model.encode(["a dog"]), atol=1e-6)


def test_batches_have_no_duplicate_texts(tiny_bert):
    model = _tiny(tiny_bert)
    pairs = _pairs(60)
    pairs["anchor"][10] = pairs["anchor"][11] = pairs["anchor"][12] = "the same sentence"
    pairs["positive"][20] = pairs["anchor"][0]
    data = TokenizedData(pairs, model.tokenizer, 32)
    for epoch in range(3):
        batches = data.epoch_batches(epoch, 16, seed=1, no_duplicates=True, drop_last=False)
        assert sorted(r for b in batches for r in b) == list(range(60))
        for batch in batches:
            texts = [pairs[c][r] for r in batch for c in ("anchor", "positive")]
            assert len(texts) == len(set(texts))
    assert data.epoch_batches(0, 16, 1, True, False) == data.epoch_batches(0, 16, 1, True, False)
    assert data.epoch_batches(0, 16, 1, True, False) != data.epoch_batches(1, 16, 1, True, False)


def test_texts_are_tokenized_once(tiny_bert):
    model = _tiny(tiny_bert)
    real = model.transformer.tokenizer
    calls = []

    class Counting:
        def __call__(self, *args, **kwargs):
            calls.append(len(args[0]))
            return real(*args, **kwargs)

        def __getattr__(self, name):
            return getattr(real, name)

    model.transformer.tokenizer = Counting()
    try:
        Trainer(model, MultipleNegativesRankingLoss(model),
                TrainConfig(batch_size=50, epochs=3, eval_at_start=False), _pairs(100)).fit()
    finally:
        model.transformer.tokenizer = real
    assert calls == [100, 100]  # one call per text column, for 3 epochs (12 steps)


def test_bad_training_data_is_named(tiny_bert):
    model = _tiny(tiny_bert)
    loss = MultipleNegativesRankingLoss(model)
    with pytest.raises(ValueError, match="differ in length"):
        Trainer(model, loss, TrainConfig(), {"anchor": ["a", "b"], "positive": ["c"]}).fit()
    with pytest.raises(TypeError, match="column 'positive' row 1 is int"):
        Trainer(model, loss, TrainConfig(), {"anchor": ["a", "b"], "positive": ["c", 5]}).fit()
    # bytes decoded with errors="surrogateescape": the tokenizer alone says only "TextEncodeInput must be ..."
    with pytest.raises(ValueError, match=r"column 'anchor' row 1 is not valid Unicode: a lone surrogate '\\udcff'"):
        Trainer(model, loss, TrainConfig(), {"anchor": ["a", b"b\xff".decode("utf-8", "surrogateescape")],
                                             "positive": ["c", "d"]}).fit()
    with pytest.raises(ValueError, match="invalid TrainConfig: lr must be > 0"):
        TrainConfig(lr=0)


def test_run_directory_and_listing(tiny_bert, tmp_path):
    model = _tiny(tiny_bert)
    cfg = TrainConfig(lr=1e-3, batch_size=20, max_steps=6, log_every=2, checkpoint_every=2, eval_at_start=False)
    Trainer(model, MultipleNegativesRankingLoss(model, scale=10.0), cfg, _pairs(), run_dir=tmp_path / "runs" / "a",
            run_info={"recipe": "unit"}).fit()
    config = json.loads((tmp_path / "runs" / "a" / "config.json").read_text())
    assert config["train"]["max_steps"] == 6 and config["loss"]["params"]["scale"] == 10.0 and config["recipe"] == "unit"
    assert not (tmp_path / "runs" / "a" / "checkpoints").exists()  # a completed run needs no checkpoints
    runs = list_runs(tmp_path / "runs")
    assert [r.name for r in runs] == ["a"] and runs[0].status == "completed"
    assert runs[0].history.steps == [2, 4, 6]
    # resuming a finished run says so, and leaves it as it was
    again = Trainer(model, MultipleNegativesRankingLoss(model), cfg, _pairs(), run_dir=tmp_path / "runs" / "a")
    with pytest.raises(FileNotFoundError, match="already completed .* nothing to resume"):
        again.fit(resume=True)
    assert list_runs(tmp_path / "runs")[0].history.steps == [2, 4, 6]


RESUME_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from workbench import load_model
    from workbench.losses import MultipleNegativesRankingLoss
    from workbench.training import Checkpoint, TrainConfig, Trainer

    run_dir, kill_at, resume, tiny = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
    model = load_model(tiny, device="cpu")  # the test's _tiny(), saved
    nouns = ["cat", "dog", "car", "tree", "house", "river", "bird", "phone", "chair", "cloud"]
    data = {"anchor": [f"the {nouns[i % 10]} number {i}" for i in range(120)],
            "positive": [f"a {nouns[i % 10]} item {i}" for i in range(120)]}
    scores = {"anchor": data["anchor"][:40], "positive": data["positive"][:40]}

    class Evaluator:
        primary_metric = "mean_pos_cos"
        def __call__(self, model):
            import numpy as np
            a, b = model.encode(scores["anchor"]), model.encode(scores["positive"])
            return {"mean_pos_cos": float((a * b).sum(1).mean())}

    def killer(event):
        if kill_at and isinstance(event, Checkpoint) and event.step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    train = TrainConfig(lr=1e-3, batch_size=16, epochs=3, eval_every=4, log_every=2, checkpoint_every=3, seed=3)
    Trainer(model, MultipleNegativesRankingLoss(model), train, data, Evaluator(), run_dir=run_dir,
            callbacks=[killer]).fit(resume=resume)
    """
)


@pytest.mark.parametrize("kill_at", [6, 12])
def test_resume_after_sigkill_matches_uninterrupted_run(tiny_bert, tmp_path, kill_at):
    script = tmp_path / "train.py"
    script.write_text(RESUME_SCRIPT)
    tiny = _tiny(tiny_bert).save(tmp_path / "tiny")

    def run(run_dir, kill, resume):
        return subprocess.run([sys.executable, str(script), str(run_dir), str(kill), "1" if resume else "0", str(tiny)],
                              capture_output=True, text=True, timeout=300)

    full = run(tmp_path / "full", 0, False)
    assert full.returncode == 0, full.stderr[-2000:]
    killed = run(tmp_path / "killed", kill_at, False)
    assert killed.returncode == -9  # SIGKILL
    assert not (tmp_path / "killed" / "model").exists()
    resumed = run(tmp_path / "killed", 0, True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    a = RunHistory.from_jsonl(tmp_path / "full" / "metrics.jsonl")
    b = RunHistory.from_jsonl(tmp_path / "killed" / "metrics.jsonl")
    assert a.steps == b.steps
    assert np.allclose(a.losses, b.losses, atol=1e-4)
    ma, mb = a.metric("mean_pos_cos"), b.metric("mean_pos_cos")
    assert ma[0] == mb[0] and np.allclose(ma[1], mb[1], atol=1e-4)
    wa = load_model(tmp_path / "full" / "model", device="cpu").state_dict()
    wb = load_model(tmp_path / "killed" / "model", device="cpu").state_dict()
    assert max(float((wa[k] - wb[k]).abs().max()) for k in wa) <= 1e-4
    assert a.done.reason == b.done.reason == "completed"
    assert math.isclose(a.done.best_value, b.done.best_value, abs_tol=1e-4)


def test_several_datasets_share_one_run(tiny_bert):
    """Pairs and triplets train together; each batch comes from one set, in proportion to size."""
    model = _tiny(tiny_bert)
    pairs = _pairs(120)
    triplets = {"anchor": [f"x {i}" for i in range(40)], "positive": [f"y {i}" for i in range(40)],
                "negative": [f"z {i}" for i in range(40)]}
    seen = []

    class Spy(MultipleNegativesRankingLoss):
        def forward(self, features, labels=None):
            seen.append((len(features), features[0]["input_ids"].shape[0]))
            return super().forward(features, labels)

    Trainer(model, Spy(model), TrainConfig(batch_size=20, epochs=2, eval_at_start=False),
            {"pairs": pairs, "triplets": triplets}).fit()
    assert sorted(seen) == sorted([(2, 20)] * 12 + [(3, 20)] * 4)  # 2 epochs x (6 pair + 2 triplet batches)
    assert seen[:8] != [(2, 20)] * 6 + [(3, 20)] * 2  # interleaved, not one set after the other


def test_precision_can_change_between_runs_in_one_process(tiny_bert):
    # A notebook trains with bf16, then with fp32: accelerate alone refuses the second Accelerator
    # ("restart your runtime"); the trainer lets each run in one process pick its own settings.
    used = []
    for precision in ["bf16", "no", "bf16"]:
        model = _tiny(tiny_bert)
        cfg = TrainConfig(lr=1e-3, batch_size=20, max_steps=2, eval_at_start=False, mixed_precision=precision)
        trainer = Trainer(model, MultipleNegativesRankingLoss(model), cfg, _pairs(60))
        trainer.fit()
        used.append(trainer.run_info["precision_used"])
    assert used == ["bf16", "no", "bf16"]


def test_runs_started_at_once_get_their_own_folders(tmp_path):
    from workbench.training.runs import fresh_run_path

    barrier, got = threading.Barrier(8), []

    def claim():
        barrier.wait()
        got.append(fresh_run_path(tmp_path / "runs", "same-name-20250101-120000"))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 8 and all(p.is_dir() for p in got)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted(p.name for p in got)


def test_a_second_training_in_the_same_process_leaves_a_running_one_alone(tiny_bert):
    # Two dashboards in one kernel: the second run starts while the first is mid-way. Dropping
    # accelerate's state for the second (see the precision test above) must not pull it from
    # under the first.
    paused, resume = threading.Event(), threading.Event()

    def hold(event):
        if isinstance(event, Step) and event.step == 2 and not paused.is_set():
            paused.set()
            resume.wait(timeout=120)

    first_model, second_model = _tiny(tiny_bert), _tiny(tiny_bert, seed=1)
    cfg = TrainConfig(lr=1e-3, batch_size=20, max_steps=4, log_every=1, eval_at_start=False)
    first = Trainer(first_model, MultipleNegativesRankingLoss(first_model), cfg, _pairs(80), callbacks=[hold])
    errors = []
    thread = threading.Thread(target=lambda: _catch(first.fit, errors))
    thread.start()
    assert paused.wait(timeout=120)
    # other settings would change the first run's autocast under it: refused, plainly
    bf16 = TrainConfig(lr=1e-3, batch_size=20, max_steps=4, eval_at_start=False, mixed_precision="bf16")
    with pytest.raises(RuntimeError, match="another training in this process is running with mixed_precision='no'"):
        Trainer(second_model, MultipleNegativesRankingLoss(second_model), bf16, _pairs(80)).fit()
    events = []
    Trainer(second_model, MultipleNegativesRankingLoss(second_model), cfg, _pairs(80), callbacks=[events.append]).fit()
    resume.set()
    thread.join(timeout=120)
    assert errors == [] and [e.step for e in events if isinstance(e, Step)] == [1, 2, 3, 4]
    assert first.step == 4


def _catch(fn, errors):
    try:
        fn()
    except Exception as err:  # noqa: BLE001 - reported by the test
        errors.append(err)


class _HeadLoss(torch.nn.Module):
    """MNRL on embeddings passed through a weight of the loss's own, as a SoftmaxLoss classifier is."""

    def __init__(self, model, interrupt_at: int = 0):
        super().__init__()
        self.model = model
        self.head = torch.nn.Linear(16, 16)  # (dim, dim): the tiny model embeds in 16 dimensions
        self.calls, self.interrupt_at = 0, interrupt_at

    def forward(self, features, labels=None):
        self.calls += 1
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt  # as a kernel interrupt would, before this step changes anything
        anchors, positives = (self.head(self.model(f)) for f in features)  # each (batch, 16)
        return mnrl_loss(anchors, positives)


def _head_run(tiny_bert, run_dir=None, interrupt_at=0):
    model = _tiny(tiny_bert)  # dropout on: an exact resume needs the RNG back too
    torch.manual_seed(0)  # the head's initial weights
    loss = _HeadLoss(model, interrupt_at)
    cfg = TrainConfig(lr=1e-2, batch_size=20, max_steps=8, log_every=1, checkpoint_every=3, eval_at_start=False)
    return Trainer(model, loss, cfg, _pairs(80), run_dir=run_dir)


def test_the_optimizer_trains_the_loss_own_weights_once_each(tiny_bert):
    trainer = _head_run(tiny_bert)
    model, loss = trainer.model, trainer.loss
    groups = _param_groups([model, loss], 0.01)
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids))  # the model's parameters, reachable through loss.model too, once
    assert set(ids) == {id(p) for p in model.parameters()} | {id(loss.head.weight), id(loss.head.bias)}
    assert [id(p) for p in groups[1]["params"]][-1] == id(loss.head.bias)  # a bias: no weight decay
    head, weights = loss.head.weight.detach().clone(), {k: v.clone() for k, v in model.state_dict().items()}
    trainer.fit()
    assert float((loss.head.weight.detach() - head).abs().max()) > 1e-3
    after = model.state_dict()
    assert not torch.equal(after["layers.2.linear.weight"], weights["layers.2.linear.weight"])  # the model's Dense
    assert not torch.equal(after["layers.0.auto_model.embeddings.word_embeddings.weight"],
                           weights["layers.0.auto_model.embeddings.word_embeddings.weight"])


def test_resume_restores_the_loss_own_weights(tiny_bert, tmp_path):
    reference = _head_run(tiny_bert)
    reference.fit()
    interrupted = _head_run(tiny_bert, tmp_path / "run", interrupt_at=6)
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit()
    assert interrupted.step == 5
    resumed = _head_run(tiny_bert, tmp_path / "run")
    resumed.fit(resume=True)
    assert resumed.loss.calls == 3  # steps 6, 7, 8
    assert torch.allclose(resumed.loss.head.weight, reference.loss.head.weight, atol=1e-6)
    want, got = reference.model.state_dict(), resumed.model.state_dict()
    assert max(float((want[k] - got[k]).abs().max()) for k in want) <= 1e-6


def test_rng_capture_keeps_the_checkpoint_layout(tmp_path):
    """rng.capture() is what checkpoints hold; a state saved in the layout checkpoints have always had
    (python, numpy, torch, cuda where there is CUDA) restores, after torch.load(weights_only=True)."""
    assert set(rng.capture()) == {"python", "numpy", "torch"} | ({"cuda"} if torch.cuda.is_available() else set())
    assert set(rng.capture("cpu", python_numpy=False)) == {"torch"}  # what GradCache keeps per mini-batch

    rng.seed_all(11)
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    old = {"python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
           "numpy": [kind, keys.tolist(), pos, has_gauss, gauss], "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        old["cuda"] = torch.cuda.get_rng_state_all()
    torch.save({"rng": old}, tmp_path / "trainer_state.pt")
    first = (random.random(), float(np.random.rand()), torch.rand(3))
    rng.restore(torch.load(tmp_path / "trainer_state.pt", weights_only=True)["rng"])
    again = (random.random(), float(np.random.rand()), torch.rand(3))
    assert first[:2] == again[:2] and torch.equal(first[2], again[2])


def test_final_metrics_are_those_of_the_weights_kept(tiny_bert, tmp_path):
    """keep_best takes the best evaluation's weights back at the end: the reported metrics are that
    evaluation's, not the last one's (a scripted evaluator peaks at the second of four evaluations)."""
    model = _tiny(tiny_bert)
    values = iter([0.5, 0.9, 0.7, 0.6])

    class Peaks:
        primary_metric = "score"

        def __call__(self, model):
            return {"score": next(values), "other": 1.0}

    cfg = TrainConfig(lr=1e-3, batch_size=16, max_steps=6, eval_every=2, log_every=2)
    trainer = Trainer(model, MultipleNegativesRankingLoss(model), cfg, _pairs(), Peaks(), run_dir=tmp_path / "run")
    trainer.fit()
    assert trainer.best_step == 2 and trainer.final_metrics["score"] == 0.9
    no_keep = Trainer(model, MultipleNegativesRankingLoss(model), cfg.replace(keep_best=False), _pairs(),
                      type("Again", (Peaks,), {})(), run_dir=tmp_path / "run2")
    values = iter([0.5, 0.9, 0.7, 0.6])
    no_keep.fit()
    assert no_keep.final_metrics["score"] == 0.6  # the last weights stay: their evaluation is reported
