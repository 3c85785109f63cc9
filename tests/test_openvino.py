"""The OpenVINO backend: export (fp32 IR, NNCF static int8), loading, precision, and errors.

References: the torch model itself (the fp32 IR run in f32 must give its embeddings within
1e-4) and STS-B test through the int8 IR (it must keep all-MiniLM-L6-v2's quality within 0.005,
the bar issue #13 sets for int8).
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
from workbench.export import ExportError, export_openvino
from workbench.models import ModelFileError
from workbench.models.openvino_backend import PRECISIONS, openvino_files

pytest.importorskip("openvino", reason="the openvino extra (pip install 'workbench[openvino]') is not installed")
pytest.importorskip("nncf", reason="the openvino extra (pip install 'workbench[openvino]') is not installed")

TEXTS = ["A man is playing a guitar.", "Someone plays an instrument on a stage, loudly and for a long time.",
         "The stock market fell.", "ok", "Ünïcödé café naïve façade ☃ 漢字"]
CALIBRATION = [f"sentence number {i} says something about {w}" for i, w in enumerate(["cats", "the sea", "music"] * 8)]
FP32 = "openvino/openvino_model.xml"
INT8 = "openvino/openvino_model_qint8_quantized.xml"


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_fp32_ir_equals_torch_and_int8_is_close(tmp_path, tiny_bert):
    model = tiny_bert(layers=2, dense=16, normalize=True)
    result = export_openvino(model, tmp_path / "out", quantize="int8", calibration=CALIBRATION)
    out = tmp_path / "out"
    assert result.backend == "openvino" and result.file == INT8 and result.precision in PRECISIONS
    assert openvino_files(out) == [FP32, INT8]
    for name in ("modules.json", "config.json", "model.safetensors", "tokenizer.json", "2_Dense/model.safetensors",
                 "openvino/openvino_model.bin", "openvino/openvino_model_qint8_quantized.bin"):
        assert (out / name).is_file(), name
    manifest = json.loads((out / "openvino" / "workbench_export.json").read_text())
    assert manifest["default"] == INT8
    assert manifest["files"][INT8]["calibration"] == {"sentences": len(CALIBRATION), "from": "the caller"}
    assert "backend='openvino'" in result.summary() and f"in {result.precision} where not int8" in result.summary()

    reference = load_model(out, device="cpu").encode(TEXTS)
    fp32 = load_model(out, backend="openvino", file_name=FP32, precision="f32")
    assert fp32.backend == "openvino" and fp32.transformer.precision == "f32"
    assert "OpenVinoTransformer(openvino/openvino_model.xml, precision=f32" in repr(fp32)
    got = fp32.encode(TEXTS)
    assert np.abs(got - reference).max() <= 1e-4
    # batching and length sorting in front of the runtime do not change results
    assert np.abs(fp32.encode(TEXTS, batch_size=1) - got).max() <= 1e-5

    int8_model = load_model(out, backend="openvino")  # the manifest's default: the int8 IR
    assert int8_model.transformer.file.name == Path(INT8).name
    int8 = int8_model.encode(TEXTS)
    assert int8.shape == reference.shape and np.abs(int8 - reference).max() > 1e-4  # really quantized
    assert _cos(int8, reference).min() > 0.8
    assert result.max_abs_diff > 1e-4 and 0.8 < result.min_cosine < 1.0  # the export reports int8's real difference
    # the ints in the IR: NNCF's FakeQuantize nodes are there
    assert "FakeQuantize" in (out / INT8).read_text(encoding="utf-8") or "FakeConvert" in (out / INT8).read_text(encoding="utf-8")


@pytest.mark.slow  # ≈ 75 s on 2 cores (export, NNCF calibration, STS-B test twice); CI runs the slow tests too
def test_minilm_int8_keeps_sts_b(tmp_path, minilm_path, stsb_dir):
    from workbench.data import load_stsb
    from workbench.evaluation import STSEvaluator

    result = export_openvino(minilm_path, tmp_path / "minilm", quantize="int8")
    info = json.loads((tmp_path / "minilm" / "openvino" / "workbench_export.json").read_text())["files"][INT8]
    assert info["calibration"] == {"sentences": 300, "from": "Wikipedia, misc and caption sentences (WORKBENCH_DATA)"}
    evaluator = STSEvaluator.from_dataset(load_stsb("test"), name="sts-test")
    torch_score = evaluator(load_model(minilm_path, device="cpu"))[evaluator.primary_metric]
    int8 = load_model(tmp_path / "minilm", backend="openvino")
    score = evaluator(int8)[evaluator.primary_metric]
    print(f"STS-B test: torch {torch_score:.4f}, OpenVINO int8 ({int8.transformer.precision}) {score:.4f}; "
          f"check sentences: max abs diff {result.max_abs_diff:.3f}, min cosine {result.min_cosine:.4f}")
    assert torch_score == pytest.approx(0.8203, abs=1e-3)
    assert score >= torch_score - 0.005
    assert result.min_cosine > 0.9


def test_openvino_errors(tmp_path, tiny_bert, monkeypatch):
    model = tiny_bert(layers=1)
    out = tmp_path / "m"
    export_openvino(model, out)
    assert openvino_files(out) == [FP32]
    with pytest.raises(FileExistsError, match="--overwrite"):
        export_openvino(model, out)
    with pytest.raises(ExportError, match="already runs an ONNX graph"):
        export_openvino(load_model(out, backend="openvino"), tmp_path / "again")
    with pytest.raises(ExportError, match="only 'int8'"):
        export_openvino(model, tmp_path / "int4", quantize="int4")
    with pytest.raises(ExportError, match="calibration= holds no sentences"):
        export_openvino(model, tmp_path / "empty", quantize="int8", calibration=["", "  "])
    with pytest.raises(ValueError, match="precision= is OpenVINO's"):
        load_model(out, backend="onnx", precision="f32")
    with pytest.raises(ValueError, match="choose one of f32, bf16, f16"):
        load_model(out, backend="openvino", precision="int4")
    with pytest.raises(ModelFileError, match="has no openvino/nope.xml; it has openvino/openvino_model.xml"):
        load_model(out, backend="openvino", file_name="nope.xml")
    with pytest.raises(ValueError, match="runs on the CPU"):
        load_model(out, backend="openvino", device="cuda")
    (out / "openvino" / "openvino_model.bin").unlink()
    with pytest.raises(ModelFileError, match="no weights file openvino_model.bin"):
        load_model(out, backend="openvino")
    with pytest.raises(ModelFileError, match="no OpenVINO model"):
        load_model(tiny_bert(layers=1).save(tmp_path / "plain"), backend="openvino")
    # an OpenVINO model is for encoding: no weights to train or save
    export_openvino(model, tmp_path / "t")
    ov_model = load_model(tmp_path / "t", backend="openvino")
    with pytest.raises(TypeError, match="saved by `workbench export`"):
        ov_model.save(tmp_path / "again")
    with pytest.raises(TypeError, match="keep_layers needs the torch weights"):
        ov_model.transformer.keep_layers([0])
    assert not list(tmp_path.glob(".int4*")) and not (tmp_path / "empty").exists()


def test_static_refuses_openvino(tmp_path):
    from test_backends import _tiny_static

    folder = _tiny_static().save(tmp_path / "static")
    with pytest.raises(ValueError, match="static model.*no OpenVINO model"):
        load_model(folder, backend="openvino")


def test_missing_openvino_names_the_extra(monkeypatch, tmp_path, tiny_bert):
    model = tiny_bert(layers=1)
    export_openvino(model, tmp_path / "m")
    hide_modules(monkeypatch, "openvino")
    with pytest.raises(ImportError, match=r"pip install 'workbench\[openvino\]'"):
        export_openvino(model, tmp_path / "x")
    with pytest.raises(ImportError, match=r"pip install 'workbench\[openvino\]'"):
        load_model(tmp_path / "m", backend="openvino")


def test_threads_follow_torch(tmp_path, tiny_bert):
    export_openvino(tiny_bert(layers=1), tmp_path / "m")
    model = load_model(tmp_path / "m", backend="openvino")
    assert int(model.transformer.compiled.get_property("INFERENCE_NUM_THREADS")) == torch.get_num_threads()
    threads, seen = torch.get_num_threads(), []
    forward = model.transformer.forward

    def spy(features):
        seen.append(torch.get_num_threads())
        return forward(features)

    model.transformer.forward = spy
    model.encode(TEXTS, batch_size=2)
    # torch runs single-threaded beside OpenVINO's own threads, then is restored
    assert seen and set(seen) == {1} and torch.get_num_threads() == threads
    with pytest.raises(ValueError, match="OpenVINO-backed model encodes on the CPU"):
        model.encode(TEXTS, device="cuda")


def test_cli_export_and_encode(tmp_path, tiny_bert):
    src = tiny_bert(layers=1).save(tmp_path / "src")
    run = [sys.executable, "-m", "workbench"]
    done = subprocess.run([*run, "export", str(src), "--backend", "openvino", "--out", str(tmp_path / "x")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "OpenVINO conversion" in done.stdout and "backend='openvino'" in done.stdout
    enc = subprocess.run([*run, "encode", "hello", "world", "--model", str(tmp_path / "x"), "--backend", "openvino",
                          "--out", str(tmp_path / "e.npy")], capture_output=True, text=True, timeout=300)
    assert enc.returncode == 0, enc.stderr
    got = np.load(tmp_path / "e.npy")
    assert np.allclose(got, load_model(tmp_path / "x", backend="openvino").encode(["hello", "world"]), atol=1e-6)
    bad = subprocess.run([*run, "export", str(src), "--backend", "openvino", "--optimize", "O3", "--out",
                          str(tmp_path / "y")], capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "OpenVINO optimizes when it loads" in bad.stderr
    wrong = subprocess.run([*run, "encode", "hi", "--model", str(tmp_path / "x"), "--openvino-file", FP32],
                           capture_output=True, text=True, timeout=300)
    assert wrong.returncode != 0 and "use it with --backend openvino" in wrong.stderr


@pytest.mark.parametrize(("preset", "graph"), [("int8", "onnx/model_O3_qint8_"), ("openvino-int8", INT8)])
def test_train_export_presets_add_what_they_name(preset, graph, tmp_path, tiny_bert, capsys):
    """`workbench train/distill --export PRESET` exports the run's model folder in place, as the preset says."""
    from types import SimpleNamespace

    from workbench.cli import EXPORT_PRESETS, _export_run_model

    folder = tiny_bert(layers=1, normalize=True).save(tmp_path / "run" / "model")
    before = load_model(folder, device="cpu").encode(TEXTS)
    _export_run_model(SimpleNamespace(model_path=folder, metrics={}), preset, SimpleNamespace(eval=SimpleNamespace(sts_test=False)))
    backend, _, quantize = EXPORT_PRESETS[preset]
    exported = load_model(folder, backend=backend)
    assert f"{exported.transformer.file.parent.name}/{exported.transformer.file.name}".startswith(graph)
    assert quantize == "int8" and f"exporting the model ({preset})" in capsys.readouterr().out
    # the torch weights are still there and unchanged; the exported model encodes close to them
    assert np.abs(load_model(folder, device="cpu").encode(TEXTS) - before).max() <= 1e-6
    assert _cos(exported.encode(TEXTS), before).min() > 0.8
