"""Export a model for fast CPU encoding: its transformer as an ONNX graph, optionally optimized and int8.

The exported folder is the model's complete sentence-transformers folder plus graphs under
``onnx/``, named as sentence-transformers names them, so both libraries load the same file::

    workbench export all-MiniLM-L6-v2 --backend onnx --quantize int8 --out minilm-onnx
    load_model("minilm-onnx", backend="onnx")                        # the graph made last
    SentenceTransformer("minilm-onnx", backend="onnx",
                        model_kwargs={"file_name": "onnx/model_qint8_avx2.onnx"})

The graph is made by ``torch.onnx.export`` from the folder's own weights; optimization uses
onnxruntime's transformer optimizer at the levels optimum defines (O1: basic graph
optimizations; O2: plus attention/LayerNorm/GELU fusions; O3: O2 with the fast GELU
approximation; O4: O3 in fp16, GPU only); int8 is onnxruntime's dynamic quantization with the
settings optimum picks for this CPU's instruction set (VNNI, AVX-512, AVX2 or ARM64). Pooling,
Dense and Normalize are not in the graph: they run in torch, as before.
"""

from __future__ import annotations

import os
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench.models.onnx_backend import ONNX_FOLDER, cpu_isa, require_onnxruntime, write_manifest

OPTIMIZE_LEVELS = ("O1", "O2", "O3", "O4")
QUANTIZE = ("int8",)
# A few sentences that the export checks its graph on (short, long, with padding in one batch).
_CHECK_TEXTS = [
    "A man is playing a guitar.",
    "The quick brown fox jumps over the lazy dog, and then it runs far away into the forest to hide.",
    "ok",
    "Sentence embeddings map texts to vectors whose cosine says how alike the texts are.",
]


class ExportError(RuntimeError):
    """The model cannot be exported as asked; the message names the module or setting."""


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_onnx` wrote and checked.

    Attributes:
        folder: the exported sentence-transformers folder.
        file: the graph made last, relative to the folder (``onnx/model_qint8_avx2.onnx``); what
            ``load_model(folder, backend="onnx")`` runs by default.
        files: every graph written, with how it was made.
        isa: the instruction set int8 was quantized for (``None`` without ``--quantize``).
        max_abs_diff: the largest difference between the final graph's and torch's sentence
            embeddings on a few check sentences.
        min_cosine: the smallest cosine between them (int8 changes the numbers; this says how much).
        notes: things the user should know (a CPU without VNNI, for instance).
        backend: what runs the files, ``"onnx"`` (onnxruntime) or ``"openvino"``.
        precision: for OpenVINO, the precision it computes in on this CPU besides int8 (``bf16``
            where the CPU has bf16 units, else ``f32``).
    """

    folder: Path
    file: str
    files: dict[str, dict[str, Any]]
    isa: str | None
    max_abs_diff: float
    min_cosine: float
    seconds: float
    notes: tuple[str, ...] = field(default=())
    backend: str = "onnx"
    precision: str | None = None

    def summary(self) -> str:
        lines = [f"exported {self.folder} ({self.seconds:.0f} s)"]
        for name, info in self.files.items():
            file = self.folder / name
            weights = file.with_suffix(".bin") if file.suffix == ".xml" else None  # an OpenVINO IR's weights
            size = (file.stat().st_size + (weights.stat().st_size if weights and weights.is_file() else 0)) / 2**20
            lines.append(f"  {name}: {info['made']} ({size:.1f} MiB)")
        lines.append(f"  check against torch on {len(_CHECK_TEXTS)} sentences: max abs diff {self.max_abs_diff:.1e}, "
                     f"min cosine {self.min_cosine:.5f}")
        lines.extend(f"  note: {n}" for n in self.notes)
        runs = f" in {self.precision} where not int8 (OpenVINO's choice for this CPU)" if self.precision else ""
        lines.append(f"  load it: load_model({str(self.folder)!r}, backend={self.backend!r})  # runs {self.file}{runs}")
        return "\n".join(lines)


def quantization_settings(isa: str) -> dict[str, Any]:
    """The dynamic-quantization settings for a CPU's instruction set.

    Weights are symmetric int8 per channel, activations unsigned (uint8 x int8 products), as
    optimum's ``AutoQuantizationConfig`` does for ARM64, AVX-512 and VNNI. On AVX2 and on
    AVX-512 without VNNI the uint8 x int8 product can saturate, so weights use 7 bits
    (``reduce_range``, onnxruntime's advice for those CPUs). optimum's avx2 config uses uint8
    weights instead; measured here (2-core AMD EPYC, AVX2) that graph was 1.6x slower than
    int8 weights at the same STS-B test score (0.8185 vs 0.8182), so workbench does not follow it.
    The file suffix follows sentence-transformers: ``<weight dtype>_<isa>``.

    Example:
        >>> quantization_settings("avx2")["suffix"], quantization_settings("avx512_vnni")["reduce_range"]
        ('qint8_avx2', False)
    """
    if isa not in ("arm64", "avx2", "avx512", "avx512_vnni"):
        raise ValueError(f"no int8 settings for {isa!r}; choose arm64, avx2, avx512 or avx512_vnni")
    return {"weights": "QInt8", "per_channel": True, "reduce_range": isa in ("avx2", "avx512"),
            "suffix": f"qint8_{isa}"}


def export_onnx(
    model: Any,
    out: str | os.PathLike[str],
    optimize: str | None = None,
    quantize: str | None = None,
    isa: str | None = None,
    overwrite: bool = False,
    opset: int = 17,
    log: Callable[[str], None] | None = None,
) -> ExportResult:
    """Export a model's transformer to ONNX under ``out/onnx/``, next to a full copy of the model folder.

    Args:
        model: a model folder, a name (``"all-MiniLM-L6-v2"``) or a workbench ``EmbeddingModel``
            (saved first, so pruned or freshly trained students export as they are in memory).
        out: the folder to write (refused if it exists, unless ``overwrite``).
        optimize: ``"O1"``..``"O4"`` (see the module docstring); ``None`` for the plain graph.
        quantize: ``"int8"`` for dynamic int8 quantization of the final graph.
        isa: the instruction set to quantize for; by default this CPU's (:func:`cpu_isa`).
        overwrite: replace ``out`` if it exists.
        opset: the ONNX opset.
        log: called with a line per step (the CLI prints them).

    Returns:
        An :class:`ExportResult`; ``load_model(out, backend="onnx")`` runs ``result.file``.

    Raises:
        ImportError: onnx/onnxruntime are not installed (names the extra).
        ExportError: the model has a module that cannot be exported, or an unknown option.
    """
    import torch

    from workbench.atomic import apply_umask, replace_dir, temp_dir
    from workbench.models import load_model

    say = log or (lambda line: None)
    if optimize is not None and optimize not in OPTIMIZE_LEVELS:
        raise ExportError(f"optimize={optimize!r}: choose one of {', '.join(OPTIMIZE_LEVELS)}")
    if quantize is not None and quantize not in QUANTIZE:
        raise ExportError(f"quantize={quantize!r}: only 'int8' is supported")
    if optimize == "O4" and not torch.cuda.is_available():
        raise ExportError("optimize='O4' converts the graph to fp16, which only pays off on a GPU; use O3 on a CPU")
    require_onnxruntime()
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ImportError("exporting needs onnx: pip install 'workbench[onnx]' (or pip install onnx onnxruntime)") from None
    notes: list[str] = []
    if quantize:
        isa = isa or cpu_isa()
        if isa == "none":
            raise ExportError("this CPU has no AVX2, so int8 would be slower than fp32; export without quantize")
        if isa == "avx2":
            notes.append("this CPU has no AVX-512 VNNI: int8 uses the AVX2 path (7-bit weights against "
                         "saturation); expect a smaller gain than on a VNNI CPU")
        settings = quantization_settings(isa)

    start = time.perf_counter()
    out, source = _source(model, out, overwrite)
    tmp = temp_dir(out)
    try:
        fresh = _save_copy(source, tmp, say)
        graphs = tmp / ONNX_FOLDER
        graphs.mkdir()
        say(f"exporting {type(fresh.auto_model).__name__} ({fresh.auto_model.config.num_hidden_layers} layers) "
            f"with torch.onnx.export (opset {opset})")
        _export_transformer(fresh, graphs / "model.onnx", opset)
        files: dict[str, dict[str, Any]] = {f"{ONNX_FOLDER}/model.onnx": {"made": "torch.onnx.export, fp32"}}
        current = graphs / "model.onnx"
        if optimize:
            say(f"optimizing ({optimize}) with onnxruntime's transformer optimizer")
            target = graphs / f"model_{optimize}.onnx"
            _optimize(current, target, optimize, fresh.auto_model.config)
            files[f"{ONNX_FOLDER}/{target.name}"] = {"made": f"{optimize} optimization of model.onnx",
                                                     "optimize": optimize}
            current = target
        if quantize:
            stem = current.stem
            target = graphs / f"{stem}_{settings['suffix']}.onnx"
            bits = "7-bit" if settings["reduce_range"] else "8-bit"
            say(f"quantizing {current.name} to int8 for {isa} (dynamic, {bits} int8 weights per channel)")
            _quantize(current, target, settings)
            files[f"{ONNX_FOLDER}/{target.name}"] = {
                "made": f"dynamic int8 quantization of {current.name} for {isa}", "quantize": "int8", "isa": isa,
                **{k: v for k, v in settings.items() if k != "suffix"}}
            current = target
        final = f"{ONNX_FOLDER}/{current.name}"
        write_manifest(graphs, final, files)
        say(f"checking {final} against torch")
        diff, cos = _compare(load_model(tmp, device="cpu"), load_model(tmp, backend="onnx", file_name=final))
        if not quantize and diff > 1e-4:
            raise ExportError(f"the exported graph differs from torch by {diff:.1e} (> 1e-4) on the check sentences; "
                              "this is an exporter bug for this architecture: please report it")
        apply_umask(tmp)
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportResult(out, final, files, isa if quantize else None, diff, cos, time.perf_counter() - start, tuple(notes))


def export_openvino(
    model: Any,
    out: str | os.PathLike[str],
    quantize: str | None = None,
    calibration: list[str] | None = None,
    overwrite: bool = False,
    opset: int = 17,
    log: Callable[[str], None] | None = None,
) -> ExportResult:
    """Export a model's transformer as an OpenVINO IR under ``out/openvino/``, next to a full copy of the folder.

    The IR is converted by OpenVINO from the same ``torch.onnx.export`` graph as :func:`export_onnx`
    (kept in fp32: ``openvino/openvino_model.xml``). With ``quantize="int8"`` NNCF quantizes it
    statically (post-training, with SmoothQuant for transformers), calibrating activation ranges on
    ``calibration`` sentences, into ``openvino/openvino_model_qint8_quantized.xml``: the name
    sentence-transformers' ``export_static_quantized_openvino_model`` gives it, so
    ``SentenceTransformer(out, backend="openvino", model_kwargs={"file_name": ...})`` finds it.

    Args:
        model: a model folder, a name or an ``EmbeddingModel`` (as for :func:`export_onnx`).
        out: the folder to write (refused if it exists, unless ``overwrite``).
        quantize: ``"int8"`` for NNCF's static int8 quantization; ``None`` for the fp32 IR only.
        calibration: the sentences that set the int8 activation ranges; by default 300 general
            English sentences (``workbench.data.load_sentences``: Wikipedia, misc, captions; the
            built-in sample where ``WORKBENCH_DATA`` is not set). Never the sentences you evaluate on.
        overwrite, opset, log: as for :func:`export_onnx`.

    Returns:
        An :class:`ExportResult` (``backend="openvino"``, with the precision OpenVINO runs in here).

    Raises:
        ImportError: openvino (or, for int8, nncf) is not installed (names the extra).
        ExportError: the model has a module that cannot be exported, or an unknown option.
    """
    import tempfile

    from workbench.atomic import apply_umask, replace_dir, temp_dir
    from workbench.models import load_model
    from workbench.models.openvino_backend import OPENVINO_FOLDER, default_precision, require_openvino

    say = log or (lambda line: None)
    if quantize is not None and quantize not in QUANTIZE:
        raise ExportError(f"quantize={quantize!r}: only 'int8' is supported")
    ov = require_openvino()
    try:
        import onnx  # noqa: F401 - torch.onnx.export writes through it
    except ImportError:
        raise ImportError("exporting needs onnx: pip install 'workbench[openvino]' (or pip install onnx openvino nncf)") from None
    if quantize:
        try:
            import nncf
        except ImportError:
            raise ImportError("int8 for OpenVINO needs nncf: pip install 'workbench[openvino]' (or pip install nncf)") from None
    if calibration is not None and not [t for t in calibration if isinstance(t, str) and t.strip()]:
        raise ExportError("calibration= holds no sentences; give some, or None for the default set")
    start = time.perf_counter()
    out, source = _source(model, out, overwrite)
    tmp = temp_dir(out)
    try:
        fresh = _save_copy(source, tmp, say)
        folder = tmp / OPENVINO_FOLDER
        folder.mkdir()
        with tempfile.TemporaryDirectory(dir=tmp) as scratch:
            say(f"exporting {type(fresh.auto_model).__name__} ({fresh.auto_model.config.num_hidden_layers} layers) "
                f"with torch.onnx.export (opset {opset}) and converting it with OpenVINO {ov.__version__.split('-')[0]}")
            _export_transformer(fresh, Path(scratch) / "model.onnx", opset)
            graph = ov.convert_model(str(Path(scratch) / "model.onnx"))
        ov.save_model(graph, str(folder / "openvino_model.xml"), compress_to_fp16=False)
        files: dict[str, dict[str, Any]] = {f"{OPENVINO_FOLDER}/openvino_model.xml":
                                            {"made": "OpenVINO conversion of the torch.onnx.export graph, fp32"}}
        final = f"{OPENVINO_FOLDER}/openvino_model.xml"
        if quantize:
            texts, where = _calibration_texts(calibration)
            batches = _calibration_batches(fresh, texts)
            say(f"quantizing to int8 with NNCF {nncf.__version__} (static, SmoothQuant; calibrated on {len(texts)} "
                f"sentences from {where})")
            quantized = nncf.quantize(graph, nncf.Dataset(batches), model_type=nncf.ModelType.TRANSFORMER,
                                      subset_size=len(batches))
            final = f"{OPENVINO_FOLDER}/openvino_model_qint8_quantized.xml"
            ov.save_model(quantized, str(tmp / final), compress_to_fp16=False)
            files[final] = {"made": f"NNCF static int8 quantization of openvino_model.xml, calibrated on "
                                    f"{len(texts)} sentences from {where}", "quantize": "int8",
                            "calibration": {"sentences": len(texts), "from": where}}
        write_manifest(folder, final, files)
        say(f"checking {final} against torch")
        # The fp32 IR is checked in fp32 (is the conversion right?); the int8 one as it runs by default.
        runner = load_model(tmp, backend="openvino", file_name=final, precision=None if quantize else "f32")
        diff, cos = _compare(load_model(tmp, device="cpu"), runner)
        if not quantize and diff > 1e-4:
            raise ExportError(f"the OpenVINO model differs from torch by {diff:.1e} (> 1e-4) on the check sentences in "
                              "fp32; this is a converter bug for this architecture: please report it")
        precision = runner.transformer.precision if quantize else default_precision()
        apply_umask(tmp)
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportResult(out, final, files, cpu_isa() if quantize else None, diff, cos, time.perf_counter() - start,
                        backend="openvino", precision=precision)


def _source(model: Any, out: str | os.PathLike[str], overwrite: bool) -> tuple[Path, Any]:
    """The output folder (refused if it exists, unless ``overwrite``) and the model to export, checked."""
    from workbench.models import EmbeddingModel, load_model

    out = Path(out).expanduser()
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; choose another --out or pass --overwrite to replace it")
    source = model if isinstance(model, EmbeddingModel) else load_model(model, device="cpu")
    _check_exportable(source)
    return out, source


def _save_copy(source: Any, tmp: Path, say: Callable[[str], None]) -> Any:
    """Save ``source`` as a folder in ``tmp`` and load its transformer afresh from the saved files:
    exporting must not touch the caller's model, and the graph must be exactly what the folder holds."""
    from workbench.models import Transformer

    say(f"saving the model folder ({source.source or 'in memory'})")
    source.save(tmp, card=_card(source))
    return Transformer.load(tmp, max_seq_length=source.max_seq_length)


def _calibration_texts(texts: list[str] | None) -> tuple[list[str], str]:
    """The sentences int8 calibration runs on, and where they came from."""
    if texts is not None:
        return [t for t in texts if isinstance(t, str) and t.strip()], "the caller"
    from workbench.data import SampleDataWarning, load_sentences, source

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SampleDataWarning)  # said below, as where the sentences came from
        ds = load_sentences(["wikipedia", "misc", "captions"], limit=300, seed=0)
    where = source(ds)
    kind = {"sample": "the built-in sample", "hub": "the hub", "file": "WORKBENCH_DATA"}.get(where.kind, where.kind)
    return list(ds["sentence"]), f"Wikipedia, misc and caption sentences ({kind})"


def _calibration_batches(transformer: Any, texts: list[str], batch_size: int = 16) -> list[dict[str, np.ndarray]]:
    """Tokenized batches of similar length (as encode makes them), as the IR's inputs."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    names = [n for n in transformer.tokenizer.model_input_names if n in ("input_ids", "attention_mask", "token_type_ids")]
    batches = []
    for i in range(0, len(order), batch_size):
        features = transformer.tokenize([texts[j] for j in order[i:i + batch_size]])
        batches.append({n: features[n].numpy().astype(np.int64) if n in features
                        else np.zeros(tuple(features["input_ids"].shape), dtype=np.int64) for n in names})
    return batches


def _check_exportable(model: Any) -> None:
    from workbench.models import Dense, Normalize, Pooling, Transformer
    from workbench.models.onnx_backend import OnnxTransformer

    first = model.layers[0]
    if isinstance(first, OnnxTransformer):
        raise ExportError("this model already runs an ONNX graph; export the torch model (load it with backend='torch')")
    if not isinstance(first, Transformer):
        raise ExportError(f"the {type(first).__name__} module has no transformer to export to ONNX; "
                          "it already encodes without one")
    for module in model.layers[1:]:
        if not isinstance(module, (Pooling, Dense, Normalize)):
            raise ExportError(f"the {type(module).__name__} module cannot run after an ONNX transformer "
                              "(exportable chains: Transformer, Pooling, Dense, Normalize)")


def _export_transformer(transformer: Any, file: Path, opset: int) -> None:
    import torch

    auto = transformer.auto_model.eval()
    # Eager attention traces to the plain MatMul/Softmax pattern that onnxruntime's optimizer fuses into one
    # Attention node (QAttention after int8); the SDPA trace adds masking ops that block the fusion. The
    # arithmetic is the same, and the check against torch after export holds the graph to it.
    _use_eager_attention(auto)
    names = [n for n in transformer.tokenizer.model_input_names if n in ("input_ids", "attention_mask", "token_type_ids")]

    class Graph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.auto = auto

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.auto(**dict(zip(names, inputs, strict=True)), return_dict=True).last_hidden_state

    example = transformer.tokenize(_CHECK_TEXTS[:2])
    args = tuple(example[n] for n in names)
    axes = {n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]}
    try:
        # The tracer's warnings are about branches on shapes (padding, causal masks) that do not vary
        # for an encoder; the check against torch after export is what says the graph is right.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                torch.onnx.export(Graph(), args, str(file), input_names=names, output_names=["last_hidden_state"],
                                  dynamic_axes=axes, opset_version=opset, dynamo=False)
            except TypeError:  # a torch without the TorchScript exporter's dynamo= switch
                torch.onnx.export(Graph(), args, str(file), input_names=names, output_names=["last_hidden_state"],
                                  dynamic_axes=axes, opset_version=opset)
    except Exception as err:  # noqa: BLE001 - the exporter raises many types
        first = str(err).strip().splitlines()[0][:300] if str(err).strip() else ""
        raise ExportError(f"the Transformer module ({type(auto).__name__}) could not be exported to ONNX: "
                          f"{type(err).__name__}: {first}") from err


def _use_eager_attention(auto: Any) -> None:
    """Switch a (freshly loaded, export-only) transformers model to eager attention, where it has a switch."""
    setter = getattr(auto, "set_attn_implementation", None)
    if callable(setter):
        try:
            setter("eager")
        except (ValueError, TypeError, AttributeError):  # an architecture without the eager path: keep its own
            pass
        return
    config = getattr(auto, "config", None)
    if config is not None and hasattr(config, "_attn_implementation"):
        config._attn_implementation = "eager"


def _optimize(source: Path, target: Path, level: str, config: Any) -> None:
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    model_type = getattr(config, "model_type", "bert")
    # onnxruntime's fusions for the BERT family (its "bert" optimizer covers these encoders' graphs)
    known = {"bert", "roberta", "xlm-roberta", "mpnet", "electra", "camembert"}
    ort_type = "bert"
    if model_type not in known:
        raise ExportError(f"optimize={level!r} knows BERT-like encoders; this model is {model_type!r}. Export without --optimize")
    options = FusionOptions(ort_type)
    options.enable_gelu_approximation = level in ("O3", "O4")
    # SkipLayerNormalization (Add + LayerNorm in one node) measured 4x slower on CPU than the two nodes it
    # replaces (onnxruntime 1.32, 2 threads, short sentences), so the CPU levels leave them apart.
    options.enable_skip_layer_norm = level == "O4"
    # The heads and width come from the config: onnxruntime's guess from the graph fails on these exports,
    # and then the attention is left unfused (Softmax, Transpose and masking ops as separate nodes).
    heads, hidden = int(getattr(config, "num_attention_heads", 0) or 0), int(getattr(config, "hidden_size", 0) or 0)
    optimized = optimize_model(str(source), model_type=ort_type, num_heads=heads, hidden_size=hidden,
                               opt_level=1 if level == "O1" else 2, optimization_options=options,
                               use_gpu=level == "O4", only_onnxruntime=level == "O1")
    if level == "O4":
        optimized.convert_float_to_float16(keep_io_types=True)
    optimized.save_model_to_file(str(target))


def _quantize(source: Path, target: Path, settings: dict[str, Any]) -> None:
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # onnxruntime logs advice meant for static quantization, which this is not
    try:
        quantize_dynamic(
            str(source), str(target),
            per_channel=settings["per_channel"], reduce_range=settings["reduce_range"],
            weight_type=getattr(QuantType, settings["weights"]),
            # DefaultTensorType: fused nodes (com.microsoft ops in an optimized graph) escape shape inference
            extra_options={"WeightSymmetric": True, "ActivationSymmetric": False,
                           "DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        root.setLevel(level)


def _compare(torch_model: Any, onnx_model: Any) -> tuple[float, float]:
    a = torch_model.encode(_CHECK_TEXTS, progress=False, device="cpu")
    b = onnx_model.encode(_CHECK_TEXTS, progress=False)
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return float(np.abs(a - b).max()), float(cos.min())


def _card(model: Any) -> str | None:
    """The source folder's model card, kept as it is; None (a minimal card) for a model built in memory."""
    from workbench.models import resolve_model_path

    try:
        folder = resolve_model_path(model.source) if model.source else None
    except Exception:  # noqa: BLE001 - not a folder or a known name: the minimal card
        return None
    card = folder / "README.md" if folder is not None else None
    return card.read_text(encoding="utf-8") if card is not None and card.is_file() else None
