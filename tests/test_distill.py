"""Distillation: the teacher-embedding cache, PCA against scikit-learn, students, a short run."""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from workbench import load_model
from workbench.data import load_sentences, load_stsb
from workbench.distill import (
    BERT_TINY,
    CombinedEvaluator,
    append_pca,
    cache_key,
    default_cache_dir,
    distill,
    fit_pca,
    make_student,
    reduce_teacher,
    teacher_embeddings,
)
from workbench.losses import MSELoss
from workbench.models import Dense, Normalize
from workbench.training import Eval, Step, TrainConfig, Trainer


@pytest.fixture(scope="module")
def teacher(minilm_path: Path):
    return load_model(minilm_path, device="cpu")


@pytest.fixture(scope="module")
def sentences() -> tuple[list[str], list[str]]:
    """(train, held-out): 240 + 80 real sentences with WORKBENCH_DATA, else 75 + 25 of the sample."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the built-in sample announces itself
        texts = load_sentences(limit=320)["sentence"]
    cut = len(texts) * 3 // 4
    return texts[:cut], texts[cut:]


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory) -> Path:
    """One default cache for the module: the teacher encodes the fixture sentences once."""
    return tmp_path_factory.mktemp("teacher-cache")


@pytest.fixture(autouse=True)
def _default_cache(shared_cache, monkeypatch) -> None:
    monkeypatch.setenv("WORKBENCH_CACHE", str(shared_cache))


def _count_encodes(model, monkeypatch, fail_on_call: int | None = None) -> list[int]:
    """Record the number of texts of each ``model.encode`` call (and optionally fail one call)."""
    calls: list[int] = []
    original = model.encode

    def encode(texts, *args, **kwargs):
        calls.append(len(texts))
        if fail_on_call is not None and len(calls) == fail_on_call:
            raise RuntimeError("simulated interruption")
        return original(texts, *args, **kwargs)

    monkeypatch.setattr(model, "encode", encode)
    return calls


# ----- cache -------------------------------------------------------------------------------------
def test_cache_second_call_reads_disk(teacher, sentences, tmp_path, monkeypatch):
    texts = sentences[0][:48]
    calls = _count_encodes(teacher, monkeypatch)
    first = teacher_embeddings(teacher, texts, tmp_path / "c", batch_size=16)
    assert calls == [48] and first.shape == (48, 384) and first.dtype == np.float32
    second = teacher_embeddings(teacher, texts, tmp_path / "c", batch_size=16)
    assert calls == [48]  # nothing encoded again
    assert np.array_equal(first, second)
    monkeypatch.undo()
    assert np.allclose(first, teacher.encode(texts), atol=1e-5)
    assert sorted(p.suffix for p in (tmp_path / "c").iterdir()) == [".json", ".npy"]  # no partial files left


def test_default_cache_dir(monkeypatch, shared_cache):
    assert default_cache_dir() == shared_cache
    monkeypatch.delenv("WORKBENCH_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "workbench" / "teacher"


def test_key_follows_texts_and_weights(teacher, sentences):
    texts = sentences[0][:10]
    key = cache_key(teacher, texts)
    assert key == cache_key(teacher, list(texts))
    assert cache_key(teacher, texts[:-1] + [texts[-1] + "!"]) != key
    assert cache_key(teacher, texts[::-1]) != key
    assert cache_key(teacher, ["ab", "c"]) != cache_key(teacher, ["a", "bc"])
    twin = copy.deepcopy(teacher)
    assert cache_key(twin, texts) == key  # same weights, same key
    with torch.no_grad():
        twin.transformer.auto_model.encoder.layer[2].output.dense.weight[0, 0] += 1e-3
    assert cache_key(twin, texts) != key
    eye = np.eye(384, dtype=np.float32)
    reduced = append_pca(teacher, eye[:8])
    assert cache_key(reduced, texts) not in (key, cache_key(append_pca(teacher, eye[8:16]), texts))


def test_corrupt_cache_is_recomputed(teacher, sentences, tmp_path, monkeypatch):
    texts = sentences[0][:20]
    good = teacher_embeddings(teacher, texts, tmp_path)
    npy = next(tmp_path.glob("*.npy"))
    calls = _count_encodes(teacher, monkeypatch)
    npy.write_bytes(npy.read_bytes()[: npy.stat().st_size // 2])  # truncated
    with pytest.warns(UserWarning, match="corrupt or truncated"):
        again = teacher_embeddings(teacher, texts, tmp_path)
    assert calls == [20] and np.array_equal(again, good)
    raw = bytearray(npy.read_bytes())
    raw[-1] ^= 0xFF  # same size, one byte of data flipped: only the checksum can tell
    npy.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match="corrupt or truncated"):
        again = teacher_embeddings(teacher, texts, tmp_path)
    assert calls == [20, 20] and np.array_equal(again, good)
    assert teacher_embeddings(teacher, texts, tmp_path) is not None and calls == [20, 20]


def test_interrupted_computation_resumes(teacher, sentences, tmp_path, monkeypatch):
    texts = sentences[0][:64]
    calls = _count_encodes(teacher, monkeypatch, fail_on_call=3)
    with pytest.raises(RuntimeError, match="simulated"):
        teacher_embeddings(teacher, texts, tmp_path / "a", chunk_size=16)
    assert calls == [16, 16, 16]
    assert not list((tmp_path / "a").glob("*[0-9a-f].npy"))  # nothing under the final name yet
    calls.clear()
    resumed = teacher_embeddings(teacher, texts, tmp_path / "a", chunk_size=16)
    assert calls == [16, 16]  # only the two chunks that were not finished
    monkeypatch.undo()
    fresh = teacher_embeddings(teacher, texts, tmp_path / "b", chunk_size=16)
    assert np.allclose(resumed, fresh, atol=1e-6)


# ----- PCA ---------------------------------------------------------------------------------------
def test_pca_matches_sklearn(teacher, sentences):
    sklearn = pytest.importorskip("sklearn.decomposition")
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(48, 48)))
    synthetic = (rng.normal(size=(400, 48)) * np.linspace(5, 0.1, 48)) @ q.T + 3.0  # (400, 48), distinct spectrum
    real = teacher_embeddings(teacher, sentences[0]).astype(np.float64)  # (n, 384)
    for x, k in ((synthetic, 12), (real, 24)):  # tall (QR first) and wide (plain SVD)
        ours, ratio = fit_pca(x, k)
        ref = sklearn.PCA(n_components=k).fit(x)
        signs = np.sign((ours * ref.components_).sum(axis=1, keepdims=True))  # (k, 1)
        assert np.abs(ours - signs * ref.components_).max() <= 1e-4
        assert np.allclose(ratio, ref.explained_variance_ratio_, atol=1e-8)
        pivots = ours[np.arange(k), np.abs(ours).argmax(axis=1)]
        assert (pivots > 0).all()  # the documented sign convention
    with pytest.raises(ValueError, match="n_components"):
        fit_pca(synthetic[:5], 6)


def test_reduced_teacher_outputs_projection(teacher, sentences, tmp_path):
    texts, held = sentences[0], sentences[1][:16]
    reduced = reduce_teacher(teacher, 32, texts)
    dense = reduced.layers[-1]
    assert isinstance(dense, Dense) and dense.linear.bias is None and isinstance(dense.activation, torch.nn.Identity)
    assert reduced.dim == 32 and len(teacher.layers) == 3  # the teacher itself is unchanged
    emb = teacher_embeddings(teacher, texts)  # (n, 384), from the cache
    components, _ = fit_pca(emb, 32)
    assert np.array_equal(dense.linear.weight.detach().numpy(), components)
    out = reduced.encode(held)  # (m, 32)
    assert np.allclose(out, teacher.encode(held) @ components.T, atol=1e-5)
    reduced.save(tmp_path / "reduced")
    assert json.loads((tmp_path / "reduced" / "3_Dense" / "config.json").read_text())["bias"] is False
    assert np.allclose(load_model(tmp_path / "reduced", device="cpu").encode(held), out, atol=1e-6)


# ----- students ----------------------------------------------------------------------------------
def test_keep_layers_student_copies_without_aliasing(teacher, sentences):
    student = make_student(teacher, keep_layers=[0, 3, 5])
    layers, source = student.transformer.auto_model.encoder.layer, teacher.transformer.auto_model.encoder.layer
    assert len(layers) == 3 and student.transformer.auto_model.config.num_hidden_layers == 3
    assert len(source) == 6 and teacher.transformer.auto_model.config.num_hidden_layers == 6
    for mine, theirs in zip(layers, (source[0], source[3], source[5]), strict=True):
        for (name, a), (_, b) in zip(mine.state_dict().items(), theirs.state_dict().items(), strict=True):
            assert torch.equal(a, b), name
    assert [type(m) for m in student.layers] == [type(m) for m in teacher.layers]  # pooling and Normalize kept
    ptrs = {p.data_ptr() for p in teacher.parameters()}
    assert not any(p.data_ptr() in ptrs for p in student.parameters())

    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    texts = sentences[0][:24]
    rows = {"sentence": texts, "label": teacher.encode(texts)}
    cfg = TrainConfig(lr=1e-3, batch_size=8, max_steps=3, eval_at_start=False, log_every=1)
    Trainer(student, MSELoss(student), cfg, rows).fit()
    assert all(torch.equal(v, before[k]) for k, v in teacher.state_dict().items())
    moved = student.transformer.auto_model.encoder.layer[1].output.dense.weight
    assert not torch.equal(moved, source[3].output.dense.weight)


def test_fresh_and_base_students(teacher, minilm_path):
    rng_before = torch.get_rng_state()
    tiny = make_student(teacher, fresh_config={})
    assert torch.equal(torch.get_rng_state(), rng_before)  # seeding did not touch the global RNG
    cfg = tiny.transformer.auto_model.config
    shape = {k: getattr(cfg, k) for k in BERT_TINY}
    assert shape == {"num_hidden_layers": 2, "hidden_size": 128, "num_attention_heads": 2, "intermediate_size": 512}
    assert cfg.vocab_size == len(teacher.tokenizer) == 30522 and tiny.dim == 128 and not tiny.normalizes
    assert tiny.encode(["a cat sits on the mat"]).shape == (1, 128)
    same = make_student(teacher, fresh_config={})
    other = make_student(teacher, fresh_config={}, seed=1)
    first = tiny.transformer.auto_model.encoder.layer[0].attention.self.query.weight
    assert torch.equal(first, same.transformer.auto_model.encoder.layer[0].attention.self.query.weight)
    assert not torch.equal(first, other.transformer.auto_model.encoder.layer[0].attention.self.query.weight)

    headed = make_student(teacher, fresh_config={"num_hidden_layers": 1}, dense=256, normalize=True)
    assert headed.transformer.auto_model.config.num_hidden_layers == 1 and headed.dim == 256 and headed.normalizes
    assert isinstance(headed.layers[-2], Dense) and isinstance(headed.layers[-1], Normalize)
    plain = make_student(teacher, keep_layers=[0, 5], normalize=False)
    assert not plain.normalizes and len(plain.layers) == 2
    based = make_student(base=minilm_path, keep_layers=[1])
    assert based.transformer.auto_model.config.num_hidden_layers == 1 and based.dim == 384
    with pytest.raises(ValueError, match="fresh_config"):
        make_student(teacher, keep_layers=[0], fresh_config={})


# ----- the entry point ---------------------------------------------------------------------------
def test_combined_evaluator():
    ev = CombinedEvaluator(lambda m: {"a_x": 1.0}, lambda m: {"b_y": 2.0}, primary="b_y")
    assert ev(None) == {"a_x": 1.0, "b_y": 2.0} and ev.primary_metric == "b_y"
    with pytest.raises(ValueError, match="same metrics"):
        CombinedEvaluator(lambda m: {"a": 1.0}, lambda m: {"a": 2.0}, primary="a")(None)
    with pytest.raises(ValueError, match="primary metric"):
        CombinedEvaluator(lambda m: {"a": 1.0}, primary="b")(None)


def test_short_distillation_lowers_mse(teacher, sentences, monkeypatch):
    train, held = sentences
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sts = load_stsb("dev")
    sts = sts.select(range(min(100, len(sts))))
    student = make_student(teacher, keep_layers=[0, 5])
    events = []
    cfg = TrainConfig(lr=2e-4, batch_size=16, max_steps=20, eval_every=0, log_every=5, seed=0)
    trained, trainer = distill(teacher, student, train, cfg, eval_sentences=held, sts_dev=sts, callbacks=[events.append])
    evals = [e for e in events if isinstance(e, Eval)]
    assert [e.step for e in evals] == [0, 20]
    assert all(e.primary == "sts-dev_spearman_cosine" for e in evals)
    assert trainer.best_value == max(e.metrics["sts-dev_spearman_cosine"] for e in evals)
    mse = [e.metrics["mse_negative_mse"] for e in evals]
    assert mse[-1] > mse[0], mse
    steps = [e for e in events if isinstance(e, Step)]
    assert steps[-1].loss < steps[0].loss
    assert trained is trainer.model and trainer.run_info["distillation"]["pca"] is None
    # the labels were cached under the default cache dir: asking again encodes nothing
    calls = _count_encodes(teacher, monkeypatch)
    teacher_embeddings(teacher, train), teacher_embeddings(teacher, held)
    assert calls == []


def test_distillation_into_a_narrower_student_uses_pca(teacher, sentences, tmp_path):
    train, held = sentences
    student = make_student(teacher, fresh_config={"hidden_size": 32, "intermediate_size": 64})
    events = []
    cfg = TrainConfig(lr=1e-3, batch_size=16, max_steps=20, eval_every=10, log_every=5, seed=0)
    _, trainer = distill(teacher, student, train, cfg, eval_sentences=held, run_dir=tmp_path / "run",
                         callbacks=[events.append], run_info={"recipe": "test"})
    evals = [e for e in events if isinstance(e, Eval)]
    assert evals[0].primary == "mse_negative_mse" and set(evals[0].metrics) == {"mse_negative_mse"}
    mse = [e.value for e in evals]
    assert mse[-1] > mse[0], mse
    # the held-out targets are the PCA-reduced teacher's outputs (PCA fitted on every training sentence)
    targets = trainer.evaluator.evaluators[0].teacher_embeddings  # (m, 32)
    assert np.allclose(targets[:32], reduce_teacher(teacher, 32, train).encode(held[:32]), atol=1e-5)
    info = json.loads((tmp_path / "run" / "config.json").read_text())["distillation"]
    assert info["pca"]["n_components"] == 32 and info["pca"]["fit_sentences"] == len(train)
    assert 0 < info["pca"]["explained_variance"] <= 1
    assert json.loads((tmp_path / "run" / "config.json").read_text())["recipe"] == "test"  # the caller's facts kept
    assert info["data"] == {"train_sentences": len(train), "eval_sentences": len(held), "sts_dev_pairs": 0}
    with pytest.raises(ValueError, match="wider"):
        distill(teacher, make_student(teacher, keep_layers=[0], dense=512), train, cfg)


def test_the_teacher_encoding_is_reported_before_the_first_step(teacher, sentences, tmp_path, monkeypatch):
    import workbench.distill as distill_module
    from workbench.training.events import Preparing, Started, format_event
    from workbench.widgets import LiveCurves

    monkeypatch.setattr(distill_module, "TEACHER_CHUNK", 64)
    train, held = sentences
    cfg = TrainConfig(lr=1e-4, batch_size=16, max_steps=2, eval_every=0, log_every=1, seed=0)
    events, curves = [], LiveCurves()
    seen = []  # what the live curves said at each teacher event
    def watch(event):
        events.append(event)
        curves.on_event(event)
        if isinstance(event, Preparing):
            seen.append((curves.status_text, curves.progress.value))
    distill(teacher, make_student(teacher, keep_layers=[5]), train, cfg, eval_sentences=held,
            cache_dir=tmp_path / "cache", callbacks=[watch])
    first = next(i for i, e in enumerate(events) if isinstance(e, Started))
    before = events[:first]
    assert before and all(isinstance(e, Preparing) for e in before) and not any(
        isinstance(e, Preparing) for e in events[first:])
    chunks = lambda n: [0, *range(64, n, 64), n]  # noqa: E731
    training = [e for e in before if "training sentences" in e.what]
    assert [e.done for e in training] == chunks(len(train)) and {e.total for e in training} == {len(train)}
    assert [e.done for e in before if "held-out" in e.what] == chunks(len(held))
    assert seen[0][0].startswith("the teacher encodes the training sentences: 0/") and seen[0][1] == 0.0
    assert seen[len(training) - 1][1] == 1.0
    assert format_event(training[1]).startswith(f"the teacher encodes the training sentences: 64/{len(train)} sentences (")
    assert "left)" in format_event(training[1])
    events.clear()  # the same sentences again: read from the cache, nothing to report
    distill(teacher, make_student(teacher, keep_layers=[5]), train, cfg, eval_sentences=held,
            cache_dir=tmp_path / "cache", callbacks=[events.append])
    assert not any(isinstance(e, Preparing) for e in events)
