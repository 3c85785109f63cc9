"""MatryoshkaLoss against sentence-transformers' on the same embeddings, through the training loop,
and in recipes (typed [loss] keys, bad dims refused before training)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from workbench.losses import (
    CachedMultipleNegativesRankingLoss,
    CoSENTLoss,
    MatryoshkaLoss,
    MSELoss,
    MultipleNegativesRankingLoss,
)
from workbench.recipes import RecipeError, load_recipe
from workbench.training import TrainConfig, Trainer
from workbench.training.events import Step

pytestmark = pytest.mark.usefixtures("one_thread")


class _Table(nn.Module):
    """A stand-in model: row ``idx`` of a fixed embedding table. ``st=True`` answers as a
    SentenceTransformer does (a dict with ``sentence_embedding``), else as a workbench model."""

    def __init__(self, table: torch.Tensor, st: bool):
        super().__init__()
        self.table = nn.Parameter(table.clone())
        self.st = st
        self.dim = table.shape[1]

    def get_embedding_dimension(self) -> int:  # what sentence-transformers asks
        return self.dim

    def _get_untruncated_embedding_dimension(self) -> int:  # what sentence-transformers >= 6.3 asks instead
        return self.dim

    def forward(self, features):
        emb = self.table[features["idx"]]  # (batch, dim)
        return {"sentence_embedding": emb} if self.st else emb


def _columns(batch: int, n_columns: int) -> list[dict[str, torch.Tensor]]:
    return [{"idx": torch.arange(c * batch, (c + 1) * batch)} for c in range(n_columns)]


def _both(table, ours_inner, st_inner_cls, dims, weights, st_kwargs=None, **ours_kwargs):
    """Our loss and sentence-transformers' on twin stand-ins holding the same table."""
    from sentence_transformers.sentence_transformer.losses import MatryoshkaLoss as STMatryoshka

    ours_model, st_model = _Table(table, st=False), _Table(table, st=True)
    ours = MatryoshkaLoss(ours_model, ours_inner, dims=dims, weights=weights, **ours_kwargs)
    st = STMatryoshka(st_model, st_inner_cls(st_model, **(st_kwargs or {})), list(dims), weights)
    return ours, st, ours_model, st_model


@pytest.mark.parametrize("n_columns", [2, 3], ids=["pairs", "triplets"])
@pytest.mark.parametrize("similarity", ["cosine", "dot"])
def test_matryoshka_mnrl_equals_sentence_transformers(n_columns, similarity):
    from sentence_transformers import util
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss as STMNRL

    torch.manual_seed(0)
    batch, dim = 16, 64
    table = torch.randn(batch * n_columns, dim) * 0.7 + 0.1  # rows not unit length: renormalising matters
    dims, weights = (64, 32, 16, 8), (1.0, 0.5, 2.0, 1.0)
    st_kwargs = {"scale": 20.0, "similarity_fct": util.cos_sim if similarity == "cosine" else util.dot_score}
    ours, st, ours_model, st_model = _both(table, "MultipleNegativesRankingLoss", STMNRL, dims, list(weights),
                                           st_kwargs, scale=20.0, similarity=similarity, gather_across_devices=False)
    cols = _columns(batch, n_columns)
    mine, theirs = ours(cols), st(cols, torch.zeros(batch))
    assert float(mine.detach()) == pytest.approx(float(theirs.detach()), abs=1e-5)
    mine.backward()
    theirs.backward()
    assert torch.allclose(ours_model.table.grad, st_model.table.grad, atol=1e-6)


def test_matryoshka_cosent_equals_sentence_transformers():
    from sentence_transformers.sentence_transformer.losses import CoSENTLoss as STCoSENT

    torch.manual_seed(1)
    batch, dim = 12, 48
    table = torch.randn(2 * batch, dim)
    scores = torch.rand(batch)
    ours, st, _, _ = _both(table, "CoSENTLoss", STCoSENT, (48, 24, 12), None, {"scale": 20.0}, scale=20.0)
    cols = _columns(batch, 2)
    assert float(ours(cols, scores).detach()) == pytest.approx(float(st(cols, scores).detach()), abs=1e-5)


def test_matryoshka_sums_the_inner_loss_over_prefixes():
    """Independent of sentence-transformers: the sum, by hand, of MNRL on each renormalised prefix."""
    from workbench.losses import mnrl_loss

    torch.manual_seed(2)
    table = torch.randn(20, 32)
    model = _Table(table, st=False)
    loss = MatryoshkaLoss(model, dims=[8, 32, 16], weights=[3.0, 1.0, 0.5], gather_across_devices=False)
    assert loss.dims == (32, 16, 8) and loss.weights == (1.0, 0.5, 3.0)  # largest first, weights follow
    a, p = table[:10], table[10:]
    by_hand = sum(w * mnrl_loss(a[:, :d], p[:, :d]) for d, w in [(32, 1.0), (16, 0.5), (8, 3.0)])
    assert float(loss(_columns(10, 2)).detach()) == pytest.approx(float(by_hand.detach()), abs=1e-5)


def test_matryoshka_mse_compares_prefixes_without_renormalising():
    torch.manual_seed(3)
    table, teacher = torch.randn(6, 16), torch.randn(6, 16)
    loss = MatryoshkaLoss(_Table(table, st=False), "MSELoss", dims=[16, 4])
    expected = ((table - teacher) ** 2).mean() + ((table[:, :4] - teacher[:, :4]) ** 2).mean()
    assert float(loss(_columns(6, 1), teacher).detach()) == pytest.approx(float(expected.detach()), abs=1e-6)


def test_bad_settings_are_refused_with_a_clear_message(tiny_bert):
    model = tiny_bert(layers=1, dense=32, normalize=True)
    with pytest.raises(ValueError, match=r"dims \[64, 16\]: 64 is more than the model's embedding dim 32"):
        MatryoshkaLoss(model, dims=[64, 16])
    with pytest.raises(ValueError, match="needs dims"):
        MatryoshkaLoss(model)
    with pytest.raises(ValueError, match="lists a size twice"):
        MatryoshkaLoss(model, dims=[16, 16])
    with pytest.raises(ValueError, match=">= 1"):
        MatryoshkaLoss(model, dims=[16, 0])
    with pytest.raises(ValueError, match="weights has 1 values for 2 dims"):
        MatryoshkaLoss(model, dims=[32, 16], weights=[1.0])
    with pytest.raises(ValueError, match="MatryoshkaLoss wraps"):
        MatryoshkaLoss(model, "CachedMultipleNegativesRankingLoss", dims=[16])
    with pytest.raises(ValueError, match="MatryoshkaLoss wraps"):
        MatryoshkaLoss(model, CachedMultipleNegativesRankingLoss(model), dims=[16])
    with pytest.raises(ValueError, match="CoSENTLoss takes no 'similarity'"):
        MatryoshkaLoss(model, "CoSENTLoss", dims=[16], similarity="dot")
    with pytest.raises(ValueError, match="same model"):
        MatryoshkaLoss(model, MSELoss(tiny_bert(layers=1, dense=32)), dims=[16])
    inner = CoSENTLoss(model, scale=10.0)
    assert MatryoshkaLoss(model, inner, dims=[16]).inner is inner  # a built loss is used as it is


def test_a_training_step_runs_through_the_loop(tiny_bert):
    model = tiny_bert(layers=1, dense=32, normalize=True, seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    loss = MatryoshkaLoss(model, dims=[32, 16, 8])
    pairs = {"anchor": [f"the cat number {i} sleeps" for i in range(16)],
             "positive": [f"a cat, item {i}, is asleep" for i in range(16)]}
    events = []
    cfg = TrainConfig(lr=1e-3, batch_size=8, max_steps=3, log_every=1, eval_at_start=False, warmup_ratio=0.0)
    Trainer(model, loss, cfg, pairs, callbacks=[events.append]).fit()
    steps = [e for e in events if isinstance(e, Step)]
    assert [s.step for s in steps] == [1, 2, 3] and all(math.isfinite(s.loss) for s in steps)
    # three MNRL terms of 8-way cross-entropies: each at most log(8) for a random start, summed
    assert 0 < steps[0].loss < 3 * math.log(8) + 1
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
    assert loss.config() == {"name": "MatryoshkaLoss", "params": {
        "inner": "MultipleNegativesRankingLoss", "dims": [32, 16, 8], "weights": [1.0, 1.0, 1.0],
        "scale": 20.0, "similarity": "cosine", "gather_across_devices": True}}


# ----- recipes -----------------------------------------------------------------------------------
def test_the_matryoshka_recipe_is_b_prime_i_with_matryoshka_loss():
    plain, matryoshka = load_recipe("offline-b-mnrl-minilm"), load_recipe("offline-b-mnrl-minilm-matryoshka")
    assert matryoshka.loss.name == "MatryoshkaLoss" and matryoshka.loss.base_name == "MultipleNegativesRankingLoss"
    assert matryoshka.loss.params == {"inner": "MultipleNegativesRankingLoss", "dims": (256, 128, 64, 32), "scale": 20.0}
    assert matryoshka.loss.value("weights") is None  # 1 each
    a, b = plain.to_dict(), matryoshka.to_dict()
    for key in ("name", "description", "loss"):
        a.pop(key), b.pop(key)
    assert a == b  # the same model, data, evaluation and budget
    assert matryoshka.loss.takes("scale") and matryoshka.loss.value("scale") == 20.0  # the dashboard's slider
    assert matryoshka.loss.value("similarity") == "cosine"  # the inner loss's default
    changed = matryoshka.with_(loss={"scale": 10.0, "dims": [256, 64], "weights": [1.0, 2.0]})
    assert changed.loss.params["scale"] == 10.0 and changed.loss.params["dims"] == (256, 64)


@pytest.mark.parametrize(("change", "message"), [
    ({"dims": [512, 128]}, "[loss]: dims [512, 128]: 512 is more than the model's embedding dim (dense = 256)"),
    ({"dims": [256, "64"]}, "[loss]: dims: expected a list of a whole number"),
    ({"dims": [256, 256]}, "lists a size twice"),
    ({"weights": [1.0]}, "weights has 1 values for 4 dims"),
    ({"inner": "CachedMultipleNegativesRankingLoss"}, "MatryoshkaLoss wraps"),
    ({"scael": 1.0}, "unknown key 'scael' (did you mean 'scale'?) for MatryoshkaLoss"),
    ({"scale": -1.0}, "scale must be a positive finite number"),
])
def test_bad_matryoshka_settings_are_refused_when_the_recipe_is_read(change, message):
    recipe = load_recipe("offline-b-mnrl-minilm-matryoshka")
    with pytest.raises(RecipeError) as err:
        recipe.with_(loss=change)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_matryoshka_distillation_loss_needs_a_distill_recipe():
    plain = load_recipe("offline-b-mnrl-minilm")
    with pytest.raises(RecipeError, match="MSELoss needs teacher embeddings: use kind = 'distill'"):
        plain.with_(loss={"name": "MatryoshkaLoss", "inner": "MSELoss", "dims": [64]})


def test_dims_past_a_base_models_width_are_refused_before_training(minilm_path, tmp_path):
    """Without a Dense layer the width is the base model's: the loss refuses when it is built on it."""
    from workbench.recipes import build_from_spec

    recipe = load_recipe("offline-b-mnrl-minilm-matryoshka").with_(
        model={"dense": None, "normalize": False, "keep_layers": [0]}, loss={"dims": [512, 64]})
    model = build_from_spec(recipe.model, device="cpu")
    with pytest.raises(ValueError, match="512 is more than the model's embedding dim 384"):
        recipe.loss.build(model)


def test_a_few_steps_of_the_matryoshka_recipe_run(tmp_path, monkeypatch, data_dir):
    from workbench.recipes import run_recipe

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    recipe = load_recipe("offline-b-mnrl-minilm-matryoshka").with_(
        model={"keep_layers": [0]}, data={"limit": 64}, eval={"sts_dev": False, "sts_test": False},
        train={"max_steps": 2, "batch_size": 16})
    result = run_recipe(recipe, run_dir=tmp_path / "run", device="cpu")
    config = json.loads((tmp_path / "run" / "config.json").read_text(encoding="utf-8"))
    text = json.dumps(config)
    assert '"MatryoshkaLoss"' in text and "[256, 128, 64, 32]" in text.replace(",\n", ", ")
    from workbench import load_model

    assert load_model(result.model_path, device="cpu").encode(["a dog runs"], truncate_dim=64).shape == (1, 64)


def test_plain_losses_still_score_as_before():
    """The losses' forward now goes through from_embeddings: the closed form still holds."""
    eye = torch.eye(4)
    model = _Table(torch.cat([eye, eye]), st=False)
    loss = MultipleNegativesRankingLoss(model, scale=2.0, gather_across_devices=False)
    assert float(loss(_columns(4, 2)).detach()) == pytest.approx(math.log(1 + 3 * math.exp(-2.0)), rel=1e-6)
