"""Losses: closed forms, sentence-transformers as the reference, GradCache gradients, validation."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.losses import (
    CachedMultipleNegativesRankingLoss,
    CoSENTLoss,
    MSELoss,
    MultipleNegativesRankingLoss,
    cosent_loss,
    mnrl_loss,
    mse_loss,
)
from workbench.models import EmbeddingModel, build_model

ANCHORS = ["a man plays a guitar", "two dogs run in the park", "the sun is hot today", "she reads a book",
           "a child eats an apple", "cars wait at the light", "the cat sleeps on the sofa", "rain falls on the city"]
POSITIVES = ["someone plays music", "dogs are running outside", "it is a warm day", "a woman is reading",
             "a kid has a snack", "traffic is stopped", "a cat is napping", "it is raining in town"]
NEGATIVES = ["nobody is playing", "the dogs sleep inside", "it is snowing", "she is swimming",
             "the child is hungry", "the road is empty", "the dog barks loudly", "the sky is clear"]


# ----- a tiny BERT with a locally built WordPiece tokenizer (no download) -------------------------
def _tokenizer(texts: list[str]):
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece
    from transformers import PreTrainedTokenizerFast

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = sorted({w for t in texts for w in t.lower().split()})
    chars = sorted({c for w in words for c in w})
    vocab = {tok: i for i, tok in enumerate(special + words + chars + [f"##{c}" for c in chars])}
    tok = Tokenizer(WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]",
    )


@pytest.fixture(scope="module")
def tiny(bert_config) -> EmbeddingModel:
    tokenizer = _tokenizer(ANCHORS + POSITIVES + NEGATIVES)
    config = bert_config(layers=2, hidden=32, vocab_size=len(tokenizer), intermediate_size=37,
                         max_position_embeddings=64)  # dropout 0.1 by default
    return build_model(config, tokenizer=tokenizer, dense=16, normalize=True, seed=0, device="cpu")


def _columns(model: EmbeddingModel, *cols: list[str]) -> list[dict[str, torch.Tensor]]:
    return [dict(model.tokenize(c)) for c in cols]


def _grads(model: torch.nn.Module) -> dict[str, torch.Tensor | None]:
    out = {n: (None if p.grad is None else p.grad.clone()) for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    return out


def _assert_same_grads(got: dict, want: dict, tol: float = 1e-5) -> None:
    assert got.keys() == want.keys()
    used = 0
    for name, g in got.items():
        w = want[name]
        assert (g is None) == (w is None), name
        if g is not None:
            used += 1
            scale = max(float(w.abs().max()), 1e-3)
            assert float((g - w).abs().max()) <= tol * scale, name
    assert used > 10  # the transformer's weights, not just the head, received gradients


# ----- closed forms -------------------------------------------------------------------------------
@pytest.mark.parametrize("n,scale", [(2, 20.0), (5, 20.0), (8, 1.0), (16, 0.5)])
def test_mnrl_identity_closed_form(n: int, scale: float) -> None:
    # anchor i = positive i = e_i: logit scale on the diagonal, 0 for the n - 1 other positives
    eye = torch.eye(n, dtype=torch.float64)
    assert mnrl_loss(eye, eye, scale=scale).item() == pytest.approx(math.log1p((n - 1) * math.exp(-scale)), rel=1e-9)


@pytest.mark.parametrize("columns", [1, 2, 3])
def test_mnrl_orthogonal_negatives_closed_form(columns: int) -> None:
    # negatives orthogonal to everything add n zero logits per column: log(1 + ((1 + k) n - 1) e^-s)
    n, s = 4, 2.0
    eye = torch.eye(n * (1 + columns), dtype=torch.float64)
    anchors = eye[:n]
    negatives = [eye[n * (k + 1): n * (k + 2)] for k in range(columns)]
    want = math.log1p(((1 + columns) * n - 1) * math.exp(-s))
    got = mnrl_loss(anchors, anchors, negatives if columns > 1 else negatives[0], scale=s)
    assert got.item() == pytest.approx(want, rel=1e-9)


def test_mnrl_own_hard_negative_closed_form() -> None:
    # negative i has cosine c with anchor i and 0 with all others: one logit s*c, 2n - 2 zeros
    n, s, c = 5, 20.0, 0.8
    eye = torch.eye(2 * n, dtype=torch.float64)
    anchors = eye[:n]
    negatives = c * eye[:n] + math.sqrt(1 - c * c) * eye[n:]
    want = math.log(1 + (2 * n - 2) * math.exp(-s) + math.exp(s * (c - 1)))
    assert mnrl_loss(anchors, anchors, negatives, scale=s).item() == pytest.approx(want, rel=1e-9)


def test_mnrl_dot_uses_lengths_and_cosine_ignores_them() -> None:
    n, s, a, b = 4, 1.0, 2.0, 1.5
    eye = torch.eye(n, dtype=torch.float64)
    dot = mnrl_loss(a * eye, b * eye, scale=s, similarity="dot").item()
    cos = mnrl_loss(a * eye, b * eye, scale=s, similarity="cosine").item()
    assert dot == pytest.approx(math.log1p((n - 1) * math.exp(-s * a * b)), rel=1e-9)
    assert cos == pytest.approx(math.log1p((n - 1) * math.exp(-s)), rel=1e-9)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 6), dim=st.integers(2, 5), k=st.integers(0, 2), seed=st.integers(0, 2**31 - 1),
       scale=st.floats(0.5, 30.0))
def test_mnrl_matches_a_plain_loop(n: int, dim: int, k: int, seed: int, scale: float) -> None:
    rng = np.random.default_rng(seed)
    a, p, *negs = (rng.normal(size=(n, dim)) for _ in range(2 + k))
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    cands = unit(np.concatenate([p, *negs]))
    want = 0.0
    for i in range(n):
        logits = scale * cands @ unit(a)[i]
        want += (np.logaddexp.reduce(logits) - logits[i]) / n
    got = mnrl_loss(*(torch.from_numpy(x) for x in (a, p)), [torch.from_numpy(x) for x in negs], scale=scale)
    assert got.item() == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_cosent_closed_form() -> None:
    # pairs at cosines 0.9, 0.5, 0.5 with scores 3, 1, 1: the tie (1, 1) adds nothing
    s = 20.0
    angles = [math.acos(0.9), math.acos(0.5), math.acos(0.5)]
    emb1 = torch.tensor([[1.0, 0.0]] * 3, dtype=torch.float64)
    emb2 = torch.tensor([[math.cos(t), math.sin(t)] for t in angles], dtype=torch.float64)
    got = cosent_loss(emb1, emb2, torch.tensor([3.0, 1.0, 1.0]), scale=s).item()
    assert got == pytest.approx(math.log(1 + 2 * math.exp(s * (0.5 - 0.9))), rel=1e-9)
    # reversing the gold order turns both terms into penalties: log(1 + 2 e^{s * 0.4})
    got = cosent_loss(emb1, emb2, torch.tensor([0.0, 1.0, 1.0]), scale=s).item()
    assert got == pytest.approx(math.log(1 + 2 * math.exp(s * 0.4)), rel=1e-9)


def test_mse_closed_form() -> None:
    student = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert mse_loss(student, torch.zeros(2, 2)).item() == pytest.approx((1 + 4 + 9 + 16) / 4)


# ----- sentence-transformers as the reference ---------------------------------------------------------
def test_functions_match_sentence_transformers() -> None:
    from sentence_transformers.sentence_transformer import losses as stl
    from sentence_transformers.util import dot_score

    g = torch.Generator().manual_seed(0)
    a, p, n1, n2 = (torch.randn(16, 24, generator=g) for _ in range(4))
    for negs in ([], [n1], [n1, n2]):
        for sim, fn, scale in (("cosine", None, 20.0), ("dot", dot_score, 1.0)):
            ref = stl.MultipleNegativesRankingLoss(None, scale=scale, **({"similarity_fct": fn} if fn else {}))
            want = ref.compute_loss_from_embeddings([a, p, *negs], None).item()
            assert mnrl_loss(a, p, negs, scale=scale, similarity=sim).item() == pytest.approx(want, rel=1e-5, abs=1e-6)
    scores = torch.randint(0, 4, (16,)).float()  # ties included
    want = stl.CoSENTLoss(None, scale=20.0).compute_loss_from_embeddings([a, p], scores).item()
    assert cosent_loss(a, p, scores, scale=20.0).item() == pytest.approx(want, rel=1e-5)
    want = stl.MSELoss(None).compute_loss_from_embeddings([a], [p]).item()
    assert mse_loss(a, p).item() == pytest.approx(want, rel=1e-6)


def test_modules_match_sentence_transformers_end_to_end(tiny: EmbeddingModel, tmp_path: Path) -> None:
    # The same tiny model, saved and loaded by sentence-transformers: identical loss values on the
    # same texts (dropout off), which checks our embedding of the columns as well as the math.
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import losses as stl

    tiny.eval()
    ref_model = SentenceTransformer(str(tiny.save(tmp_path / "tiny")), device="cpu").eval()
    texts = (ANCHORS, POSITIVES, NEGATIVES)
    ours, theirs = _columns(tiny, *texts), [ref_model.tokenize(list(t)) for t in texts]
    scores = torch.linspace(0, 1, len(ANCHORS))
    teacher = torch.randn(len(ANCHORS), tiny.dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        pairs = [
            (MultipleNegativesRankingLoss(tiny)(ours), stl.MultipleNegativesRankingLoss(ref_model)(theirs, None)),
            (MultipleNegativesRankingLoss(tiny)(ours[:2]), stl.MultipleNegativesRankingLoss(ref_model)(theirs[:2], None)),
            (CoSENTLoss(tiny)(ours[:2], scores), stl.CoSENTLoss(ref_model)(theirs[:2], scores)),
            (MSELoss(tiny)(ours[:1], teacher), stl.MSELoss(ref_model)(theirs[:1], teacher)),
        ]
    for got, want in pairs:
        assert abs(got.item() - want.item()) <= 1e-5, (got.item(), want.item())


# ----- GradCache ------------------------------------------------------------------------------------
@pytest.mark.parametrize("mini", [3, 5])
def test_cached_mnrl_equals_plain_mnrl_in_eval_mode(tiny: EmbeddingModel, mini: int) -> None:
    tiny.eval()
    cols = _columns(tiny, ANCHORS, POSITIVES, NEGATIVES)
    plain = MultipleNegativesRankingLoss(tiny)(cols)
    plain.backward()
    want = _grads(tiny)
    cached = CachedMultipleNegativesRankingLoss(tiny, mini_batch_size=mini)(cols)
    cached.backward()
    assert cached.item() == pytest.approx(plain.item(), rel=1e-6)
    _assert_same_grads(_grads(tiny), want)


def test_cached_mnrl_replays_dropout_exactly(tiny: EmbeddingModel) -> None:
    # Reference: plain MNRL on the same mini-batches (tokenized on their own, so padded to their own
    # longest text, as the cached loss trims them) embedded in the same order with grad: each draws
    # the same dropout masks as the cached loss's first pass, which its backward pass must replay.
    mini = 3
    tiny.train()
    texts = (ANCHORS, POSITIVES, NEGATIVES)
    cols = _columns(tiny, *texts)
    torch.manual_seed(123)
    embs = [torch.cat([tiny(tiny.tokenize(t[i:i + mini])) for i in range(0, len(t), mini)]) for t in texts]
    plain = mnrl_loss(embs[0], embs[1], embs[2:])
    plain.backward()
    after_plain = torch.rand(4)
    want = _grads(tiny)

    torch.manual_seed(123)
    loss_fn = CachedMultipleNegativesRankingLoss(tiny, mini_batch_size=mini)
    cached = loss_fn(cols)
    cached.backward()
    assert torch.equal(torch.rand(4), after_plain)  # the replay leaves the global RNG as a plain loss would
    assert cached.item() == pytest.approx(plain.item(), rel=1e-6)
    _assert_same_grads(_grads(tiny), want)

    torch.manual_seed(123)
    (2 * loss_fn(cols)).backward()  # the outer gradient (e.g. a loss scaler) reaches every mini-batch
    _assert_same_grads(_grads(tiny), {k: None if v is None else 2 * v for k, v in want.items()})

    torch.manual_seed(7)  # different dropout masks: the comparison above is not vacuous
    MultipleNegativesRankingLoss(tiny)(cols).backward()
    other = _grads(tiny)
    assert not torch.allclose(other["layers.2.linear.weight"], want["layers.2.linear.weight"], rtol=1e-3)
    tiny.eval()


def test_cached_mnrl_without_grad_returns_the_value(tiny: EmbeddingModel) -> None:
    tiny.eval()
    cols = _columns(tiny, ANCHORS, POSITIVES)
    with torch.no_grad():
        got = CachedMultipleNegativesRankingLoss(tiny, mini_batch_size=4)(cols)
        want = MultipleNegativesRankingLoss(tiny)(cols)
    assert got.grad_fn is None and got.item() == pytest.approx(want.item(), rel=1e-6)


# ----- validation and config ------------------------------------------------------------------------
def test_shape_mismatches_name_the_shapes() -> None:
    a = torch.randn(4, 8)
    with pytest.raises(ValueError, match=re.escape("positives has shape (3, 8) but anchors has shape (4, 8)")):
        mnrl_loss(a, torch.randn(3, 8))
    with pytest.raises(ValueError, match=re.escape("negatives[1] has shape (4, 7)")):
        mnrl_loss(a, a, [a, torch.randn(4, 7)])
    with pytest.raises(ValueError, match=re.escape("(4, 8, 1)")):
        mnrl_loss(a[..., None], a[..., None])
    with pytest.raises(ValueError, match=re.escape("teacher has shape (4, 6) but student has shape (4, 8)")):
        mse_loss(a, torch.randn(4, 6))
    with pytest.raises(ValueError, match=re.escape("scores has shape (3,)")):
        cosent_loss(a, a, torch.randn(3))
    with pytest.raises(ValueError, match="scale"):
        mnrl_loss(a, a, scale=0.0)
    with pytest.raises(ValueError, match="similarity"):
        mnrl_loss(a, a, similarity="euclidean")


def test_nan_inputs_give_a_nan_loss() -> None:
    # Documented behaviour: nothing is masked, so a diverging run is visible in the loss.
    a = torch.randn(4, 8)
    bad = a.clone()
    bad[1, 2] = float("nan")
    assert torch.isnan(mnrl_loss(bad, a))
    assert torch.isnan(mnrl_loss(a, a, bad))
    assert torch.isnan(mse_loss(bad, a))
    assert torch.isnan(cosent_loss(bad, a, torch.arange(4.0)))


def test_modules_check_columns_and_report_config(tiny: EmbeddingModel) -> None:
    cols = _columns(tiny, ANCHORS[:2])
    with pytest.raises(ValueError, match="at least 2 text columns"):
        MultipleNegativesRankingLoss(tiny)(cols)
    with pytest.raises(ValueError, match="labels"):
        MSELoss(tiny)(cols)
    assert MultipleNegativesRankingLoss(tiny, scale=10.0).config() == {
        "name": "MultipleNegativesRankingLoss", "params": {"scale": 10.0, "similarity": "cosine", "gather_across_devices": True}}
    assert CachedMultipleNegativesRankingLoss(tiny, mini_batch_size=8).config()["params"]["mini_batch_size"] == 8
    assert CachedMultipleNegativesRankingLoss(tiny, mini_batch_size=8).config()["params"]["gather_across_devices"] is False
    assert CoSENTLoss(tiny).config() == {"name": "CoSENTLoss", "params": {"scale": 20.0}}
    assert MSELoss(tiny).config() == {"name": "MSELoss", "params": {}}


def test_each_mnrl_records_whether_it_gathers_as_it_does(tiny: EmbeddingModel, monkeypatch) -> None:
    # What config() says (config.json, the model card) is what forward does: MNRL gathers the
    # candidates of every process (gather_rows, a no-op in one process); the cached one does not.
    import workbench.losses as losses_module

    gathered: list[tuple[int, ...]] = []
    real = losses_module.gather_rows
    monkeypatch.setattr(losses_module, "gather_rows", lambda x: (gathered.append(tuple(x.shape)), real(x))[1])
    cols = _columns(tiny, ANCHORS, POSITIVES, NEGATIVES)
    tiny.eval()
    with torch.no_grad():
        mnrl = MultipleNegativesRankingLoss(tiny)
        mnrl(cols)
        assert mnrl.config()["params"]["gather_across_devices"] is True
        assert gathered == [(len(POSITIVES), 16), (len(NEGATIVES), 16)]  # positives and negatives
        gathered.clear()
        cached = CachedMultipleNegativesRankingLoss(tiny, mini_batch_size=4)
        cached(cols)
    assert gathered == []
    assert cached.config() == {"name": "CachedMultipleNegativesRankingLoss", "params": {
        "scale": 20.0, "similarity": "cosine", "gather_across_devices": False, "mini_batch_size": 4}}
    assert MultipleNegativesRankingLoss(tiny, gather_across_devices=False).config()["params"]["gather_across_devices"] is False
    with pytest.raises(ValueError, match="scores against its own process's batch only"):
        CachedMultipleNegativesRankingLoss(tiny, gather_across_devices=True)
