"""A static embedding model: one trained vector per token, a sentence is their mean.

:class:`StaticEmbedding` reads and writes the files of sentence-transformers'
``StaticEmbedding`` module (``model.safetensors`` with ``embedding.weight``, and
``tokenizer.json``), so ``SentenceTransformer(folder)`` loads a workbench static model and
workbench loads theirs (model2vec conversions included). Texts are tokenized without special
tokens and never truncated, as there; a text with no tokens gets a zero vector.

Encoding needs no transformer: :meth:`StaticEmbedding.encode_numpy` tokenizes (in Rust, without
character offsets) and averages each text's vectors in one ``embedding_bag`` call, which on a
laptop CPU runs at tens of thousands of sentences a second. Training uses the ordinary loop: ``tokenize`` pads token ids with a mask,
and ``forward`` is a masked mean, differentiable in the table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file as load_safetensors
from safetensors.torch import save_file as save_safetensors
from torch import nn

from workbench.models.files import ModelFileError, _one_line, check_folder, tensor_shapes

# Longest text kept in a training batch (tokens); encoding never truncates, as sentence-transformers.
TRAIN_MAX_TOKENS = 512


class StaticTokenizer:
    """A ``tokenizers.Tokenizer`` behind the small part of the transformers tokenizer API that training uses.

    Calls never add special tokens (a static model has none to learn from) and never pad or
    truncate unless asked, so training sees exactly the tokens that encoding averages.
    """

    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, backend: Any):
        backend.no_padding()
        backend.no_truncation()
        self.backend_tokenizer = backend
        unk = _unknown_token(backend)
        self.unk_token = unk
        self.unk_token_id = backend.token_to_id(unk) if unk is not None else None
        self.pad_token_id = 0
        self.padding_side = "right"

    def __len__(self) -> int:
        return self.backend_tokenizer.get_vocab_size()

    def ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids per text, without special tokens (``encode_batch_fast``: no character offsets computed)."""
        encode = getattr(self.backend_tokenizer, "encode_batch_fast", self.backend_tokenizer.encode_batch)
        return [e.ids for e in encode(texts, add_special_tokens=False)]

    def __call__(self, texts: Any, truncation: Any = False, max_length: int | None = None,
                 padding: Any = False, return_tensors: str | None = None, **_: Any) -> dict[str, Any]:
        single = isinstance(texts, str)
        rows = self.ids([texts] if single else list(texts))
        if truncation and max_length:
            rows = [r[:max_length] for r in rows]
        if not padding and return_tensors is None:
            return {"input_ids": rows[0] if single else rows}
        width = max((len(r) for r in rows), default=0) or 1
        ids = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
            mask[i, : len(r)] = 1
        return {"input_ids": ids, "attention_mask": mask}

    def convert_ids_to_tokens(self, ids: list[int]) -> list[str]:
        return [self.backend_tokenizer.id_to_token(int(i)) or "" for i in ids]

    def save(self, file: Path) -> None:
        self.backend_tokenizer.save(str(file))


def _unknown_token(backend: Any) -> str | None:
    model = backend.model
    unk = getattr(model, "unk_token", None)
    return unk if isinstance(unk, str) and backend.token_to_id(unk) is not None else None


def as_backend_tokenizer(tokenizer: Any) -> Any:
    """The ``tokenizers.Tokenizer`` of a fast transformers tokenizer (or the object itself), as a copy."""
    from tokenizers import Tokenizer

    if isinstance(tokenizer, StaticTokenizer):
        backend = tokenizer.backend_tokenizer
    elif isinstance(tokenizer, Tokenizer):
        backend = tokenizer
    elif hasattr(tokenizer, "backend_tokenizer"):
        backend = tokenizer.backend_tokenizer
    else:
        raise TypeError(f"a static model needs a fast (Rust) tokenizer; got {type(tokenizer).__name__}")
    return Tokenizer.from_str(backend.to_str())  # a copy: padding/truncation changes stay ours


class StaticEmbedding(nn.Module):
    """Texts -> the mean of their tokens' vectors (no special tokens, no truncation).

    Args:
        tokenizer: a ``tokenizers.Tokenizer`` or a fast transformers tokenizer (copied).
        weights: the ``(vocab_size, dim)`` table.

    Example:
        >>> from tokenizers import Tokenizer, models, pre_tokenizers
        >>> tok = Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1, "b": 2}, unk_token="[UNK]"))
        >>> tok.pre_tokenizer = pre_tokenizers.Whitespace()
        >>> static = StaticEmbedding(tok, torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
        >>> static.encode_numpy(["a b", "a a", "zzz", ""]).tolist()   # 'zzz' is the unknown token
        [[0.5, 0.5], [1.0, 0.0], [0.0, 0.0], [0.0, 0.0]]
    """

    max_seq_length = TRAIN_MAX_TOKENS  # for training batches only; encode keeps every token

    def __init__(self, tokenizer: Any, weights: torch.Tensor | np.ndarray):
        super().__init__()
        table = torch.as_tensor(np.asarray(weights) if not torch.is_tensor(weights) else weights).float()
        if table.dim() != 2:
            raise ValueError(f"a static embedding table is 2-D (vocab, dim); got shape {tuple(table.shape)}")
        self.tokenizer = StaticTokenizer(as_backend_tokenizer(tokenizer))
        if table.shape[0] < len(self.tokenizer):
            raise ValueError(f"the table has {table.shape[0]} rows but the tokenizer knows {len(self.tokenizer)} tokens")
        self.embedding = nn.EmbeddingBag.from_pretrained(table.contiguous(), freeze=False, mode="mean")

    @property
    def dim(self) -> int:
        return int(self.embedding.embedding_dim)

    @property
    def vocab_size(self) -> int:
        return int(self.embedding.num_embeddings)

    def tokenize(self, texts: list[str], padding: bool = True) -> dict[str, Any]:
        return self.tokenizer(texts, padding=padding, return_tensors="pt" if padding else None)

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        ids, mask = features["input_ids"], features["attention_mask"]
        if "offsets" in features:  # sentence-transformers' flat layout
            features["sentence_embedding"] = self.embedding(ids, features["offsets"])
            return features
        weights = mask.to(self.embedding.weight.dtype)
        total = (self.embedding.weight[ids] * weights.unsqueeze(-1)).sum(dim=1)
        features["sentence_embedding"] = total / weights.sum(dim=1, keepdim=True).clamp(min=1.0)
        return features

    def encode_numpy(self, texts: list[str]) -> np.ndarray:
        """Mean token vector per text, without autograd or padding: the texts' token ids in one flat
        array, averaged per text by one ``embedding_bag`` call (the CPU kernel sentence-transformers'
        module uses). A text without tokens gets zeros."""
        import itertools

        rows = self.tokenizer.ids(texts)
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        flat = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=int(lengths.sum()))
        offsets = np.concatenate(([0], np.cumsum(lengths)[:-1])) if len(rows) else np.zeros(0, dtype=np.int64)
        weight = self.embedding.weight.detach()
        with torch.inference_mode():
            out = nn.functional.embedding_bag(torch.from_numpy(flat).to(weight.device), weight,
                                              torch.from_numpy(offsets).to(weight.device), mode="mean")
        return out.float().cpu().numpy()

    def save(self, path: Path) -> None:
        save_safetensors({"embedding.weight": self.embedding.weight.detach().contiguous().cpu()},
                         str(path / "model.safetensors"))
        self.tokenizer.save(path / "tokenizer.json")

    @classmethod
    def load(cls, path: str | Path) -> StaticEmbedding:
        """A StaticEmbedding folder (sentence-transformers' files, or a model2vec folder's ``embeddings``)."""
        from tokenizers import Tokenizer

        path = Path(path)
        check_folder(path)
        weights_file, tok_file = path / "model.safetensors", path / "tokenizer.json"
        for file in (weights_file, tok_file):
            if not file.is_file():
                raise ModelFileError(f"{path} has no {file.name}: a StaticEmbedding folder holds model.safetensors "
                                     "and tokenizer.json")
        shapes = tensor_shapes(weights_file)
        key = "embedding.weight" if "embedding.weight" in shapes else "embeddings" if "embeddings" in shapes else None
        if key is None or len(shapes[key]) != 2:
            raise ModelFileError(f"{weights_file} has no 2-D embedding.weight tensor (found {', '.join(shapes) or 'none'})")
        try:
            tokenizer = Tokenizer.from_file(str(tok_file))
        except Exception as err:  # noqa: BLE001 - tokenizers raises its own exception type for a bad file
            raise ModelFileError(f"{tok_file} cannot be read ({_one_line(err)[:200]})") from None
        if tokenizer.get_vocab_size() > shapes[key][0]:
            raise ModelFileError(f"{tok_file} knows {tokenizer.get_vocab_size()} tokens but {weights_file.name} "
                                 f"has {shapes[key][0]} rows")
        state = load_safetensors(str(weights_file))
        table = state[key]
        if key == "embeddings" and "mapping" in state:  # model2vec's token -> row mapping
            table = table[state["mapping"].long()]
        if key == "embeddings" and "weights" in state:  # model2vec's per-token weights, folded in
            table = table.float() * state["weights"].float()[:, None]
        return cls(tokenizer, table)
