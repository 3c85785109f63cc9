"""The embedding model: a chain of modules that loads, saves and encodes.

Example:
    >>> from workbench.models import load_model
    >>> model = load_model("all-MiniLM-L6-v2")  # the packaged copy: no network
    >>> emb = model.encode(["A man is playing a guitar.", "Someone plays an instrument.", "The stock market fell."])
    >>> emb.shape
    (3, 384)
    >>> model.similarity(emb).round(1)
    array([[ 1. ,  0.7, -0.1],
           [ 0.7,  1. , -0.1],
           [-0.1, -0.1,  1. ]], dtype=float32)
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from workbench._version import __version__
from workbench.atomic import apply_umask, replace_dir, temp_dir
from workbench.encoding import encode_texts, pick_device
from workbench.models.files import ModelFileError, _inside, check_folder, read_json
from workbench.models.loading import read_modules, resolve_model_path
from workbench.models.modules import Dense, Normalize, Pooling
from workbench.models.transformer import Transformer
from workbench.similarity import canonical_fn_name, similarity_matrix


class EmbeddingModel(nn.Module):
    """Transformer -> Pooling -> [Dense] -> [Normalize], saved in the sentence-transformers layout.

    Args:
        modules: the chain, starting with a :class:`Transformer`.
        prompts: named prompts (e.g. ``{"query": "query: "}``) prepended to texts on request.
        default_prompt_name: the prompt used when ``encode`` names none.
        similarity_fn_name: the similarity the model was trained for, one of
            :data:`workbench.similarity.SIMILARITY_FUNCTIONS` (``"cosine"`` by default).
        truncate_dim: keep only the first this many dimensions of every embedding ``encode``
            returns (a Matryoshka-trained model's smaller size); ``None`` keeps them all. Saved
            in ``config_sentence_transformers.json`` under the key sentence-transformers reads.

    Example:
        >>> import tempfile
        >>> from transformers import AutoTokenizer, BertConfig
        >>> tok = AutoTokenizer.from_pretrained(str(resolve_model_path("all-MiniLM-L6-v2")))
        >>> config = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        ...                     intermediate_size=64)
        >>> _ = torch.manual_seed(0)
        >>> bert = Transformer.from_config(config, tok, max_seq_length=64)
        >>> model = EmbeddingModel([bert, Pooling(bert.dim, "mean"), Normalize()])
        >>> model.encode(["a tiny model", "untrained, but it encodes"]).shape
        (2, 32)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     again = EmbeddingModel.load(model.save(folder), device="cpu")
        ...     bool(np.allclose(again.encode(["a tiny model"]), model.encode(["a tiny model"]), atol=1e-6))
        True
    """

    def __init__(
        self,
        modules: Sequence[nn.Module],
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = None,
        similarity_fn_name: str | None = None,
        truncate_dim: int | None = None,
    ):
        from workbench.models.static import StaticEmbedding

        super().__init__()
        if not modules or not isinstance(modules[0], (Transformer, StaticEmbedding)):
            raise ValueError("an EmbeddingModel starts with a Transformer or a StaticEmbedding module")
        self.layers = nn.ModuleList(modules)
        self.prompts = dict(prompts or {})
        self.default_prompt_name = default_prompt_name
        self.similarity_fn_name = canonical_fn_name(similarity_fn_name or "cosine")
        self.truncate_dim = None if truncate_dim is None else self._check_truncate_dim(truncate_dim)
        self.source: str | None = None  # where the model was loaded from, for cards and logs

    # ----- structure -------------------------------------------------------------------------
    @property
    def transformer(self) -> Transformer:
        """The first module: the Transformer (or, in a static model, the StaticEmbedding) that reads the tokens."""
        return self.layers[0]  # type: ignore[return-value]

    @property
    def is_static(self) -> bool:
        """Whether this is a static model (token vectors averaged, no transformer)."""
        from workbench.models.static import StaticEmbedding

        return isinstance(self.layers[0], StaticEmbedding)

    @property
    def tokenizer(self) -> Any:
        return self.transformer.tokenizer

    @property
    def max_seq_length(self) -> int:
        return self.transformer.max_seq_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        self.transformer.max_seq_length = int(value)

    @property
    def dim(self) -> int:
        """Size of the sentence embedding."""
        dim = self.transformer.dim
        for module in self.layers[1:]:
            dim = getattr(module, "dim", dim)
        return dim

    def _check_truncate_dim(self, k: Any) -> int:
        """``k`` if it is a whole number in ``1..dim``; else a ValueError saying so."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= int(k) <= self.dim:
            raise ValueError(f"truncate_dim must be a whole number from 1 to the model's dim {self.dim}, got {k!r}")
        return int(k)

    @property
    def device(self) -> torch.device:
        first = next(self.parameters(), None)
        return first.device if first is not None else torch.device("cpu")  # ONNX or parameter-free chains: CPU

    @property
    def backend(self) -> str:
        """``"torch"``; ``"onnx"`` when the transformer runs in onnxruntime, ``"openvino"`` in OpenVINO."""
        from workbench.models.onnx_backend import OnnxTransformer
        from workbench.models.openvino_backend import OpenVinoTransformer

        if isinstance(self.transformer, OpenVinoTransformer):
            return "openvino"
        return "onnx" if isinstance(self.transformer, OnnxTransformer) else "torch"

    @property
    def normalizes(self) -> bool:
        return isinstance(self.layers[-1], Normalize)

    def __repr__(self) -> str:
        parts = []
        from workbench.models.onnx_backend import OnnxTransformer
        from workbench.models.static import StaticEmbedding

        for module in self.layers:
            if isinstance(module, StaticEmbedding):
                parts.append(f"StaticEmbedding(vocab={module.vocab_size}, dim={module.dim})")
            elif isinstance(module, OnnxTransformer):
                cfg = module.config
                runs = f", precision={module.precision}" if hasattr(module, "precision") else ""
                parts.append(f"{type(module).__name__}({module.file.parent.name}/{module.file.name}{runs}, layers={cfg.num_hidden_layers}, "
                             f"hidden={cfg.hidden_size}, max_seq_length={module.max_seq_length})")
            elif isinstance(module, Transformer):
                cfg = module.auto_model.config
                parts.append(
                    f"Transformer({type(module.auto_model).__name__}, layers={cfg.num_hidden_layers}, "
                    f"hidden={cfg.hidden_size}, max_seq_length={module.max_seq_length})"
                )
            elif isinstance(module, Pooling):
                parts.append(f"Pooling({module.word_dim}, {'+'.join(module.modes)})")
            elif isinstance(module, Dense):
                parts.append(f"Dense({module.in_features}->{module.out_features}, {type(module.activation).__name__})")
            else:
                parts.append(type(module).__name__ + "()")
        return "EmbeddingModel(\n  " + "\n  ".join(parts) + "\n)"

    # ----- forward -----------------------------------------------------------------------------
    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Padded, truncated tensors for a batch of texts."""
        return self.transformer.tokenize(texts)

    # Rows per forward chunk when a large batch is split by length (see ``forward``).
    bucket_rows: int = 64

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Tokenized features -> sentence embeddings ``(batch, dim)``; gradients flow when enabled.

        A large batch of mixed lengths (a training batch of 256 random pairs, say) is run in
        chunks of ``bucket_rows`` rows sorted by length, each cut to its own longest row, and
        put back in order. Masked positions never influence the result, so this equals one
        padded forward up to float noise, while skipping most of the padding's compute.
        """
        mask = features["attention_mask"]
        n = mask.shape[0]
        if n <= self.bucket_rows or mask.dim() != 2 or getattr(self.tokenizer, "padding_side", "right") != "right":
            return self._forward_chain(features)
        lengths = mask.sum(dim=1)
        order = torch.argsort(lengths, descending=True, stable=True)
        outs = []
        for rows in order.split(self.bucket_rows):
            width = int(lengths[rows].max())
            outs.append(self._forward_chain({
                k: v[rows, :width] if torch.is_tensor(v) and v.dim() == 2 and v.shape[0] == n else v
                for k, v in features.items()
            }))
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(n, device=order.device)
        return torch.cat(outs)[inverse]

    def _forward_chain(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        feats = dict(features)
        for module in self.layers:
            feats = module(feats)
        return feats["sentence_embedding"]

    # ----- encode ------------------------------------------------------------------------------
    def encode(
        self,
        texts: str | Sequence[str],
        batch_size: int = 32,
        normalize: bool = False,
        device: str | torch.device | None = None,
        progress: bool | None = None,
        output: Literal["numpy", "torch"] = "numpy",
        precision: Literal["fp32", "fp16", "bf16"] = "fp32",
        prompt_name: str | None = None,
        prompt: str | None = None,
        truncate_dim: int | None = None,
    ) -> np.ndarray | torch.Tensor:
        """Encode texts into sentence embeddings.

        Texts are sorted by token count so that batches carry little padding, and the output
        comes back in input order; results do not depend on ``batch_size`` beyond float noise.

        Args:
            texts: a list of strings (or one string, giving a 1-D result).
            batch_size: texts per forward pass.
            normalize: scale each embedding to unit length.
            device: ``"cuda"``, ``"mps"``, ``"cpu"``; by default the best one present.
            progress: show a progress bar; by default only for long inputs.
            output: ``"numpy"`` (float32) or ``"torch"`` (a tensor on the CPU).
            precision: ``"fp16"``/``"bf16"`` run under autocast on a GPU; ``"fp32"`` everywhere.
            prompt_name: a key of ``model.prompts`` to prepend.
            prompt: a literal prompt to prepend (wins over ``prompt_name``).
            truncate_dim: keep the first this many dimensions (``1..dim``); by default the
                model's saved ``truncate_dim``, else all. With ``normalize`` the truncated
                vectors are scaled to unit length (after truncating, as sentence-transformers does).

        Returns:
            An array of shape ``(len(texts), truncate_dim or dim)``.

        Example:
            >>> from workbench.models import load_model
            >>> model = load_model("all-MiniLM-L6-v2", device="cpu")
            >>> emb = model.encode(["a short sentence"], truncate_dim=64, normalize=True)
            >>> emb.shape, round(float(np.linalg.norm(emb)), 4)
            ((1, 64), 1.0)
        """
        if prompt is None:
            name = prompt_name if prompt_name is not None else self.default_prompt_name
            if name is not None:
                if name not in self.prompts:
                    known = ", ".join(self.prompts) or "none"
                    raise ValueError(f"prompt_name={name!r} is not one of this model's prompts ({known})")
                prompt = self.prompts[name]
        k = self.truncate_dim if truncate_dim is None else self._check_truncate_dim(truncate_dim)
        truncating = k is not None and k < self.dim
        emb = encode_texts(
            self, texts, batch_size=batch_size, normalize=normalize and not truncating, device=device,
            progress=progress, output=output, precision=precision, prompt=prompt or None,
        )
        if not truncating:
            return emb
        emb = emb[..., :k]  # (n, k), or (k,) for one text
        if isinstance(emb, torch.Tensor):
            emb = emb.contiguous()
            return torch.nn.functional.normalize(emb, dim=-1) if normalize else emb
        emb = np.ascontiguousarray(emb)
        return torch.nn.functional.normalize(torch.from_numpy(emb), dim=-1).numpy() if normalize else emb

    def similarity(self, a: Any, b: Any = None) -> np.ndarray:
        """The full similarity matrix with this model's similarity function."""
        return similarity_matrix(a, b, fn=self.similarity_fn_name)

    # ----- save / load -----------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], card: str | None = None) -> Path:
        """Write the sentence-transformers folder layout (safetensors only), atomically.

        The folder is written beside the target and renamed into place, so a crash mid-save
        never leaves a half-written model where a good one was. Its files and folders get the
        user's umask (644/755 with umask 022), so others on a shared machine can read it.

        Args:
            path: the target folder (replaced if it exists).
            card: the README.md model card; a minimal one by default.

        Returns:
            The folder written.
        """
        from workbench.models.card import minimal_card

        path = Path(path).expanduser()
        tmp = temp_dir(path)
        try:
            entries = []
            for idx, module in enumerate(self.layers):
                # The transformer's files sit at the root (sentence-transformers' layout); any other module in its own folder.
                folder = "" if idx == 0 and isinstance(module, Transformer) else f"{idx}_{type(module).__name__}"
                (tmp / folder).mkdir(exist_ok=True)
                module.save(tmp / folder)
                entries.append({"idx": idx, "name": str(idx), "path": folder, "type": f"sentence_transformers.models.{type(module).__name__}"})
            _write(tmp / "modules.json", entries)
            _write(tmp / "config_sentence_transformers.json", {
                "__version__": _versions(),
                "model_type": "SentenceTransformer",
                "prompts": self.prompts,
                "default_prompt_name": self.default_prompt_name,
                "similarity_fn_name": self.similarity_fn_name,
                # sentence-transformers writes the key only when set, and reads it the same way.
                **({"truncate_dim": self.truncate_dim} if self.truncate_dim is not None else {}),
            })
            (tmp / "README.md").write_text(card if card is not None else minimal_card(self), encoding="utf-8")
            apply_umask(tmp)  # safetensors writes its files 600: a shared model must be readable by others
            replace_dir(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return path

    @classmethod
    def load(
        cls,
        name_or_path: str | os.PathLike[str],
        device: str | torch.device | None = None,
        max_seq_length: int | None = None,
        trust_remote_code: bool = False,
        allow_pickle: bool = False,
        revision: str | None = None,
        backend: Literal["torch", "onnx", "openvino"] = "torch",
        file_name: str | None = None,
        precision: str | None = None,
    ) -> EmbeddingModel:
        """Load a sentence-transformers folder, a plain Hugging Face folder, a hub id or the default short name.

        Args:
            name_or_path: a folder, ``"all-MiniLM-L6-v2"``, or a hub id like ``"org/model"``.
            device: where to put the model (the best present by default).
            max_seq_length: override the stored maximum sequence length.
            trust_remote_code: allow code shipped with the checkpoint to run (off by default).
            allow_pickle: allow ``pytorch_model.bin`` weights (pickle can run code when loaded).
            revision: hub revision (branch, tag or commit).
            backend: ``"onnx"`` runs the transformer in onnxruntime on the CPU, from a graph under the
                folder's ``onnx/`` (made by ``workbench export``, or by sentence-transformers).
                ``"openvino"`` runs it in OpenVINO on the CPU, from an IR under ``openvino/``.
            file_name: which graph, e.g. ``"onnx/model_qint8_avx2.onnx"`` or
                ``"openvino/openvino_model_qint8_quantized.xml"``; by default the one
                ``workbench export`` made last, else ``onnx/model.onnx`` (``openvino/openvino_model.xml``).
            precision: with ``backend="openvino"``, ``"f32"``, ``"bf16"`` or ``"f16"`` for what is not
                int8; by default OpenVINO's choice for this CPU (bf16 on CPUs with bf16 units), which
                ``model.transformer.precision`` reports.
        """
        if backend in ("onnx", "openvino") and device is not None and torch.device(device).type != "cpu":
            raise ValueError(f"the {backend} backend runs on the CPU here; device={device!r} needs backend='torch'")
        if file_name is not None and backend not in ("onnx", "openvino"):
            raise ValueError("file_name= picks an ONNX graph or an OpenVINO model: pass backend='onnx' or 'openvino' with it")
        if precision is not None and backend != "openvino":
            raise ValueError("precision= is OpenVINO's inference precision: pass backend='openvino' with it")
        path = resolve_model_path(name_or_path, revision, allow_pickle)
        modules, settings, is_st = read_modules(path, trust_remote_code, allow_pickle, max_seq_length, backend,
                                                file_name, precision)
        if not is_st:
            warnings.warn(
                f"{path} is a plain Hugging Face model, not a sentence-transformers one: "
                "using mean pooling over its token embeddings",
                UserWarning,
                stacklevel=2,
            )
        model = cls(
            modules,
            prompts=settings.get("prompts") or {},
            default_prompt_name=settings.get("default_prompt_name"),
            similarity_fn_name=settings.get("similarity_fn_name"),
        )
        if settings.get("truncate_dim") is not None:
            try:
                model.truncate_dim = model._check_truncate_dim(settings["truncate_dim"])
            except ValueError as err:
                raise ModelFileError(f"{path / 'config_sentence_transformers.json'}: {err}") from None
        model.source = os.fspath(name_or_path)
        model.eval()
        model.to(pick_device("cpu" if backend != "torch" else device))
        return model


def build_model(
    base: str | os.PathLike[str] | Any,
    pooling: str | list[str] = "mean",
    dense: int | None = None,
    activation: str | nn.Module | None = "tanh",
    normalize: bool = False,
    keep_layers: list[int] | None = None,
    max_seq_length: int | None = None,
    tokenizer: str | os.PathLike[str] | Any | None = None,
    seed: int | None = None,
    device: str | torch.device | None = None,
) -> EmbeddingModel:
    """Build a new embedding model on top of a transformer.

    Args:
        base: a model name/folder (only its transformer is kept) or a ``transformers``
            config for a freshly initialised model (then ``tokenizer`` is required).
        pooling: the pooling mode(s).
        dense: add a Dense layer with this many outputs.
        activation: the Dense layer's activation.
        normalize: add a Normalize layer.
        keep_layers: keep only these transformer layers.
        max_seq_length: truncate inputs to this many tokens.
        tokenizer: a tokenizer, or a name/folder whose tokenizer to use, for a fresh model.
        seed: seeds the random initialisation of new weights.
        device: where to put the model.

    Example:
        >>> m = build_model("all-MiniLM-L6-v2", dense=256, normalize=True, seed=0)
        >>> m.dim, m.encode(["hello"]).shape
        (256, (1, 256))
    """
    if seed is not None:
        torch.manual_seed(seed)
    if hasattr(base, "model_type") and hasattr(base, "to_dict"):  # a transformers config
        if tokenizer is None:
            raise ValueError("a fresh model from a config needs tokenizer= (a tokenizer or a model whose tokenizer to use)")
        if not hasattr(tokenizer, "pad_token_id"):
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(str(_transformer_folder(tokenizer)))
        transformer = Transformer.from_config(base, tokenizer, max_seq_length or 256)
    else:
        transformer = Transformer.load(_transformer_folder(base), max_seq_length)
    if keep_layers is not None:
        transformer.keep_layers(keep_layers)
    if max_seq_length is not None:
        transformer.max_seq_length = int(max_seq_length)
    modules: list[nn.Module] = [transformer, Pooling(transformer.dim, pooling)]
    if dense is not None:
        modules.append(Dense(modules[-1].dim, dense, activation))
    if normalize:
        modules.append(Normalize())
    model = EmbeddingModel(modules)
    model.source = os.fspath(base) if isinstance(base, (str, os.PathLike)) else type(base).__name__
    model.to(pick_device(device))
    return model


def _transformer_folder(name_or_path: str | os.PathLike[str]) -> Path:
    """The folder holding a model's transformer (the root, or the module path in modules.json)."""
    path = resolve_model_path(name_or_path)
    check_folder(path)
    if (path / "modules.json").is_file():
        entries = read_json(path / "modules.json")
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and str(entry.get("type", "")).endswith("Transformer"):
                return _inside(path, str(entry.get("path", "")))
    return path


def _versions() -> dict[str, str]:
    import transformers

    return {"workbench": __version__, "transformers": transformers.__version__, "pytorch": torch.__version__}


def _write(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
