"""The first block of an embedding model: a Hugging Face transformer and its tokenizer, texts -> token embeddings.

It reads and writes the same files as sentence-transformers' ``Transformer`` (the model's
``config.json``, safetensors weights, tokenizer files and ``sentence_bert_config.json``),
checking a folder's files against each other before anything is built.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from workbench.models.files import (
    ModelFileError,
    _one_line,
    check_folder,
    read_config,
    read_json,
    tensor_shapes,
)


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


class Transformer(nn.Module):
    """A Hugging Face transformer plus its tokenizer: texts -> token embeddings.

    Args:
        model: a ``transformers`` encoder (``AutoModel``).
        tokenizer: its fast tokenizer.
        max_seq_length: longer inputs are truncated to this many tokens.
        do_lower_case: lower-case texts before tokenizing (old uncased checkpoints).

    Example:
        >>> from workbench.models import resolve_model_path
        >>> bert = Transformer.load(resolve_model_path("all-MiniLM-L6-v2"))
        >>> features = bert(dict(bert.tokenize(["A man is playing a guitar."])))
        >>> bert.dim, tuple(features["token_embeddings"].shape)  # (batch, tokens, hidden)
        (384, (1, 9, 384))
    """

    def __init__(self, model: nn.Module, tokenizer: Any, max_seq_length: int = 256, do_lower_case: bool = False):
        super().__init__()
        self.auto_model = model
        self.tokenizer = tokenizer
        self.max_seq_length = int(max_seq_length)
        self.do_lower_case = bool(do_lower_case)

    @property
    def dim(self) -> int:
        return int(self.auto_model.config.hidden_size)

    def tokenize(self, texts: list[str], padding: bool = True) -> dict[str, Any]:
        """Tokenize with truncation; ``padding=False`` returns python lists (for length sorting)."""
        if self.do_lower_case:
            texts = [t.lower() for t in texts]
        return self.tokenizer(
            texts,
            padding=padding,
            truncation="longest_first",
            max_length=self.max_seq_length,
            return_tensors="pt" if padding else None,
        )

    def token_ids(self, texts: list[str]) -> dict[str, list[list[int]]]:
        """``tokenize(texts, padding=False)``'s ``input_ids`` (and ``token_type_ids``), made faster.

        With a fast tokenizer this asks its Rust ``tokenizers.Tokenizer`` directly, through a private
        copy that truncates as :meth:`tokenize` does (``max_seq_length``, the tokenizer's truncation
        side). The ids are the same; what is skipped is transformers' per-text conversion into
        Python dicts, which took longer than the tokenizing itself (0.12 s of 0.21 s for the 5,384
        STS-B test+dev sentences). Other tokenizers go through :meth:`tokenize`.

        Example:
            >>> from workbench.models import resolve_model_path
            >>> bert = Transformer.load(resolve_model_path("all-MiniLM-L6-v2"))
            >>> texts = ["A man is playing a guitar.", "naïve café"]
            >>> bert.token_ids(texts)["input_ids"] == bert.tokenize(texts, padding=False)["input_ids"]
            True
        """
        backend = self._rust_tokenizer()
        if backend is None:
            enc = self.tokenize(texts, padding=False)
            return {k: enc[k] for k in ("input_ids", "token_type_ids") if k in enc}
        if self.do_lower_case:
            texts = [t.lower() for t in texts]
        encode = getattr(backend, "encode_batch_fast", backend.encode_batch)  # _fast: no offsets (tokenizers >= 0.21)
        encodings = encode(list(texts))
        out = {"input_ids": [e.ids for e in encodings]}
        if "token_type_ids" in self.tokenizer.model_input_names:
            out["token_type_ids"] = [e.type_ids for e in encodings]
        return out

    def _rust_tokenizer(self) -> Any:
        """A private copy of the fast tokenizer's backend, set to truncate like :meth:`tokenize`; None if slow."""
        from workbench.models.static import as_backend_tokenizer

        if not getattr(self.tokenizer, "is_fast", False) or not hasattr(self.tokenizer, "backend_tokenizer"):
            return None
        side = getattr(self.tokenizer, "truncation_side", "right")
        key = (id(self.tokenizer), self.max_seq_length, side)
        cached = self.__dict__.get("_rust_copy")
        if cached is None or cached[0] != key:
            copy = as_backend_tokenizer(self.tokenizer)
            copy.no_padding()
            copy.enable_truncation(self.max_seq_length, strategy="longest_first", direction=side)
            self.__dict__["_rust_copy"] = cached = (key, copy)
        return cached[1]

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        inputs = {k: features[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in features}
        out = self.auto_model(**inputs, return_dict=True)
        features["token_embeddings"] = out.last_hidden_state  # (batch, seq, hidden)
        return features

    def save(self, path: Path) -> None:
        _quiet_transformers()
        self.auto_model.save_pretrained(str(path), safe_serialization=True)
        self.tokenizer.save_pretrained(str(path))
        _write_json(
            path / "sentence_bert_config.json",
            {"max_seq_length": self.max_seq_length, "do_lower_case": self.do_lower_case},
        )

    @classmethod
    def load(
        cls,
        path: str | Path,
        max_seq_length: int | None = None,
        trust_remote_code: bool = False,
        allow_pickle: bool = False,
        keep_layers: list[int] | None = None,
    ) -> Transformer:
        """Load a transformer folder (``config.json`` + safetensors weights + tokenizer).

        Args:
            path: the folder.
            max_seq_length: override; else ``sentence_bert_config.json``, else the tokenizer's
                and the position embeddings' limit.
            trust_remote_code: run code shipped with the checkpoint (off by default).
            allow_pickle: also accept ``pytorch_model.bin`` (pickle can run code on load).
            keep_layers: keep only these encoder layers (e.g. ``[0, 3, 5]``), a cheap student.
        """
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        path = Path(path)
        check_folder(path)
        if not (path / "config.json").is_file():
            raise ModelFileError(
                f"{path} has no config.json, so it is not a transformer folder; "
                "check the module's path and type in modules.json"
            )
        for file in sorted(path.glob("*.json")):  # config, tokenizer files: one clear line if one is damaged
            read_json(file)
        if not isinstance(read_json(path / "config.json"), dict):
            raise ModelFileError(f"{path}/config.json must hold a JSON object")
        shapes: dict[str, tuple[int, ...]] = {}
        for file in sorted(path.glob("*.safetensors")):
            shapes.update(tensor_shapes(file))
        has_safetensors = bool(shapes) or any(path.glob("*.safetensors"))
        if not has_safetensors:
            pickled = [p.name for p in path.glob("*.bin")]
            if pickled and not allow_pickle:
                raise ValueError(
                    f"{path} holds weights only as pickle ({', '.join(pickled)}); pickle files can run code when "
                    "loaded. Convert them to safetensors, or pass allow_pickle=True if you trust the source."
                )
        try:
            try:
                config = AutoConfig.from_pretrained(str(path), trust_remote_code=trust_remote_code)
            except ValueError as err:
                if "trust_remote_code" in str(err):
                    raise
                reason = _one_line(str(err).split("\n\n")[0])
                raise ModelFileError(f"{path}/config.json is not a model config transformers can build ({reason})") from None
            _quiet_transformers()
            _check_files(path, has_safetensors)
            _check_weights_fit_config(path, config, shapes, trust_remote_code)
            model = AutoModel.from_pretrained(
                str(path),
                config=config,
                use_safetensors=has_safetensors or not allow_pickle,
                trust_remote_code=trust_remote_code,
                dtype=torch.float32,
            )
            tokenizer = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
        except ValueError as err:
            if "trust_remote_code" in str(err):
                raise ValueError(
                    f"{path} needs custom code from its authors to load. That code would run on your machine; "
                    "if you trust it, pass trust_remote_code=True."
                ) from None
            raise
        max_seq_length, do_lower_case = folder_settings(path, config, tokenizer, max_seq_length)
        module = cls(model, tokenizer, max_seq_length, do_lower_case)
        if keep_layers is not None:
            module.keep_layers(keep_layers)
        return module

    @classmethod
    def from_config(cls, config: Any, tokenizer: Any, max_seq_length: int = 256, seed: int | None = None) -> Transformer:
        """A freshly initialised transformer (random weights) of the given config's shape."""
        from transformers import AutoModel

        if seed is not None:
            torch.manual_seed(seed)
        model = AutoModel.from_config(config)
        return cls(model, tokenizer, max_seq_length)

    def keep_layers(self, layers: list[int]) -> None:
        """Drop every encoder layer not listed (in place), as layer-reduced students do."""
        encoder = getattr(self.auto_model, "encoder", None)
        stack = getattr(encoder, "layer", None)
        if stack is None:
            raise ValueError(f"keep_layers works on BERT-like encoders (model.encoder.layer); got {type(self.auto_model).__name__}")
        n = len(stack)
        bad = [i for i in layers if not 0 <= i < n]
        if bad or not layers or len(set(layers)) != len(layers):
            raise ValueError(f"keep_layers={layers}: need distinct layer indices in 0..{n - 1}")
        encoder.layer = nn.ModuleList([stack[i] for i in layers])
        self.auto_model.config.num_hidden_layers = len(layers)


def folder_settings(path: Path, config: Any, tokenizer: Any, max_seq_length: int | None) -> tuple[int, bool]:
    """``(max_seq_length, do_lower_case)`` of a transformer folder: the override if given, else
    ``sentence_bert_config.json``, else the smaller of the position embeddings' and the tokenizer's limit."""
    settings = {}
    if (path / "sentence_bert_config.json").is_file():
        settings = _read_sentence_bert_config(path / "sentence_bert_config.json")
    if max_seq_length is None:
        max_seq_length = settings.get("max_seq_length")
    if max_seq_length is None:
        limits = [getattr(config, "max_position_embeddings", None), getattr(tokenizer, "model_max_length", None)]
        limits = [int(x) for x in limits if isinstance(x, int) and 0 < x < 1_000_000]
        max_seq_length = min(limits) if limits else 512
    return int(max_seq_length), bool(settings.get("do_lower_case", False))


def _read_sentence_bert_config(file: Path) -> dict[str, Any]:
    settings = read_config(file)
    if settings.get("max_seq_length") is not None and not _positive_int(settings["max_seq_length"]):
        raise ModelFileError(f"{file}: max_seq_length must be a positive integer, got {settings['max_seq_length']!r}")
    if not isinstance(settings.get("do_lower_case", False), bool):
        raise ModelFileError(f"{file}: do_lower_case must be true or false, got {settings['do_lower_case']!r}")
    return settings


def _check_weights_fit_config(path: Path, config: Any, shapes: dict[str, tuple[int, ...]], trust_remote_code: bool) -> None:
    """Refuse a config.json whose sizes disagree with the weights, before transformers allocates them.

    The model is built on the meta device (shapes, no memory) and its tensors are compared with
    the safetensors headers: a config claiming hidden_size=200000 would otherwise allocate
    hundreds of GB and only then report the mismatch.
    """
    from transformers import AutoModel

    if not shapes:
        return
    try:
        with torch.device("meta"):
            skeleton = AutoModel.from_config(config, trust_remote_code=trust_remote_code)
    except Exception:  # noqa: BLE001 - an architecture we cannot build here: transformers reports it itself
        return
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    prefix = f"{getattr(skeleton, 'base_model_prefix', '')}."
    wrong = []
    for name, shape in shapes.items():
        key = name[len(prefix):] if name not in expected and name.startswith(prefix) else name
        if key in expected and expected[key] != shape:
            wrong.append((name, shape, expected[key]))
    if wrong:
        name, shape, want = wrong[0]
        sizes = ", ".join(f"{k}={getattr(config, k)}" for k in ("hidden_size", "intermediate_size", "vocab_size",
                                                                 "num_attention_heads", "max_position_embeddings")
                          if isinstance(getattr(config, k, None), int))
        more = f" (and {len(wrong) - 1} more tensors)" if len(wrong) > 1 else ""
        raise ModelFileError(
            f"{path}/config.json does not match the weights: {name} is {list(shape)} in the safetensors file, "
            f"but the config ({sizes}) makes it {list(want)}{more}; fix config.json or save the model again"
        )


def _check_files(path: Path, has_safetensors: bool) -> None:
    """Weights as safetensors (or opted-in pickle) and tokenizer files must be there."""
    if not has_safetensors and not any(path.glob("*.bin")):
        raise ValueError(
            f"{path} has no safetensors weights (model.safetensors). If the model is published only as "
            "pickle (pytorch_model.bin), pass allow_pickle=True if you trust the source."
        )
    tokenizer_files = ("tokenizer.json", "vocab.txt", "vocab.json", "tokenizer.model", "spiece.model",
                       "sentencepiece.bpe.model")
    if not any((path / f).is_file() for f in tokenizer_files):
        raise FileNotFoundError(
            f"{path} has no tokenizer files (one of {', '.join(tokenizer_files)}); without them every word "
            "would become [UNK]. Save the tokenizer next to the model (tokenizer.save_pretrained)."
        )


def _quiet_transformers() -> None:
    """Loading a small local model should not draw a weight-loading progress bar in a notebook."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except (ImportError, AttributeError):
        pass
