"""Fast CPU backends: ONNX export (fp32, optimized, int8) and static models, against independent references.

The references: the torch model itself (an exported fp32 graph must give its embeddings within
1e-4), sentence-transformers (it must load our static folders and give the same embeddings), and
model2vec's ``StaticModel`` on the same table and tokenizer.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import hide_modules

from workbench import load_model
from workbench.export import ExportError, export_onnx, quantization_settings
from workbench.models import EmbeddingModel, ModelFileError
from workbench.models.onnx_backend import cpu_isa, onnx_files
from workbench.models.static import StaticEmbedding
from workbench.static import distill_static, token_probabilities

pytest.importorskip("onnxruntime", reason="the onnx extra (pip install 'workbench[onnx]') is not installed")

TEXTS = ["A man is playing a guitar.", "Someone plays an instrument on a stage, loudly and for a long time.",
         "The stock market fell.", "ok", "Ünïcödé café naïve façade ☃ 漢字"]


@pytest.fixture(scope="module")
def minilm_int8(tmp_path_factory, minilm_path: Path) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "minilm"
    export_onnx(minilm_path, out, quantize="int8")
    return out


# ----- ONNX --------------------------------------------------------------------------------------
def test_fp32_graph_equals_torch_and_the_folder_is_complete(tmp_path, tiny_bert):
    model = tiny_bert(layers=2, dense=16, normalize=True)
    result = export_onnx(model, tmp_path / "out")
    assert result.file == "onnx/model.onnx" and result.max_abs_diff <= 1e-4
    assert onnx_files(tmp_path / "out") == ["onnx/model.onnx"]
    for name in ("modules.json", "config.json", "model.safetensors", "tokenizer.json", "2_Dense/model.safetensors"):
        assert (tmp_path / "out" / name).is_file(), name
    onnx_model = load_model(tmp_path / "out", backend="onnx")
    assert onnx_model.backend == "onnx" and "OnnxTransformer(onnx/model.onnx" in repr(onnx_model)
    torch_model = load_model(tmp_path / "out", device="cpu")
    a, b = torch_model.encode(TEXTS), onnx_model.encode(TEXTS)
    assert np.abs(a - b).max() <= 1e-4
    # batching and length sorting in front of the runtime do not change results
    assert np.abs(onnx_model.encode(TEXTS, batch_size=1) - b).max() <= 1e-5


def test_minilm_fp32_and_int8_against_torch(minilm_int8: Path, minilm_path: Path):
    files = onnx_files(minilm_int8)
    isa = cpu_isa()
    want = f"onnx/model_{quantization_settings(isa)['suffix']}.onnx"
    assert files == sorted(["onnx/model.onnx", want])
    manifest = json.loads((minilm_int8 / "onnx" / "workbench_export.json").read_text())
    assert manifest["default"] == want and manifest["files"][want]["isa"] == isa
    reference = load_model(minilm_path, device="cpu").encode(TEXTS)
    fp32 = load_model(minilm_int8, backend="onnx", file_name="onnx/model.onnx").encode(TEXTS)
    assert np.abs(fp32 - reference).max() <= 1e-4
    int8_model = load_model(minilm_int8, backend="onnx")  # the manifest's default: the int8 graph
    assert int8_model.transformer.file.name == Path(want).name
    threads = torch.get_num_threads()
    int8 = int8_model.encode(TEXTS)
    assert torch.get_num_threads() == threads  # torch runs single-threaded beside onnxruntime, then is restored
    cos = (int8 * reference).sum(1) / np.linalg.norm(int8, axis=1) / np.linalg.norm(reference, axis=1)
    # close (a two-letter text moves most), and really quantized
    assert cos.min() > 0.9 and cos.mean() > 0.98 and np.abs(int8 - reference).max() > 1e-4


def test_optimized_graph(tmp_path, tiny_bert):
    result = export_onnx(tiny_bert(layers=1), tmp_path / "o2", optimize="O2")
    assert result.file == "onnx/model_O2.onnx" and result.max_abs_diff <= 1e-4
    import onnx

    ops = {node.op_type for node in onnx.load(str(tmp_path / "o2" / result.file)).graph.node}
    # attention fused into one node (eager export + the config's heads), Add + LayerNorm kept apart on CPU
    assert "Attention" in ops and "Softmax" not in ops and "SkipLayerNormalization" not in ops
    with pytest.raises(ExportError, match="O4"):
        if torch.cuda.is_available():
            pytest.skip("O4 is allowed with a GPU")
        export_onnx(tiny_bert(layers=1), tmp_path / "o4", optimize="O4")
    with pytest.raises(ExportError, match="O1, O2, O3, O4"):
        export_onnx(tiny_bert(layers=1), tmp_path / "o9", optimize="O9")


def test_export_errors(tmp_path, tiny_bert, monkeypatch):
    model = tiny_bert(layers=1)
    export_onnx(model, tmp_path / "done")
    with pytest.raises(FileExistsError, match="--overwrite"):
        export_onnx(model, tmp_path / "done")
    with pytest.raises(ExportError, match="already runs an ONNX graph"):
        export_onnx(load_model(tmp_path / "done", backend="onnx"), tmp_path / "again")
    static = _tiny_static()
    with pytest.raises(ExportError, match="StaticEmbedding module has no transformer"):
        export_onnx(static, tmp_path / "static")

    def broken(*args, **kwargs):
        raise RuntimeError("unsupported operator aten::weird")

    monkeypatch.setattr(torch.onnx, "export", broken)
    with pytest.raises(ExportError, match=r"Transformer module \(BertModel\) could not be exported.*aten::weird"):
        export_onnx(model, tmp_path / "broken")
    assert not (tmp_path / "broken").exists() and not list(tmp_path.glob(".broken*"))  # nothing half-written


def test_missing_onnxruntime_names_the_extra(monkeypatch, tmp_path, tiny_bert):
    hide_modules(monkeypatch, "onnxruntime")
    with pytest.raises(ImportError, match=r"pip install 'workbench\[onnx\]'"):
        export_onnx(tiny_bert(layers=1), tmp_path / "x")


def test_picking_the_graph(tmp_path, tiny_bert):
    out = tmp_path / "m"
    export_onnx(tiny_bert(layers=1), out)
    with pytest.raises(ValueError, match="backend='onnx'"):
        load_model(out, file_name="onnx/model.onnx")
    with pytest.raises(ModelFileError, match="has no onnx/nope.onnx; it has onnx/model.onnx"):
        load_model(out, backend="onnx", file_name="nope.onnx")
    (out / "onnx" / "workbench_export.json").unlink()
    (out / "onnx" / "model.onnx").rename(out / "onnx" / "model_a.onnx")
    (out / "onnx" / "model_b.onnx").write_bytes((out / "onnx" / "model_a.onnx").read_bytes())
    with pytest.raises(ModelFileError, match="several ONNX graphs.*file_name="):
        load_model(out, backend="onnx")
    assert load_model(out, backend="onnx", file_name="onnx/model_b.onnx").encode(["x"]).shape == (1, 32)
    with pytest.raises(ValueError, match="runs on the CPU"):
        load_model(out, backend="onnx", device="cuda", file_name="onnx/model_b.onnx")


def test_cpu_isa_and_settings():
    assert cpu_isa() in ("arm64", "avx512_vnni", "avx512", "avx2", "none")
    assert quantization_settings("avx2") == {"weights": "QInt8", "per_channel": True, "reduce_range": True,
                                             "suffix": "qint8_avx2"}
    assert quantization_settings("arm64")["reduce_range"] is False
    with pytest.raises(ValueError, match="choose arm64"):
        quantization_settings("sse2")


def test_cli_export_and_encode(tmp_path, tiny_bert):
    src = tiny_bert(layers=1).save(tmp_path / "src")
    run = [sys.executable, "-m", "workbench"]
    done = subprocess.run([*run, "export", str(src), "--backend", "onnx", "--quantize", "int8", "--out", str(tmp_path / "x")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"for {cpu_isa()}" in done.stdout and "load_model(" in done.stdout
    enc = subprocess.run([*run, "encode", "hello", "world", "--model", str(tmp_path / "x"), "--backend", "onnx",
                          "--out", str(tmp_path / "e.npy")], capture_output=True, text=True, timeout=300)
    assert enc.returncode == 0, enc.stderr
    got = np.load(tmp_path / "e.npy")
    assert np.allclose(got, load_model(tmp_path / "x", backend="onnx").encode(["hello", "world"]), atol=1e-6)
    bad = subprocess.run([*run, "export", str(src), "--optimize", "O9", "--out", str(tmp_path / "y")],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "invalid choice: 'O9'" in bad.stderr


# ----- static models -----------------------------------------------------------------------------
def _tiny_static() -> EmbeddingModel:
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1, "b": 2, "c": 3}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    table = torch.tensor([[0.5, 0.5], [1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    return EmbeddingModel([StaticEmbedding(tok, table)])


def test_static_encode_mean_unknown_and_empty():
    model = _tiny_static()
    got = model.encode(["a b", "a zzz", "", "c c c"])
    # 'zzz' is the tokenizer's unknown token, whose vector is row 0; an empty text has no tokens: zeros
    assert got.tolist() == [[0.5, 0.5], [0.75, 0.25], [0.0, 0.0], [2.0, 2.0]]
    assert model.is_static and model.dim == 2 and "StaticEmbedding(vocab=4, dim=2)" in repr(model)
    # forward (what training runs) is the same masked mean
    feats = model.tokenize(["a b", "a zzz", "", "c c c"])
    assert torch.allclose(model(feats), torch.from_numpy(got))


@pytest.fixture(scope="module")
def tiny_static(tmp_path_factory, minilm_path: Path):
    """A static model distilled from a tiny random BERT on MiniLM's tokenizer (seconds), saved."""
    from conftest import tiny_bert_config

    from workbench import build_model

    teacher = build_model(tiny_bert_config(layers=1, hidden=32), tokenizer=minilm_path, normalize=True, seed=0,
                          device="cpu")
    static = distill_static(teacher, pca_dims=16, frequencies=["the cat sat on the mat"] * 3, progress=False)
    folder = static.save(tmp_path_factory.mktemp("static") / "model")
    return teacher, static, folder


def test_distilled_static_layout_and_rows(tiny_static):
    teacher, static, folder = tiny_static
    assert static.dim == 16 and static.normalizes and static.layers[0].vocab_size == len(teacher.tokenizer)
    modules = json.loads((folder / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[-1] for m in modules] == ["StaticEmbedding", "Normalize"]
    assert (folder / "0_StaticEmbedding" / "tokenizer.json").is_file()
    table = static.layers[0].embedding.weight.detach().numpy()
    tok = teacher.tokenizer
    assert not table[tok.cls_token_id].any() and not table[tok.pad_token_id].any()  # never in a text
    assert not table[tok.convert_tokens_to_ids("[unused5]")].any()
    assert table[tok.unk_token_id].any()  # unknown characters do occur
    again = load_model(folder)
    assert again.is_static and np.array_equal(again.encode(TEXTS), static.encode(TEXTS))


def test_static_folder_loads_in_sentence_transformers(tiny_static):
    from sentence_transformers import SentenceTransformer

    _, static, folder = tiny_static
    theirs = SentenceTransformer(str(folder), device="cpu")
    texts = [*TEXTS, "", "\u2603\u2603 \U0001f600"]  # empty, and characters the vocabulary lacks
    assert np.abs(theirs.encode(texts) - static.encode(texts)).max() <= 1e-5


def test_static_equals_model2vec_on_the_same_table(tiny_static):
    model2vec = pytest.importorskip("model2vec")
    _, static, _ = tiny_static
    module = static.layers[0]
    theirs = model2vec.StaticModel(module.embedding.weight.detach().numpy(), module.tokenizer.backend_tokenizer,
                                   normalize=True)
    # model2vec leaves unknown tokens out of the mean, sentence-transformers (and workbench, which follows
    # it so that SentenceTransformer(folder) agrees) averages the unknown token's vector in: compare on
    # texts whose tokens are all known.
    unk = module.tokenizer.unk_token_id
    texts = [t for t in TEXTS if unk not in module.tokenizer.ids([t])[0]]
    assert len(texts) == len(TEXTS) - 1
    assert np.abs(theirs.encode(texts) - static.encode(texts)).max() <= 1e-5


def test_token_probabilities_count_real_text(minilm_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(minilm_path))
    p = token_probabilities(tok, ["the cat", "the dog"], exclude=[tok.pad_token_id])
    the, cat, zebra = tok.convert_tokens_to_ids(["the", "cat", "zebra"])
    # add-one smoothing: counts 3 (the), 2 (cat), 1 (never seen) over the vocabulary
    assert p[the] / p[zebra] == pytest.approx(3.0) and p[cat] / p[zebra] == pytest.approx(2.0)
    assert p[tok.pad_token_id] == 0.0 and p.sum() == pytest.approx(1.0)


def test_static_model_trains_with_the_loop(tiny_static, tmp_path):
    from datasets import Dataset

    from workbench.losses import MultipleNegativesRankingLoss
    from workbench.training import TrainConfig, Trainer

    _, static, folder = tiny_static
    model = load_model(folder)
    before = model.layers[0].embedding.weight.detach().clone()
    pairs = Dataset.from_dict({"anchor": ["a dog runs", "a cat sleeps", "the sun is hot", "rain falls"],
                               "positive": ["a puppy is running", "a kitten naps", "it is warm out", "it is wet"]})
    config = TrainConfig(lr=0.05, batch_size=4, max_steps=6, warmup_ratio=0.0, eval_every=0)
    trainer = Trainer(model, MultipleNegativesRankingLoss(model), config, pairs, run_dir=tmp_path / "run")
    trainer.fit()
    after = model.layers[0].embedding.weight.detach()
    assert not torch.equal(before, after)
    saved = load_model(tmp_path / "run" / "model")
    assert saved.is_static and np.allclose(saved.encode(TEXTS), model.encode(TEXTS), atol=1e-6)


def test_static_refuses_onnx(tiny_static):
    _, _, folder = tiny_static
    with pytest.raises(ValueError, match="static model"):
        load_model(folder, backend="onnx")


# ----- the static recipe -------------------------------------------------------------------------
@pytest.mark.parametrize(("assignment", "message"), [
    ("student.keep_layers=[0]", "a static student is distilled from the teacher's vocabulary; remove keep_layers"),
    ('student.frequencies="often"', "frequencies = 'often': choose 'data'"),
    ("student.pca_dims=0", "pca_dims must be >= 1"),
    ("student.sif_coefficient=-1", "sif_coefficient must be > 0"),
])
def test_static_recipe_values_are_checked(assignment, message):
    from workbench.recipes import RecipeError, load_recipe

    with pytest.raises(RecipeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_recipe("offline-static", [assignment])
    with pytest.raises(RecipeError, match="apply to a static student only"):
        load_recipe("offline-a-distill", ["student.pca_dims=64"])


@pytest.mark.slow
def test_static_recipe_runs_both_steps(tmp_path, tiny_bert, data_dir):
    from sentence_transformers import SentenceTransformer

    from workbench.recipes import load_recipe, run_recipe

    teacher = tiny_bert(layers=1, normalize=True).save(tmp_path / "teacher")
    recipe = load_recipe("offline-static").with_(
        teacher={"model": str(teacher)}, data={"limit": 300}, eval={"mse_sentences": 40, "sts_test": False},
        train={"max_steps": 4, "eval_every": 2, "batch_size": 32})
    result = run_recipe(recipe, run_dir=tmp_path / "run")
    model = load_model(result.model_path)
    assert model.is_static and model.dim == 32  # the teacher's space: no PCA in this recipe
    info = json.loads((tmp_path / "run" / "config.json").read_text())
    assert info["static"]["frequencies"] == "counted on 260 training sentences" and info["static"]["pca_dims"] is None
    assert info["recipe"]["student"]["static"] is True
    theirs = SentenceTransformer(result.model_path, device="cpu")
    assert np.abs(theirs.encode(TEXTS) - model.encode(TEXTS)).max() <= 1e-5


def test_an_onnx_model_cannot_be_trained(tmp_path, tiny_bert):
    from workbench.losses import MultipleNegativesRankingLoss
    from workbench.training import TrainConfig, Trainer

    export_onnx(tiny_bert(layers=1), tmp_path / "m")
    model = load_model(tmp_path / "m", backend="onnx")
    with pytest.raises(TypeError, match="no weights to train; load it with backend='torch'"):
        Trainer(model, MultipleNegativesRankingLoss(model), TrainConfig(max_steps=1), {"anchor": ["a"], "positive": ["b"]})
    with pytest.raises(TypeError, match="saved by `workbench export`"):
        model.save(tmp_path / "again")
