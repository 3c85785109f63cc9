"""Acceptance: the packaged all-MiniLM-L6-v2 on STS-B, against sentence-transformers run side by side."""

from __future__ import annotations

import numpy as np
import pytest

from workbench import load_model
from workbench.data import load_stsb
from workbench.evaluation import STSEvaluator

# Measured with sentence-transformers on this model (REFERENCE.md); ours must agree within 1e-4.
EXPECTED_SPEARMAN_COSINE = {"test": 0.8203, "dev": 0.8672}


@pytest.fixture(scope="module")
def both(minilm_path):
    st = pytest.importorskip("sentence_transformers")
    return load_model(minilm_path, device="cpu"), st.SentenceTransformer(str(minilm_path), device="cpu")


def test_stsb_test_embeddings_match_sentence_transformers(both, stsb_dir):
    ours, theirs = both
    ds = load_stsb("test", path=stsb_dir.parent)
    assert len(ds) == 1379
    sentences = sorted(set(ds["sentence1"]) | set(ds["sentence2"]))
    a = ours.encode(sentences, batch_size=32, progress=False)
    b = theirs.encode(sentences, batch_size=32)
    assert a.shape == b.shape == (len(sentences), 384)
    assert np.abs(a - b).max() <= 1e-5


@pytest.mark.parametrize("split", ["test", "dev"])
def test_sts_metrics_match_sentence_transformers_evaluator(both, stsb_dir, split):
    from sentence_transformers.evaluation import EmbeddingSimilarityEvaluator

    ours, theirs = both
    ds = load_stsb(split, path=stsb_dir.parent)
    name = f"sts-{split}"
    mine = STSEvaluator.from_dataset(ds, name=name)(ours)
    ref = EmbeddingSimilarityEvaluator(
        list(ds["sentence1"]), list(ds["sentence2"]), list(ds["score"]), name=name,
        similarity_fn_names=["cosine", "euclidean", "manhattan", "dot"], write_csv=False,
    )(theirs)
    keys = [f"{name}_{kind}_{fn}" for kind in ("pearson", "spearman") for fn in ("cosine", "manhattan", "euclidean", "dot", "max")]
    for key in keys:
        assert key in mine and key in ref, key
        assert abs(mine[key] - ref[key]) <= 1e-4, (key, mine[key], ref[key])
    assert abs(mine[f"{name}_spearman_cosine"] - EXPECTED_SPEARMAN_COSINE[split]) <= 1e-4
