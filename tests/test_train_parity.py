"""Acceptance: the same small MNRL recipe trained by sentence-transformers' trainer and by ours
ends within 0.01 STS-B dev spearman (same data, seed, starting weights and hyper-parameters)."""

from __future__ import annotations

import tempfile
import warnings

import pytest

from workbench import build_model, load_model
from workbench.data import load_caption_pairs, load_stsb
from workbench.evaluation import STSEvaluator
from workbench.losses import MultipleNegativesRankingLoss
from workbench.training import TrainConfig, Trainer

LR, BATCH, ROWS, SEED = 5e-5, 32, 1600, 0


@pytest.mark.slow
def test_mnrl_recipe_matches_sentence_transformers_trainer(minilm_path, stsb_dir, tmp_path):
    st = pytest.importorskip("sentence_transformers")
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.losses import MultipleNegativesRankingLoss as STMNRL

    data = load_caption_pairs("train", path=stsb_dir.parent).shuffle(seed=SEED).select(range(ROWS))
    evaluator = STSEvaluator.from_dataset(load_stsb("dev", path=stsb_dir.parent), name="sts-dev")
    init = tmp_path / "init"
    build_model(minilm_path, keep_layers=[0, 5], dense=128, activation="tanh", normalize=True, max_seq_length=64,
                seed=SEED, device="cpu").save(init)
    start = evaluator(load_model(init, device="cpu"))["sts-dev_spearman_cosine"]

    ours = load_model(init, device="cpu")
    cfg = TrainConfig(lr=LR, batch_size=BATCH, epochs=1, warmup_ratio=0.1, weight_decay=0.01, seed=SEED,
                      eval_at_start=False, eval_every=0)
    Trainer(ours, MultipleNegativesRankingLoss(ours, scale=20.0), cfg, data).fit()
    mine = evaluator(ours)["sts-dev_spearman_cosine"]

    theirs = st.SentenceTransformer(str(init), device="cpu")
    args = SentenceTransformerTrainingArguments(
        output_dir=tempfile.mkdtemp(dir=tmp_path), per_device_train_batch_size=BATCH, learning_rate=LR, num_train_epochs=1,
        warmup_ratio=0.1, weight_decay=0.01, seed=SEED, report_to="none", save_strategy="no", use_cpu=True,
        batch_sampler="no_duplicates", disable_tqdm=True, logging_steps=1000,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        SentenceTransformerTrainer(model=theirs, args=args, train_dataset=data, loss=STMNRL(theirs, scale=20.0)).train()
    ref = evaluator(theirs)["sts-dev_spearman_cosine"]

    print(f"STS-B dev spearman_cosine: start {start:.4f}, workbench {mine:.4f}, sentence-transformers {ref:.4f}")
    assert mine > start + 0.005 and ref > start + 0.005  # both actually learned something
    assert abs(mine - ref) <= 0.01
