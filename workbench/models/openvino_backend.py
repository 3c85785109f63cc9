"""The transformer block run by OpenVINO on the CPU: same tokenizer, same inputs, same token embeddings.

An exported folder keeps its sentence-transformers layout and adds OpenVINO IR files under
``openvino/``, named as sentence-transformers names them (``openvino_model.xml`` + ``.bin``;
``openvino_model_qint8_quantized.xml`` for the int8 one). :class:`OpenVinoTransformer` stands in
for :class:`Transformer` at the head of the chain, as :class:`OnnxTransformer` does: workbench
tokenizes, sorts and batches, only the transformer's forward pass runs in OpenVINO, and Pooling,
Dense and Normalize run as before.

OpenVINO picks the precision it computes in for the CPU at hand: on a CPU with bf16 units
(AMX, AVX-512 BF16) an fp32 IR runs in bf16 unless told otherwise; :attr:`OpenVinoTransformer.precision`
says what the compiled model uses, and ``precision="f32"`` asks for fp32.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.models.files import ModelFileError, read_json
from workbench.models.onnx_backend import OnnxTransformer, pick_exported_file

OPENVINO_FOLDER = "openvino"
MANIFEST = "workbench_export.json"
PRECISIONS = ("f32", "bf16", "f16")


def require_openvino() -> Any:
    """``import openvino``, or one line naming the extra that installs it."""
    try:
        import openvino
    except ImportError:
        raise ImportError(
            "the OpenVINO backend needs openvino: pip install 'workbench[openvino]' (or pip install openvino nncf)"
        ) from None
    return openvino


def openvino_files(path: str | os.PathLike[str]) -> list[str]:
    """The IR files under ``path/openvino/``, as ``openvino/<file>.xml`` (what ``file_name=`` takes)."""
    folder = Path(path) / OPENVINO_FOLDER
    return sorted(f"{OPENVINO_FOLDER}/{p.name}" for p in folder.glob("*.xml")) if folder.is_dir() else []


def pick_openvino_file(path: Path, file_name: str | None) -> Path:
    """The IR to run: ``file_name`` if given, else the one ``workbench export`` made last, else ``openvino/openvino_model.xml``."""
    manifest = path / OPENVINO_FOLDER / MANIFEST
    made_last = read_json(manifest).get("default") if manifest.is_file() else None
    file = pick_exported_file(path, file_name, OPENVINO_FOLDER, openvino_files(path), made_last,
                              "openvino_model.xml", ("OpenVINO model", "OpenVINO models"), "openvino")
    if not file.with_suffix(".bin").is_file():
        raise ModelFileError(f"{file} has no weights file {file.with_suffix('.bin').name} beside it; export the model again")
    return file


def default_precision() -> str:
    """The precision OpenVINO computes an fp32 model in on this CPU when not told (``"bf16"`` or ``"f32"``)."""
    return _type_name(require_openvino().Core().get_property("CPU", "INFERENCE_PRECISION_HINT"))


def _type_name(hint: Any) -> str:
    return hint.to_string() if hasattr(hint, "to_string") else str(hint)  # "bf16", "f32", "f16"


class OpenVinoTransformer(OnnxTransformer):
    """A :class:`Transformer` whose forward pass runs an OpenVINO IR on the CPU.

    It keeps the tokenizer, ``max_seq_length`` and ``do_lower_case`` of the folder's transformer
    and gives the same ``token_embeddings`` (within the precision it runs in); it has no torch
    weights, so it cannot be trained.

    Args:
        file: the ``.xml`` IR (inputs ``input_ids``, ``attention_mask`` [, ``token_type_ids``];
            output ``last_hidden_state``), its ``.bin`` beside it.
        tokenizer, config, max_seq_length, do_lower_case: as for :class:`OnnxTransformer`.
        threads: OpenVINO's inference threads (default: torch's thread count).
        precision: ``"f32"``, ``"bf16"`` or ``"f16"`` for the layers that are not int8; ``None``
            lets OpenVINO choose for this CPU (bf16 where the CPU has bf16 units).
    """

    def __init__(self, file: Path, tokenizer: Any, config: Any, max_seq_length: int = 256,
                 do_lower_case: bool = False, threads: int | None = None, precision: str | None = None):
        ov = require_openvino()
        if precision is not None and precision not in PRECISIONS:
            raise ValueError(f"precision={precision!r}: choose one of {', '.join(PRECISIONS)}, or None for OpenVINO's choice")
        self._keep(file, tokenizer, config, max_seq_length, do_lower_case)
        core = ov.Core()
        settings: dict[str, Any] = {"INFERENCE_NUM_THREADS": int(threads or torch.get_num_threads()),
                                    "PERFORMANCE_HINT": "LATENCY"}
        if precision is not None:
            settings["INFERENCE_PRECISION_HINT"] = precision
        try:
            graph = core.read_model(str(file))
            self.compiled = core.compile_model(graph, "CPU", settings)
        except Exception as err:  # noqa: BLE001 - OpenVINO raises RuntimeError subclasses of its own
            raise ModelFileError(f"{file} cannot be loaded by OpenVINO ({type(err).__name__}: "
                                 f"{str(err).strip().splitlines()[0][:200] if str(err).strip() else ''}); "
                                 "export the model again") from None
        self._use_io([next(iter(p.get_names())) for p in self.compiled.inputs],
                     [name for p in self.compiled.outputs for name in p.get_names()], "model")
        self.precision = _type_name(self.compiled.get_property("INFERENCE_PRECISION_HINT"))
        self._request = self.compiled.create_infer_request()

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        result = self._request.infer(self.feeds(features))
        # the request reuses its output buffer on the next call: copy what is kept
        features["token_embeddings"] = torch.from_numpy(np.array(result[self.output_name], copy=True))
        return features

    def save(self, path: Path) -> None:
        raise TypeError("an OpenVINO-backed model is saved by `workbench export`; load it with backend='torch' to save it")

    @staticmethod
    def pick_file(path: Path, file_name: str | None) -> Path:
        return pick_openvino_file(path, file_name)
