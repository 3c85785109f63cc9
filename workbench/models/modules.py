"""The building blocks of an embedding model, each able to save and load itself.

A model is a chain ``Transformer -> Pooling -> [Dense] -> [Normalize]``. Each block reads and
writes the same files as its sentence-transformers counterpart, so folders move freely between
the two libraries. Features flow between blocks as a dict of tensors:
``input_ids``/``attention_mask`` -> ``token_embeddings`` -> ``sentence_embedding``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file as load_safetensors
from safetensors.torch import save_file as save_safetensors
from torch import nn

from workbench.models.files import ModelFileError, _one_line, check_folder, read_config, tensor_shapes
from workbench.models.transformer import (
    Transformer,  # noqa: F401  (re-exported: it lived here before transformer.py)
    _positive_int,
    _write_json,
)

POOLING_MODES = ("mean", "cls", "max", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
_POOLING_ALIASES = {
    "mean-sqrt-len": "mean_sqrt_len_tokens",
    "mean_sqrt_len": "mean_sqrt_len_tokens",
    "weighted-mean": "weightedmean",
    "weighted_mean": "weightedmean",
    "last-token": "lasttoken",
    "last_token": "lasttoken",
}
# The classic sentence_bert pooling config keys, in the order sentence-transformers writes them.
_POOLING_FLAGS = {
    "cls": "pooling_mode_cls_token",
    "mean": "pooling_mode_mean_tokens",
    "max": "pooling_mode_max_tokens",
    "mean_sqrt_len_tokens": "pooling_mode_mean_sqrt_len_tokens",
    "weightedmean": "pooling_mode_weightedmean_tokens",
    "lasttoken": "pooling_mode_lasttoken",
}


def _require(cfg: dict[str, Any], file: Path, key: str, kind: str, needs: str) -> Any:
    """``cfg[key]``, or a one-line error naming the file, the key and what a ``kind`` config needs."""
    if key not in cfg:
        raise ModelFileError(
            f"{file} has no {key!r}: a {kind} config needs {needs}. "
            "Is the module's type in modules.json right for this folder?"
        )
    return cfg[key]


class Pooling(nn.Module):
    """Token embeddings -> one sentence embedding.

    Args:
        dim: the token embedding size.
        mode: one of ``POOLING_MODES`` or a list of them (outputs are concatenated).
        include_prompt: whether prompt tokens count in the pooled average.

    Example:
        >>> tokens = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [9.0, 9.0]]])  # (batch, seq, dim)
        >>> mask = torch.tensor([[1, 1, 0]])  # the last token is padding
        >>> Pooling(2, ["mean", "max"])({"token_embeddings": tokens, "attention_mask": mask})["sentence_embedding"]
        tensor([[2., 3., 3., 4.]])
    """

    def __init__(self, dim: int, mode: str | list[str] = "mean", include_prompt: bool = True):
        super().__init__()
        modes = [mode] if isinstance(mode, str) else list(mode)
        modes = [_POOLING_ALIASES.get(m, m) for m in modes]
        bad = [m for m in modes if m not in POOLING_MODES]
        if bad or not modes:
            raise ValueError(f"unknown pooling mode {bad or modes}; choose from {', '.join(POOLING_MODES)}")
        self.word_dim = int(dim)
        self.modes = modes
        self.include_prompt = include_prompt

    @property
    def dim(self) -> int:
        return self.word_dim * len(self.modes)

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        tokens = features["token_embeddings"]  # (batch, seq, hidden)
        mask = features["attention_mask"]  # (batch, seq)
        prompt_length = features.get("prompt_length")
        if prompt_length and not self.include_prompt:
            mask = mask.clone()
            mask[:, : int(prompt_length)] = 0
        maskf = mask.unsqueeze(-1).to(tokens.dtype)  # (batch, seq, 1)
        outs = []
        for mode in self.modes:
            if mode == "cls":
                outs.append(tokens[:, 0])
            elif mode == "max":
                outs.append(tokens.masked_fill(maskf == 0, float("-inf")).max(dim=1).values)
            elif mode in ("mean", "mean_sqrt_len_tokens"):
                total = (tokens * maskf).sum(dim=1)  # (batch, hidden)
                count = torch.clamp(maskf.sum(dim=1), min=1e-9)  # (batch, 1)
                outs.append(total / (count if mode == "mean" else torch.sqrt(count)))
            elif mode == "weightedmean":
                # Position weights 1..seq: later tokens count more (right padding assumed).
                weights = torch.arange(1, tokens.shape[1] + 1, device=tokens.device, dtype=tokens.dtype)
                wmask = maskf * weights.view(1, -1, 1)
                outs.append((tokens * wmask).sum(dim=1) / torch.clamp(wmask.sum(dim=1), min=1e-9))
            elif mode == "lasttoken":
                last = (mask.sum(dim=1) - 1).clamp(min=0)  # index of the last real token, (batch,)
                outs.append(tokens[torch.arange(tokens.shape[0], device=tokens.device), last])
        features["sentence_embedding"] = torch.cat(outs, dim=-1) if len(outs) > 1 else outs[0]
        return features

    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {"word_embedding_dimension": self.word_dim}
        for mode, key in _POOLING_FLAGS.items():
            cfg[key] = mode in self.modes
        cfg["include_prompt"] = self.include_prompt
        return cfg

    def save(self, path: Path) -> None:
        _write_json(path / "config.json", self.config())

    @classmethod
    def load(cls, path: str | Path) -> Pooling:
        path = Path(path)
        check_folder(path)
        file = path / "config.json"
        cfg = read_config(file)
        # Classic layout: word_embedding_dimension + one boolean per mode;
        # sentence-transformers >= 6 writes embedding_dimension + pooling_mode (a string or list).
        dim = cfg.get("word_embedding_dimension", cfg.get("embedding_dimension"))
        if "pooling_mode" in cfg:
            modes = cfg["pooling_mode"]
        else:
            modes = [mode for mode, key in _POOLING_FLAGS.items() if cfg.get(key)]
        if dim is None or not modes:
            raise ModelFileError(
                f"{file}: no embedding dimension (word_embedding_dimension) or no pooling mode set. "
                "Is the module's type in modules.json right for this folder?"
            )
        if not _positive_int(dim):
            raise ModelFileError(f"{file}: the embedding dimension must be a positive integer, got {dim!r}")
        if not (isinstance(modes, str) or (isinstance(modes, list) and all(isinstance(m, str) for m in modes))):
            raise ModelFileError(f"{file}: pooling_mode must be a mode name or a list of them, got {modes!r}")
        try:
            return cls(dim, modes, bool(cfg.get("include_prompt", True)))
        except ValueError as err:
            raise ModelFileError(f"{file}: {_one_line(err)}") from None


def _activation_name(act: nn.Module) -> str:
    cls = type(act)
    return f"{cls.__module__}.{cls.__name__}"


def make_activation(name: str | nn.Module | None) -> nn.Module:
    """An activation module from a short name (``"tanh"``), a dotted torch path, or a module."""
    if isinstance(name, nn.Module):
        return name
    if name is None or name in ("identity", "linear", "none"):
        return nn.Identity()
    short = {"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU, "sigmoid": nn.Sigmoid, "silu": nn.SiLU}
    if name.lower() in short:
        return short[name.lower()]()
    # Dotted paths as sentence-transformers writes them; only torch's parameter-free activation
    # classes (and Identity), never arbitrary imports or modules that build weights.
    cls_name = name.rsplit(".", 1)[-1]
    if name.startswith("torch.nn.") and hasattr(nn, cls_name):
        cls = getattr(nn, cls_name)
        if isinstance(cls, type) and (cls is nn.Identity or (
                issubclass(cls, nn.Module) and cls.__module__ == "torch.nn.modules.activation"
                and cls_name not in ("MultiheadAttention", "PReLU"))):
            try:
                return cls()
            except TypeError:
                pass  # needs arguments (e.g. Threshold): not a plain activation
    raise ValueError(f"unknown activation {name!r}: use a torch.nn class such as 'tanh' or 'torch.nn.modules.activation.Tanh'")


class Dense(nn.Module):
    """A linear layer plus activation on the sentence embedding (e.g. 128 -> 256, tanh).

    Args:
        in_features: input size.
        out_features: output size.
        activation: a short name (``"tanh"``), a dotted torch class path, or a module.
        bias: whether the linear layer has a bias.

    Example:
        >>> dense = Dense(4, 2, activation="tanh")
        >>> dense({"sentence_embedding": torch.ones(3, 4)})["sentence_embedding"].shape, dense.dim
        (torch.Size([3, 2]), 2)
    """

    def __init__(self, in_features: int, out_features: int, activation: str | nn.Module | None = "tanh", bias: bool = True):
        super().__init__()
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.bias = bias
        self.linear = nn.Linear(self.in_features, self.out_features, bias=bias)
        self.activation = make_activation(activation)

    @property
    def dim(self) -> int:
        return self.out_features

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        features["sentence_embedding"] = self.activation(self.linear(features["sentence_embedding"]))
        return features

    def save(self, path: Path) -> None:
        _write_json(
            path / "config.json",
            {
                "in_features": self.in_features,
                "out_features": self.out_features,
                "bias": self.bias,
                "activation_function": _activation_name(self.activation),
            },
        )
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items() if k.startswith("linear.")}
        save_safetensors(state, str(path / "model.safetensors"))

    @classmethod
    def load(cls, path: str | Path, allow_pickle: bool = False) -> Dense:
        """Load a Dense folder; its config is checked against the weights' shapes before anything is allocated."""
        path = Path(path)
        check_folder(path)
        file = path / "config.json"
        cfg = read_config(file)
        needs = "in_features and out_features (and optionally bias, activation_function)"
        sizes = {key: _require(cfg, file, key, "Dense", needs) for key in ("in_features", "out_features")}
        for key, value in sizes.items():
            if not _positive_int(value):
                raise ModelFileError(f"{file}: {key} must be a positive integer, got {value!r}")
        bias = cfg.get("bias", True)
        if not isinstance(bias, bool):
            raise ModelFileError(f"{file}: bias must be true or false, got {bias!r}")
        try:
            activation = make_activation(cfg.get("activation_function"))
        except ValueError as err:
            raise ModelFileError(f"{file}: {_one_line(err)}") from None
        state: dict[str, torch.Tensor] | None = None
        if (path / "model.safetensors").is_file():
            weights = path / "model.safetensors"
            shapes = tensor_shapes(weights)
        elif (path / "pytorch_model.bin").is_file():
            if not allow_pickle:
                raise ValueError(
                    f"{path}/pytorch_model.bin is a pickle file, which can run code when loaded; "
                    "pass allow_pickle=True if you trust the source."
                )
            weights = path / "pytorch_model.bin"
            try:
                state = torch.load(weights, map_location="cpu", weights_only=True)
            except Exception as err:  # noqa: BLE001 - torch raises many types for a damaged or hostile file
                raise ModelFileError(f"{weights} cannot be read ({type(err).__name__}: {_one_line(err)[:200]}); "
                                     "save the model again or download it again") from None
            if not isinstance(state, dict):
                raise ModelFileError(f"{weights} does not hold a state dict of tensors")
            shapes = {k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}
        else:
            raise FileNotFoundError(f"{path} has no model.safetensors for the Dense layer")
        n_in, n_out = sizes["in_features"], sizes["out_features"]
        want = {"linear.weight": (n_out, n_in), **({"linear.bias": (n_out,)} if bias else {})}
        got = {k: v for k, v in shapes.items() if k.startswith("linear.")}
        if got != want:
            found = ", ".join(f"{k} {list(v)}" for k, v in sorted(got.items())) or "no linear.* tensors"
            raise ModelFileError(
                f"{path}: config.json (in_features={n_in}, out_features={n_out}, bias={str(bias).lower()}) does not "
                f"match {weights.name} ({found}); fix config.json or save the model again"
            )
        module = cls(n_in, n_out, activation, bias)
        if state is None:
            state = load_safetensors(str(weights))
        module.load_state_dict({k: v for k, v in state.items() if k.startswith("linear.")}, strict=True)
        return module


class Normalize(nn.Module):
    """Scale each sentence embedding to unit length, so dot product equals cosine.

    Example:
        >>> Normalize()({"sentence_embedding": torch.tensor([[3.0, 4.0]])})["sentence_embedding"]
        tensor([[0.6000, 0.8000]])
    """

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        features["sentence_embedding"] = nn.functional.normalize(features["sentence_embedding"], p=2, dim=1)
        return features

    def save(self, path: Path) -> None:
        pass  # sentence-transformers expects the (empty) folder to exist

    @classmethod
    def load(cls, path: str | Path) -> Normalize:
        return cls()

