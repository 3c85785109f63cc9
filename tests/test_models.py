"""Models: load/save in the sentence-transformers layout, checked against sentence-transformers itself."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from workbench import EmbeddingModel, build_model, load_model
from workbench.models import ModelNotFoundError, Pooling

SENTENCES = [
    "A man is playing a guitar.",
    "Someone plays an instrument on stage.",
    "The cat sleeps on the warm windowsill.",
    "",
    "   ",
    "Émilie a mangé des crêpes 🥞 au petit-déjeuner.",
    "Two dogs run through the snow, chasing a red ball across the frozen field near the old barn.",
    "\"Quoted\" text stays literal.",
    "x " * 400,  # longer than max_seq_length: truncated
]


def _st(path: Path):
    st = pytest.importorskip("sentence_transformers")
    return st.SentenceTransformer(str(path), device="cpu")


@pytest.fixture(scope="module")
def minilm(minilm_path: Path) -> EmbeddingModel:
    return load_model(str(minilm_path), device="cpu")


@pytest.fixture(scope="module")
def tiny_dense(tiny_bert) -> EmbeddingModel:
    """A bert-tiny-shaped model (2 layers, hidden 128, random weights) + Dense(128->256, tanh) + Normalize."""
    return tiny_bert(layers=2, hidden=128, config={"intermediate_size": 512}, dense=256, activation="tanh",
                     normalize=True, max_seq_length=128)


def test_packaged_model_matches_sentence_transformers(minilm, minilm_path):
    ours = minilm.encode(SENTENCES, batch_size=4)
    ref = _st(minilm_path).encode(SENTENCES, batch_size=4)
    assert ours.shape == (len(SENTENCES), 384)
    assert ours.dtype == np.float32
    assert np.abs(ours - ref).max() <= 1e-5
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_short_name_resolves_to_packaged_copy(minilm_path):
    model = load_model("all-MiniLM-L6-v2", device="cpu")
    assert model.dim == 384 and model.normalizes
    assert model.max_seq_length == 256


def test_results_do_not_depend_on_batch_size(minilm):
    base = minilm.encode(SENTENCES, batch_size=len(SENTENCES))
    for bs in (1, 2, 3, 7):
        assert np.abs(minilm.encode(SENTENCES, batch_size=bs) - base).max() <= 1e-5


def test_input_order_is_restored(minilm):
    full = minilm.encode(SENTENCES, batch_size=3)
    for i, text in enumerate(SENTENCES):
        assert np.abs(minilm.encode([text])[0] - full[i]).max() <= 1e-5


def test_built_dense_model_loads_in_sentence_transformers(tiny_dense, tmp_path):
    assert tiny_dense.dim == 256
    path = tiny_dense.save(tmp_path / "tiny")
    modules = json.loads((path / "modules.json").read_text())
    assert [m["path"] for m in modules] == ["", "1_Pooling", "2_Dense", "3_Normalize"]
    assert (path / "3_Normalize").is_dir()
    assert not list(path.rglob("*.bin")), "safetensors only"
    dense_cfg = json.loads((path / "2_Dense" / "config.json").read_text())
    assert dense_cfg == {"in_features": 128, "out_features": 256, "bias": True,
                         "activation_function": "torch.nn.modules.activation.Tanh"}
    ref = _st(path).encode(SENTENCES, batch_size=4)
    ours = tiny_dense.encode(SENTENCES, batch_size=4)
    assert ref.shape == (len(SENTENCES), 256)
    assert np.abs(ours - ref).max() <= 1e-5
    # and back: our own reload is identical
    again = load_model(path, device="cpu").encode(SENTENCES, batch_size=4)
    assert np.abs(again - ours).max() <= 1e-6


@pytest.mark.parametrize("mode", ["mean", "cls", "max", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"])
def test_folder_saved_by_sentence_transformers_loads_here(mode, minilm_path, tmp_path):
    st = pytest.importorskip("sentence_transformers")
    from sentence_transformers.models import Dense, Normalize, Pooling, Transformer

    torch.manual_seed(0)
    modules = [Transformer(str(minilm_path), max_seq_length=64), Pooling(384, mode), Dense(384, 96, activation_function=torch.nn.Tanh())]
    if mode == "mean":
        modules.append(Normalize())
    ref_model = st.SentenceTransformer(modules=modules, device="cpu")
    ref_model.save(str(tmp_path / "st"))
    ours = load_model(tmp_path / "st", device="cpu")
    assert ours.max_seq_length == 64
    assert ours.dim == 96
    a = ours.encode(SENTENCES, batch_size=4)
    b = ref_model.encode(SENTENCES, batch_size=4)
    assert np.abs(a - b).max() <= 1e-5


def test_plain_hugging_face_folder_uses_mean_pooling_with_warning(tmp_path, tiny_bert):
    model = tiny_bert(layers=1, hidden=64, seed=1)
    model.transformer.auto_model.save_pretrained(tmp_path / "hf")
    model.tokenizer.save_pretrained(tmp_path / "hf")
    with pytest.warns(UserWarning, match="mean pooling"):
        loaded = load_model(tmp_path / "hf", device="cpu")
    assert isinstance(loaded.layers[1], Pooling) and loaded.layers[1].modes == ["mean"]
    assert np.abs(loaded.encode(SENTENCES[:3]) - model.encode(SENTENCES[:3])).max() <= 1e-6


def test_keep_layers_and_pooling_choice(minilm_path):
    model = build_model(minilm_path, pooling="cls", keep_layers=[0, 3, 5], device="cpu")
    assert model.transformer.auto_model.config.num_hidden_layers == 3
    assert len(model.transformer.auto_model.encoder.layer) == 3
    assert model.encode(["hello"]).shape == (1, 384)
    with pytest.raises(ValueError, match="keep_layers"):
        build_model(minilm_path, keep_layers=[0, 9])
    with pytest.raises(ValueError, match="unknown pooling mode"):
        build_model(minilm_path, pooling="median")


def test_prompts_are_prepended_and_saved(tiny_dense, tmp_path):
    tiny_dense.prompts = {"query": "query: "}
    try:
        path = tiny_dense.save(tmp_path / "p")
        cfg = json.loads((path / "config_sentence_transformers.json").read_text())
        assert cfg["prompts"] == {"query": "query: "} and cfg["similarity_fn_name"] == "cosine"
        with_prompt = tiny_dense.encode(["a cat"], prompt_name="query")
        assert np.abs(with_prompt - tiny_dense.encode(["query: a cat"])).max() <= 1e-6
        ref = _st(path).encode(["a cat"], prompt_name="query")
        assert np.abs(with_prompt - ref).max() <= 1e-5
        with pytest.raises(ValueError, match="not one of this model's prompts"):
            tiny_dense.encode(["a"], prompt_name="passage")
    finally:
        tiny_dense.prompts = {}


# ----- bad input -----------------------------------------------------------------------------------

def test_empty_list_gives_empty_array(minilm):
    out = minilm.encode([])
    assert out.shape == (0, 384) and out.dtype == np.float32
    assert minilm.encode([], output="torch").shape == (0, 384)


def test_non_string_item_is_named(minilm):
    with pytest.raises(TypeError, match=r"texts\[2\] is int"):
        minilm.encode(["a", "b", 3])
    with pytest.raises(TypeError, match=r"texts\[0\] is NoneType"):
        minilm.encode([None])
    with pytest.raises(TypeError, match="list of strings"):
        minilm.encode(42)
    with pytest.raises(ValueError, match="batch_size"):
        minilm.encode(["a"], batch_size=0)


def test_missing_model_folder_is_explained(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no model folder"):
        load_model(str(tmp_path / "nope" / "model"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="neither a sentence-transformers folder"):
        load_model(tmp_path / "empty")


def test_hub_offline_message_says_how_to_use_a_local_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    with pytest.raises(ModelNotFoundError) as err:
        load_model("some-org/some-model-that-is-not-cached")
    msg = str(err.value)
    assert "HF_HUB_OFFLINE" in msg and "local folder" in msg


def test_unknown_module_type_is_refused(tiny_dense, tmp_path):
    path = tiny_dense.save(tmp_path / "m")
    modules = json.loads((path / "modules.json").read_text())
    modules[1]["type"] = "evil_package.RunAnything"
    (path / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ValueError, match="evil_package.RunAnything"):
        load_model(path)


def test_module_path_cannot_escape_the_folder(tiny_dense, tmp_path):
    path = tiny_dense.save(tmp_path / "m")
    modules = json.loads((path / "modules.json").read_text())
    modules[1]["path"] = "../../etc"
    (path / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ValueError, match="outside the model folder"):
        load_model(path)


def test_pickle_weights_are_refused_by_default(tiny_dense, tmp_path):
    path = tiny_dense.save(tmp_path / "m")
    state = {k: v for k, v in tiny_dense.layers[2].state_dict().items()}
    (path / "2_Dense" / "model.safetensors").unlink()
    torch.save(state, path / "2_Dense" / "pytorch_model.bin")
    with pytest.raises(ValueError, match="allow_pickle=True"):
        load_model(path)
    loaded = load_model(path, allow_pickle=True, device="cpu")
    assert np.abs(loaded.encode(["a b"]) - tiny_dense.encode(["a b"])).max() <= 1e-6


def test_save_is_atomic(tiny_dense, tmp_path, monkeypatch):
    path = tiny_dense.save(tmp_path / "m")
    before = sorted(p.relative_to(path).as_posix() for p in path.rglob("*"))
    weights = (path / "model.safetensors").read_bytes()

    def boom(self, folder):
        raise RuntimeError("disk full")

    monkeypatch.setattr(type(tiny_dense.layers[2]), "save", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        tiny_dense.save(path)
    assert sorted(p.relative_to(path).as_posix() for p in path.rglob("*")) == before
    assert (path / "model.safetensors").read_bytes() == weights
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary folder left behind"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a good folder loads without complaint
        load_model(path, device="cpu")


def test_length_bucketed_forward_equals_one_padded_forward(minilm_path):
    """Large training batches run in length-sorted chunks; values and gradients must not change."""
    model = build_model(minilm_path, keep_layers=[0, 5], dense=32, normalize=True, seed=0, device="cpu").eval()
    texts = [("word " * (1 + (i * 7) % 40)).strip() + f" {i}" for i in range(150)]
    feats = model.tokenize(texts)
    assert model.bucket_rows < len(texts)
    chunked = model(feats)
    model.bucket_rows = 10**9
    try:
        whole = model(feats)
    finally:
        del model.bucket_rows  # back to the class default
    assert torch.abs(chunked - whole).max() <= 1e-5
    grads = []
    for rows in (64, 10**9):
        model.bucket_rows = rows
        model.zero_grad()
        (model(feats) * torch.linspace(-1, 1, 32)).sum().backward()
        grads.append(model.layers[2].linear.weight.grad.clone())
    del model.bucket_rows
    assert torch.allclose(grads[0], grads[1], atol=1e-4)


def test_truncation_is_announced_once(minilm_path):
    model = load_model(minilm_path, device="cpu", max_seq_length=16)
    long_text = "a very long sentence " * 20
    with pytest.warns(UserWarning, match=r"1 text\(s\) are longer than max_seq_length=16"):
        model.encode(["short", long_text])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.encode([long_text])  # said once per model
        load_model(minilm_path, device="cpu").encode(["short enough"])


def test_token_ids_are_the_tokenizers_ids(minilm):
    """encode's fast tokenizing path gives what the transformers tokenizer call gives, truncation included."""
    tr = minilm.transformer

    def both(texts):
        fast = tr.token_ids(texts)
        slow = tr.tokenize(texts, padding=False)
        return fast, {k: slow[k] for k in fast}

    fast, slow = both(SENTENCES)
    assert fast == slow and set(fast) == {"input_ids", "token_type_ids"}
    assert len(fast["input_ids"][-1]) == tr.max_seq_length  # "x " * 400 was cut, [SEP] kept
    assert fast["input_ids"][-1][-1] == tr.tokenizer.sep_token_id
    saved = tr.max_seq_length, tr.tokenizer.truncation_side, tr.do_lower_case
    try:
        tr.max_seq_length = 12  # the private copy follows the setting
        tr.tokenizer.truncation_side = "left"
        tr.do_lower_case = True
        fast, slow = both(SENTENCES + ["SHOUTED Words In Capitals, long enough to be cut on the left side here"])
        assert fast == slow and max(len(r) for r in fast["input_ids"]) == 12
    finally:
        tr.max_seq_length, tr.tokenizer.truncation_side, tr.do_lower_case = saved
    assert both(SENTENCES)[0] == both(SENTENCES)[1]


def test_token_ids_without_a_fast_tokenizer_use_the_tokenizer_call(minilm):
    from workbench.models.transformer import Transformer

    class Slow:  # what a Python-only tokenizer looks like to token_ids
        is_fast = False

        def __init__(self, inner):
            self.inner = inner
            self.calls = 0

        def __call__(self, *args, **kwargs):
            self.calls += 1
            return self.inner(*args, **kwargs)

    slow = Slow(minilm.transformer.tokenizer)
    tr = Transformer(minilm.transformer.auto_model, slow, max_seq_length=minilm.transformer.max_seq_length)
    got = tr.token_ids(SENTENCES)
    assert slow.calls == 1
    assert got["input_ids"] == minilm.transformer.token_ids(SENTENCES)["input_ids"]


def test_token_ids_match_on_stsb(minilm, stsb_dir):
    from workbench.data import load_stsb

    test = load_stsb("test", path=stsb_dir)
    texts = list(test["sentence1"]) + list(test["sentence2"])
    tr = minilm.transformer
    assert tr.token_ids(texts)["input_ids"] == tr.tokenize(texts, padding=False)["input_ids"]
