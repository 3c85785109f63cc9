"""Smaller vectors: quantize_embeddings against sentence-transformers' on real STS-B embeddings,
encode(truncate_dim=...) and the saved setting against SentenceTransformer, and the
CompressionExplorer's numbers against direct computations (scipy, by hand)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist
from scipy.stats import spearmanr

from workbench.similarity import (
    PRECISIONS,
    bytes_per_vector,
    quantization_ranges,
    quantize_embeddings,
    quantized_similarity,
)

pytestmark = pytest.mark.usefixtures("one_thread")
ST_PRECISIONS = ("float32", "int8", "uint8", "binary", "ubinary")  # sentence-transformers 6.2 has no float16


@pytest.fixture(scope="module")
def minilm(minilm_path):
    from workbench import load_model

    return load_model(str(minilm_path), device="cpu")


@pytest.fixture(scope="module")
def stsb_embeddings(minilm, stsb_dir):
    """all-MiniLM-L6-v2 embeddings of 200 STS-B dev sentences, and of 100 others to calibrate on."""
    from workbench.data import load_stsb

    dev = load_stsb("dev", path=stsb_dir)
    sentences = list(dict.fromkeys(dev["sentence1"][:300] + dev["sentence2"][:300]))
    emb = minilm.encode(sentences[:300], batch_size=64)  # (300, 384) float32
    return emb[:200], emb[200:300]


@pytest.mark.parametrize("precision", ST_PRECISIONS)
def test_quantize_equals_sentence_transformers(stsb_embeddings, precision):
    from sentence_transformers.quantization import quantize_embeddings as st_quantize

    emb, calibration = stsb_embeddings
    # Ranges inside the data's spread, so that clipping at both ends is exercised too.
    ranges = np.vstack([np.percentile(calibration, 10, axis=0), np.percentile(calibration, 90, axis=0)])
    for kwargs in ({}, {"calibration_embeddings": calibration}, {"ranges": ranges}):
        ours = quantize_embeddings(emb, precision, **kwargs)
        theirs = st_quantize(emb, precision, **kwargs)
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, kwargs
        assert np.array_equal(ours, theirs), kwargs
    # torch input, float64 input, one vector with explicit ranges
    assert np.array_equal(quantize_embeddings(torch.from_numpy(emb), precision), st_quantize(torch.from_numpy(emb), precision))
    as64 = emb.astype(np.float64)
    assert np.array_equal(quantize_embeddings(as64, precision, calibration_embeddings=calibration),
                          st_quantize(as64, precision, calibration_embeddings=calibration))
    assert np.array_equal(quantize_embeddings(emb[0], precision, ranges=ranges), st_quantize(emb[0], precision, ranges=ranges))


def test_float16_is_the_plain_cast_which_sentence_transformers_lacks(stsb_embeddings):
    from sentence_transformers.quantization import quantize_embeddings as st_quantize

    emb, _ = stsb_embeddings
    ours = quantize_embeddings(emb, "float16")
    assert ours.dtype == np.float16 and np.array_equal(ours, emb.astype(np.float16))
    with pytest.raises(ValueError, match="not supported"):
        st_quantize(emb, "float16")


def test_quantize_refuses_bad_input():
    emb = np.ones((3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="unknown precision 'int4'"):
        quantize_embeddings(emb, "int4")
    with pytest.raises(ValueError, match="at least 2 embeddings"):
        quantize_embeddings(emb[0], "int8")
    with pytest.raises(ValueError, match="must hold floats"):
        quantize_embeddings(emb.astype(np.int8), "binary")
    with pytest.raises(ValueError, match=r"ranges must have shape \(2, 4\)"):
        quantize_embeddings(emb, "uint8", ranges=np.zeros((2, 3)))


def test_quantized_similarity_against_scipy(stsb_embeddings):
    emb, calibration = stsb_embeddings
    a, b = emb[:50], emb[50:120]
    for precision in ("binary", "ubinary"):
        qa, qb = (quantize_embeddings(x, precision) for x in (a, b))
        bits_a, bits_b = a > 0, b > 0
        expected = 1 - cdist(bits_a, bits_b, "hamming")  # 384 dims: 48 whole bytes, no padding bits
        assert np.allclose(quantized_similarity(qa, qb, precision), expected, atol=1e-12)
        assert np.allclose(quantized_similarity(qa, qb[:50], precision, pairwise=True), np.diag(expected[:, :50]))
    ranges = quantization_ranges(calibration)
    for precision in ("int8", "uint8"):
        qa, qb = (quantize_embeddings(x, precision, ranges=ranges) for x in (a, b))
        signed = [q.astype(np.float64) - (128 if precision == "uint8" else 0) for q in (qa, qb)]
        assert np.allclose(quantized_similarity(qa, qb, precision), 1 - cdist(*signed, "cosine"), atol=1e-9)
    q16 = quantize_embeddings(a, "float16")
    assert np.allclose(quantized_similarity(q16, None, "float16"), 1 - cdist(q16.astype(float), q16.astype(float), "cosine"),
                       atol=1e-9)


def test_bytes_per_vector():
    assert [bytes_per_vector(384, p) for p in PRECISIONS] == [1536, 768, 384, 384, 48, 48]
    assert bytes_per_vector(20, "binary") == 3  # 20 bits round up to 3 bytes, as np.packbits stores them
    assert quantize_embeddings(np.ones((1, 20), dtype=np.float32), "binary").nbytes == 3


# ----- truncate_dim -------------------------------------------------------------------------------
SENTENCES = ["A man is playing a guitar.", "Someone plays an instrument.", "The stock market fell sharply."]


def test_truncate_dim_against_sentence_transformers(minilm, minilm_path):
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(minilm_path), device="cpu", truncate_dim=64)
    for normalize in (False, True):
        ours = minilm.encode(SENTENCES, truncate_dim=64, normalize=normalize)
        assert ours.shape == (3, 64)
        assert np.allclose(ours, st.encode(SENTENCES, normalize_embeddings=normalize), atol=1e-5)
    full = minilm.encode(SENTENCES)
    assert np.allclose(minilm.encode(SENTENCES, truncate_dim=64), full[:, :64], atol=1e-6)
    cut = minilm.encode(SENTENCES, truncate_dim=32, normalize=True, output="torch")
    assert isinstance(cut, torch.Tensor) and torch.allclose(cut.norm(dim=1), torch.ones(3), atol=1e-6)
    assert minilm.encode(SENTENCES[0], truncate_dim=16).shape == (16,)
    assert minilm.encode(SENTENCES, truncate_dim=384).shape == (3, 384)


@pytest.mark.parametrize("bad", [0, 385, 2.5, True, "64"])
def test_truncate_dim_is_checked(minilm, bad):
    with pytest.raises(ValueError, match="truncate_dim must be a whole number from 1 to the model's dim 384"):
        minilm.encode(SENTENCES, truncate_dim=bad)


def test_saved_truncate_dim_is_read_back_here_and_by_sentence_transformers(minilm, minilm_path, tmp_path):
    from sentence_transformers import SentenceTransformer

    from workbench import load_model
    from workbench.models.files import ModelFileError

    minilm.truncate_dim = 128
    try:
        folder = minilm.save(tmp_path / "m")
    finally:
        minilm.truncate_dim = None
    settings = json.loads((folder / "config_sentence_transformers.json").read_text(encoding="utf-8"))
    assert settings["truncate_dim"] == 128
    again = load_model(folder, device="cpu")
    assert again.truncate_dim == 128 and again.encode(SENTENCES).shape == (3, 128)
    assert again.encode(SENTENCES, truncate_dim=32).shape == (3, 32)  # the argument wins over the setting
    st = SentenceTransformer(str(folder), device="cpu")
    assert st.truncate_dim == 128 and st.get_embedding_dimension() == 128
    assert np.allclose(again.encode(SENTENCES), st.encode(SENTENCES), atol=1e-5)
    # without the setting, nothing is written (as sentence-transformers leaves the key out)
    plain = json.loads((minilm.save(tmp_path / "plain") / "config_sentence_transformers.json").read_text(encoding="utf-8"))
    assert "truncate_dim" not in plain
    # a damaged setting names the file
    settings["truncate_dim"] = 1000
    (folder / "config_sentence_transformers.json").write_text(json.dumps(settings), encoding="utf-8")
    with pytest.raises(ModelFileError, match=r"config_sentence_transformers.json: truncate_dim must be .* 384, got 1000"):
        load_model(folder, device="cpu")


# ----- the explorer --------------------------------------------------------------------------------
def _independent_point(vectors, gold, image_of, dim, precision):
    """STS spearman and recall@10 computed here: sentence-transformers' quantization, scipy's
    distances and spearman, and recall by sorting each query's candidates in Python."""
    from sentence_transformers.quantization import quantize_embeddings as st_quantize

    def cut(x):
        x = np.asarray(x, dtype=np.float32)[:, :dim]
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    s1, s2, caps = cut(vectors.sts1), cut(vectors.sts2), cut(vectors.captions)
    cal = np.concatenate([s1, s2, caps])
    q1, q2, qc = (st_quantize(x, precision, calibration_embeddings=cal) if precision != "float16" else x.astype(np.float16)
                  for x in (s1, s2, caps))

    def sim(a, b):
        if precision in ("binary", "ubinary"):
            offset = 128 if precision == "binary" else 0  # binary bytes are the ubinary ones minus 128

            def bits(x):
                return np.unpackbits((x.astype(np.int16) + offset).astype(np.uint8), axis=1).astype(bool)

            return 1 - cdist(bits(a), bits(b), "hamming")
        shift = 128 if precision == "uint8" else 0
        return 1 - cdist(a.astype(np.float64) - shift, b.astype(np.float64) - shift, "cosine")

    sts = spearmanr([sim(q1[i : i + 1], q2[i : i + 1])[0, 0] for i in range(len(q1))], gold).statistic
    scores = sim(qc, qc)
    recalls = []
    for q in range(len(image_of)):
        ranked = sorted((j for j in range(len(image_of)) if j != q), key=lambda j: (-scores[q, j], j))[:10]
        relevant = [j for j in range(len(image_of)) if j != q and image_of[j] == image_of[q]]
        recalls.append(len(set(ranked) & set(relevant)) / len(relevant))
    return sts, float(np.mean(recalls))


def _traces(w, name):
    return [t for t in w.fig.data if t.name == name]


def test_explorer_numbers_equal_direct_computations(minilm):
    """On the built-in samples (no WORKBENCH_DATA needed): two models, every precision at some dims."""
    from workbench.widgets import CompressionExplorer
    from workbench.widgets.compression import _sample_captions, caption_task

    def short(texts):  # a second "model": the first 100 dims of MiniLM, deliberately narrower
        return minilm.encode(texts)[:, :100]

    from workbench.data import load_stsb

    sts = load_stsb("dev", path=Path(__file__).parents[1] / "workbench" / "samples" / "sts-sample.tsv")
    w = CompressionExplorer({"minilm": minilm, "short": short}, sts=sts, captions=caption_task(12, _sample_captions()))
    assert w.is_sample and "SAMPLE" in w.status.value
    assert w.dims == [384, 256, 128, 100, 64, 32]
    gold = np.asarray(sts["score"], dtype=np.float64)
    seen = set()
    for precision, dim in [("float32", 384), ("int8", 64), ("uint8", 100), ("binary", 32), ("ubinary", 256),
                           ("float16", 128)]:
        w.precision_buttons.value = precision
        w.dim.value = dim
        assert not w.errors
        for name in ("minilm", "short"):
            if dim > w.vectors[name].dim:
                assert name not in w.points and _traces(w, f"{name} · chosen")[0].x == ()
                continue
            p = w.points[name]
            sts_rho, recall = _independent_point(w.vectors[name], gold, w.task.image_of, dim, precision)
            assert (p.dim, p.precision) == (dim, precision)
            assert p.sts_spearman == pytest.approx(sts_rho, abs=1e-9)
            assert p.recall_at_10 == pytest.approx(recall, abs=1e-12)
            assert p.bytes_per_vector == bytes_per_vector(dim, precision)
            sts_mark, recall_mark = _traces(w, f"{name} · chosen")
            assert sts_mark.x == (dim,) and sts_mark.y == (pytest.approx(sts_rho),)
            assert recall_mark.y == (pytest.approx(recall),)
            curve = _traces(w, f"{name} · {precision}")[0]
            assert dim in curve.x and curve.y[curve.x.index(dim)] == pytest.approx(sts_rho)
            seen.add((name, precision, round(p.sts_spearman, 6)))
        assert f"{dim} dimensions · {precision}" in w.fig.layout.title.text
        assert f"{bytes_per_vector(dim, precision):,}" in w.table.value
    assert len({s for _, _, s in seen}) > 3  # the numbers do move with the controls
    base = w.baseline["minilm"]
    assert (base.dim, base.precision) == (384, "float32")
    assert _traces(w, "minilm · float32")[0].y[0] == pytest.approx(base.sts_spearman)


def test_explorer_refuses_bad_arguments(minilm):
    from workbench.widgets import CompressionExplorer
    from workbench.widgets.compression import _sample_captions, caption_task

    task = caption_task(4, _sample_captions())
    sts = (["a", "b", "c"], ["a b", "b c", "c d"], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="precision 'int4'"):
        CompressionExplorer(minilm, sts=sts, captions=task, precision="int4")
    with pytest.raises(ValueError, match="dims must lie in 1..384"):
        CompressionExplorer(minilm, sts=sts, captions=task, dims=[512])
    with pytest.raises(ValueError, match="at least one model"):
        CompressionExplorer({}, sts=sts, captions=task)


@pytest.mark.slow
def test_explorer_on_real_data_is_fast_per_change(minilm, data_dir):
    """300 Multi30k test images (1,500 captions) and all 1,500 STS-B dev pairs: a change is numpy only."""
    from workbench.widgets import CompressionExplorer

    w = CompressionExplorer({"minilm": minilm})
    assert not w.is_sample and len(w.task.captions) == 1500 and len(w.gold) == 1500
    times = []
    for precision, dim in [("int8", 128), ("binary", 256), ("ubinary", 64), ("float16", 32), ("uint8", 384)]:
        start = time.perf_counter()
        w.precision_buttons.value = precision
        w.dim.value = dim
        times.append(time.perf_counter() - start)
    assert not w.errors and max(times) < 1.0, times
