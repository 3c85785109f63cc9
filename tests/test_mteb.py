"""MTEB as a client: ``mteb.evaluate`` runs a workbench model (through ``workbench.mteb.MTEBEncoder``)
offline on a local STS task and reports the Spearman correlation workbench's own STSEvaluator gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

mteb = pytest.importorskip("mteb")

from datasets import Dataset, DatasetDict  # noqa: E402
from mteb.abstasks.sts import AbsTaskSTS  # noqa: E402
from mteb.abstasks.task_metadata import TaskMetadata  # noqa: E402
from mteb.models.models_protocols import EncoderProtocol  # noqa: E402

from workbench.evaluation import STSEvaluator  # noqa: E402
from workbench.mteb import MTEBEncoder  # noqa: E402

ROWS = 150  # the first 150 pairs of STS-B dev


def local_sts_task(rows: dict[str, list]) -> AbsTaskSTS:
    """An mteb STS task whose data are the given rows (sentence1, sentence2, score in 0-1), not the hub's."""

    class LocalSTS(AbsTaskSTS):
        min_score = 0
        max_score = 1
        metadata = TaskMetadata(
            name="WorkbenchLocalSTS", dataset={"path": "workbench/local-sts", "revision": "local"},
            description="The first STS-B dev pairs, from local files.", type="STS", category="t2t",
            modalities=["text"], eval_splits=["test"], eval_langs=["eng-Latn"], main_score="cosine_spearman",
        )  # fmt: skip

        def load_data(self, num_proc: int | None = None, **kwargs) -> None:
            self.dataset = DatasetDict({"test": Dataset.from_dict(rows)})
            self.data_loaded = True

    return LocalSTS()


@pytest.fixture(scope="module")
def sts_rows(stsb_dir: Path) -> dict[str, list]:
    from workbench.data import load_stsb

    dev = load_stsb("dev", path=stsb_dir).select(range(ROWS))
    return {c: dev[c] for c in ("sentence1", "sentence2", "score")}


@pytest.fixture(scope="module")
def model(minilm_path: Path):
    from workbench import load_model

    return load_model(str(minilm_path), device="cpu")


def test_mteb_spearman_equals_workbench_sts_evaluator(sts_rows, model, tmp_path: Path):
    encoder = MTEBEncoder(model)
    assert isinstance(encoder, EncoderProtocol)  # what mteb's tasks check before they run
    result = mteb.evaluate(encoder, [local_sts_task(sts_rows)], cache=None, prediction_folder=None,
                           encode_kwargs={"batch_size": 64, "show_progress_bar": False})
    scores = result.task_results[0].scores["test"][0]
    ours = STSEvaluator(sts_rows["sentence1"], sts_rows["sentence2"], sts_rows["score"], name="sts-dev")(model)
    assert scores["cosine_spearman"] == pytest.approx(ours["sts-dev_spearman_cosine"], abs=1e-3)
    assert scores["main_score"] == scores["cosine_spearman"]
    assert scores["euclidean_spearman"] == pytest.approx(ours["sts-dev_spearman_euclidean"], abs=1e-3)
    assert scores["manhattan_spearman"] == pytest.approx(ours["sts-dev_spearman_manhattan"], abs=1e-3)
    assert 0.7 < scores["cosine_spearman"] < 0.95  # all-MiniLM-L6-v2 is a good STS model


def test_encoder_protocol_pieces(model):
    encoder = MTEBEncoder(model)
    meta = encoder.mteb_model_meta
    assert meta.name.endswith("/all-MiniLM-L6-v2") or meta.name.startswith("workbench/")
    assert (meta.embed_dim, meta.max_tokens, meta.similarity_fn_name.value) == (384, model.max_seq_length, "cosine")
    assert meta.n_parameters == sum(p.numel() for p in model.parameters())
    batches = [{"text": ["A man plays a guitar.", "A dog runs."]}, {"text": ["Someone plays music."]}]
    emb = encoder.encode(batches, task_metadata=None, hf_split="test", hf_subset="default")
    np.testing.assert_allclose(emb, model.encode([t for b in batches for t in b["text"]]), atol=1e-6)
    sim = encoder.similarity(emb, emb).numpy()
    assert sim.shape == (3, 3) and sim[0, 2] > sim[0, 1]
    np.testing.assert_allclose(encoder.similarity_pairwise(emb, emb[::-1]).numpy(), np.diag(sim[:, ::-1]),
                               atol=1e-6)
    with pytest.raises(ValueError, match="text only"):
        encoder.encode([{"image": [None]}], task_metadata=None, hf_split="test", hf_subset="default")
