"""The transformer block run by onnxruntime: same tokenizer, same inputs, same token embeddings.

An exported model folder keeps its sentence-transformers layout and adds graphs under
``onnx/`` named as sentence-transformers names them (``model.onnx``, ``model_O3.onnx``,
``model_qint8_avx2.onnx``...). :class:`OnnxTransformer` stands in for :class:`Transformer`
at the head of the chain: texts are tokenized, sorted and batched by workbench exactly as for
torch, only the transformer's forward pass runs in onnxruntime; Pooling, Dense and Normalize
run as before.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.models.files import ModelFileError, _inside, check_folder, read_json
from workbench.models.transformer import Transformer

ONNX_FOLDER = "onnx"
CPU_DISABLED_FUSIONS = ["SkipLayerNormFusion"]  # see OnnxTransformer
MANIFEST = "workbench_export.json"  # which file `workbench export` made last, and how


def require_onnxruntime() -> Any:
    """``import onnxruntime``, or one line naming the extra that installs it."""
    try:
        import onnxruntime
    except ImportError:
        raise ImportError(
            "the ONNX backend needs onnxruntime: pip install 'workbench[onnx]' (or pip install onnxruntime onnx)"
        ) from None
    return onnxruntime


def cpu_isa() -> str:
    """The best int8 instruction set of this CPU, as sentence-transformers names its quantization configs.

    One of ``"arm64"``, ``"avx512_vnni"``, ``"avx512"``, ``"avx2"``; ``"none"`` for an x86 CPU
    without AVX2 (int8 then gains nothing). Read from ``/proc/cpuinfo`` on Linux; elsewhere
    from the machine name (an Apple or ARM CPU: arm64; other x86: avx2).

    Example:
        >>> cpu_isa() in ("arm64", "avx512_vnni", "avx512", "avx2", "none")
        True
    """
    machine = platform.machine().lower()
    if machine in ("arm64", "aarch64"):
        return "arm64"
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        return "avx2"
    if not flags:
        return "avx2"
    if "avx512f" in flags and ("avx512_vnni" in flags or "avx512vnni" in flags):
        return "avx512_vnni"
    if {"avx512f", "avx512bw"} <= flags:
        return "avx512"
    if "avx2" in flags:
        return "avx2"
    return "none"


def onnx_files(path: str | os.PathLike[str]) -> list[str]:
    """The graphs under ``path/onnx/``, as ``onnx/<file>`` (what ``file_name=`` takes)."""
    folder = Path(path) / ONNX_FOLDER
    return sorted(f"{ONNX_FOLDER}/{p.name}" for p in folder.glob("*.onnx")) if folder.is_dir() else []


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    file = Path(path) / ONNX_FOLDER / MANIFEST
    if not file.is_file():
        return {}
    data = read_json(file)
    return data if isinstance(data, dict) else {}


def pick_onnx_file(path: Path, file_name: str | None) -> Path:
    """The graph to run: ``file_name`` if given, else the one ``workbench export`` made last, else ``onnx/model.onnx``."""
    return pick_exported_file(path, file_name, ONNX_FOLDER, onnx_files(path), read_manifest(path).get("default"),
                              "model.onnx", ("ONNX graph", "ONNX graphs"), "onnx")


def pick_exported_file(path: Path, file_name: str | None, folder: str, files: list[str], made_last: Any,
                       default: str, what: tuple[str, str], backend: str) -> Path:
    """Which of an exported folder's ``files`` (under ``folder/``) to run; shared by the ONNX and OpenVINO backends.

    ``file_name`` if given (with or without the folder), else ``made_last`` (the manifest's
    default) when present, else ``folder/default``, else the only file; ``what`` names one and
    several of them in messages, ``backend`` the export that makes one.
    """
    if file_name is None:
        if isinstance(made_last, str) and made_last in files:
            file_name = made_last
        elif f"{folder}/{default}" in files:
            file_name = f"{folder}/{default}"
        elif len(files) == 1:
            file_name = files[0]
        elif not files:
            raise ModelFileError(f"{path} has no {what[0]} ({folder}/*{Path(default).suffix}); make one with "
                                 f"`workbench export {path} --backend {backend} --out DIR`")
        else:
            raise ModelFileError(f"{path} has several {what[1]} ({', '.join(files)}); say which with file_name=")
    name = file_name if "/" in file_name else f"{folder}/{file_name}"
    file = _inside(path, name)
    if not file.is_file():
        raise ModelFileError(f"{path} has no {name}; it has {', '.join(files) or 'no ' + what[1]}")
    return file


class OnnxTransformer(Transformer):
    """A :class:`Transformer` whose forward pass runs an ONNX graph in onnxruntime (CPU).

    It keeps the tokenizer, ``max_seq_length`` and ``do_lower_case`` of the folder's transformer
    and gives the same ``token_embeddings``; it has no torch weights, so it cannot be trained.

    Args:
        file: the ``.onnx`` graph (inputs ``input_ids``, ``attention_mask`` [, ``token_type_ids``];
            output ``last_hidden_state``).
        tokenizer: the folder's tokenizer.
        config: the folder's transformers config (for ``dim``).
        max_seq_length, do_lower_case: as for :class:`Transformer`.
        threads: onnxruntime's intra-op threads (default: torch's thread count).
    """

    def __init__(self, file: Path, tokenizer: Any, config: Any, max_seq_length: int = 256,
                 do_lower_case: bool = False, threads: int | None = None):
        ort = require_onnxruntime()
        self._keep(file, tokenizer, config, max_seq_length, do_lower_case)
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads or torch.get_num_threads())
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            # onnxruntime's own SkipLayerNorm fusion at load time is left out for the same reason as in
            # workbench.export._optimize: on CPU the fused node is several times slower than Add + LayerNorm.
            self.session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"],
                                                disabled_optimizers=CPU_DISABLED_FUSIONS)
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own exception types for bad graphs
            raise ModelFileError(f"{file} cannot be loaded by onnxruntime ({type(err).__name__}: "
                                 f"{str(err).splitlines()[0][:200]}); export the model again") from None
        self._use_io([i.name for i in self.session.get_inputs()], [o.name for o in self.session.get_outputs()], "graph")

    def _keep(self, file: Path, tokenizer: Any, config: Any, max_seq_length: int, do_lower_case: bool) -> None:
        """What every runtime-backed transformer keeps of its folder (before the runtime loads the file)."""
        torch.nn.Module.__init__(self)
        self.tokenizer = tokenizer
        self.max_seq_length = int(max_seq_length)
        self.do_lower_case = bool(do_lower_case)
        self.config = config
        self.file = Path(file)

    def _use_io(self, inputs: list[str], outputs: list[str], what: str) -> None:
        """Check the loaded file's input and output names, and keep the ones encoding uses."""
        if "last_hidden_state" not in outputs and "token_embeddings" not in outputs:
            raise ModelFileError(f"{self.file} has outputs {outputs}; a sentence-embedding {what} gives last_hidden_state")
        self.output_name = "last_hidden_state" if "last_hidden_state" in outputs else "token_embeddings"
        unknown = [n for n in inputs if n not in ("input_ids", "attention_mask", "token_type_ids")]
        if unknown:
            raise ModelFileError(f"{self.file} takes inputs {unknown} that a text tokenizer does not give")
        self.input_names = inputs

    @property
    def dim(self) -> int:
        return int(self.config.hidden_size)

    @property
    def auto_model(self) -> Any:  # what repr and cards read
        return _ConfigOnly(self.config)

    def feeds(self, features: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        """The runtime's inputs: int64 arrays for the graph's input names."""
        feeds = {}
        for name in self.input_names:
            value = features.get(name)
            if value is None:  # token_type_ids the tokenizer did not give: all zeros, as BERT assumes
                value = torch.zeros_like(features["input_ids"])
            feeds[name] = np.ascontiguousarray(value.detach().cpu().numpy().astype(np.int64, copy=False))
        return feeds

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        (out,) = self.session.run([self.output_name], self.feeds(features))
        features["token_embeddings"] = torch.from_numpy(out)
        return features

    def save(self, path: Path) -> None:
        raise TypeError("an ONNX-backed model is saved by `workbench export`; load it with backend='torch' to save it")

    def keep_layers(self, layers: list[int]) -> None:
        raise TypeError("keep_layers needs the torch weights: load the model with backend='torch', prune, then export")

    @staticmethod
    def pick_file(path: Path, file_name: str | None) -> Path:
        return pick_onnx_file(path, file_name)

    @classmethod
    def load_folder(cls, path: Path, file_name: str | None = None, max_seq_length: int | None = None,
                    threads: int | None = None, graphs: Path | None = None, **runtime: Any) -> OnnxTransformer:
        """The ONNX (or, for the subclass, OpenVINO) transformer of a transformer folder (the one holding
        config.json and the tokenizer).

        ``graphs`` is the folder whose ``onnx/`` (``openvino/``) holds the files (``path`` by default);
        ``runtime`` goes to the constructor (OpenVINO's ``precision``).
        """
        from transformers import AutoConfig, AutoTokenizer

        from workbench.models.transformer import folder_settings

        check_folder(path)
        file = cls.pick_file(graphs or path, file_name)
        config = AutoConfig.from_pretrained(str(path))
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        max_seq_length, do_lower_case = folder_settings(path, config, tokenizer, max_seq_length)
        return cls(file, tokenizer, config, max_seq_length, do_lower_case, threads, **runtime)


class _ConfigOnly:
    """Enough of a transformers model for ``repr`` and model cards: its config."""

    def __init__(self, config: Any):
        self.config = config


def write_manifest(folder: Path, default: str, files: dict[str, dict[str, Any]]) -> None:
    (folder / MANIFEST).write_text(json.dumps({"default": default, "files": files}, indent=2) + "\n", encoding="utf-8")
