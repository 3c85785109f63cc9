"""Distilling a static model from any teacher: a vector per vocabulary token, then a mean per sentence.

The recipe follows model2vec's distillation (Tulkens & van Dongen, 2024): every token of the
teacher's vocabulary is encoded by the teacher on its own, the vectors are reduced by PCA, and
each is weighted by how rare its token is (SIF: ``a / (a + p(token))``), so that frequent,
uninformative tokens count less in a sentence's mean. ``model2vec`` itself is not used here: its
``[distill]`` extra caps transformers below 5.4, and this project supports transformers 5.x.
Where this goes beyond it: the token probabilities can be counted on real text
(``frequencies=sentences``) instead of assumed from the vocabulary's order (Zipf's law), the
teacher's own pooling and normalization give each token's vector (what the teacher says about
a one-token sentence), and the result is an ordinary workbench model: trainable further with
the same loop (MSE to the teacher, MNRL), saved as a sentence-transformers ``StaticEmbedding``.

Example:
    >>> from workbench import load_model                                       # doctest: +SKIP
    >>> static = distill_static(load_model("all-MiniLM-L6-v2"))                # doctest: +SKIP
    >>> static.encode(["A man is playing a guitar."]).shape                    # doctest: +SKIP
    (1, 256)
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from workbench.models import EmbeddingModel, Normalize
from workbench.models.static import StaticEmbedding

SIF_COEFFICIENT = 1e-4  # model2vec's default


def token_vectors(teacher: EmbeddingModel, batch_size: int = 1024, progress: bool = True) -> np.ndarray:
    """The teacher's embedding of every vocabulary token as a one-token sentence (``[CLS] t [SEP]``).

    Returns:
        A float32 array ``(vocab_size, teacher.dim)``; row ``i`` belongs to token id ``i``.
    """
    from tqdm.auto import tqdm

    if teacher.is_static or teacher.backend != "torch":
        raise TypeError("distill_static needs a torch transformer teacher (load it with backend='torch')")
    tok = teacher.tokenizer
    size = len(tok)
    template = tok("x", add_special_tokens=True)["input_ids"]  # [CLS] x [SEP] (or what the tokenizer adds)
    probe = tok("x", add_special_tokens=False)["input_ids"]
    if len(probe) != 1 or probe[0] not in template:
        raise ValueError("cannot find where a token sits between this tokenizer's special tokens")
    at = template.index(probe[0])
    with_types = "token_type_ids" in tok.model_input_names
    out = np.empty((size, teacher.dim), dtype=np.float32)
    device = teacher.device
    was_training = teacher.training
    teacher.eval()
    with torch.inference_mode(), tqdm(total=size, desc="teacher encodes the vocabulary", unit="token",
                                      disable=not progress, leave=False) as bar:
        for start in range(0, size, batch_size):
            ids = torch.arange(start, min(start + batch_size, size))
            batch = torch.tensor(template).repeat(len(ids), 1)
            batch[:, at] = ids
            feats = {"input_ids": batch.to(device), "attention_mask": torch.ones_like(batch).to(device)}
            if with_types:
                feats["token_type_ids"] = torch.zeros_like(batch).to(device)
            out[start : start + len(ids)] = teacher(feats).float().cpu().numpy()
            bar.update(len(ids))
    teacher.train(was_training)
    return out


def token_probabilities(tokenizer: Any, frequencies: Sequence[str] | None = None,
                        exclude: Sequence[int] = ()) -> np.ndarray:
    """p(token) per vocabulary id: counted on ``frequencies`` (add-one smoothed), else Zipf by vocabulary order.

    Zipf's law assumes the vocabulary lists tokens from frequent to rare (as WordPiece and BPE
    vocabularies roughly do): ``p ∝ 1 / rank``, ranks counted over the ids not in ``exclude``.

    Example:
        >>> from tokenizers import Tokenizer, models
        >>> tok = Tokenizer(models.WordLevel({"[UNK]": 0, "the": 1, "cat": 2}, unk_token="[UNK]"))
        >>> token_probabilities(tok, exclude=[0]).round(3).tolist()
        [0.0, 0.667, 0.333]
    """
    from workbench.models.static import StaticTokenizer, as_backend_tokenizer

    static_tok = StaticTokenizer(as_backend_tokenizer(tokenizer))
    size = len(static_tok)
    excluded = np.zeros(size, dtype=bool)
    excluded[list(exclude)] = True
    if frequencies is not None:
        counts = np.ones(size, dtype=np.float64)
        for start in range(0, len(frequencies), 10_000):
            ids = [i for row in static_tok.ids(list(frequencies[start : start + 10_000])) for i in row]
            counts += np.bincount(np.asarray(ids, dtype=np.int64), minlength=size)[:size]
    else:
        ranks = np.cumsum(~excluded).astype(np.float64)
        counts = 1.0 / ranks
    counts[excluded] = 0.0
    return counts / counts.sum()


def never_produced(tokenizer: Any) -> list[int]:
    """Token ids a text never produces in a static model: specials (``[CLS]``, ``[PAD]``...) and ``[unusedN]``.

    The unknown token is not among them: unknown characters do produce it.
    """
    specials = set(getattr(tokenizer, "all_special_ids", []) or [])
    unused = re.compile(r"^\[unused\d+\]$")
    vocab = tokenizer.get_vocab() if hasattr(tokenizer, "get_vocab") else {}
    never = specials | {i for t, i in vocab.items() if unused.match(t)}
    never.discard(getattr(tokenizer, "unk_token_id", None))
    return sorted(never)


def distill_static(
    teacher: EmbeddingModel | str | os.PathLike[str],
    pca_dims: int | None = 256,
    frequencies: Sequence[str] | None = None,
    sif_coefficient: float | None = SIF_COEFFICIENT,
    normalize: bool | None = None,
    batch_size: int = 1024,
    progress: bool = True,
) -> EmbeddingModel:
    """A static model distilled from ``teacher`` (one call; about a minute for a MiniLM on a laptop CPU).

    Args:
        teacher: a workbench model, a folder or a name.
        pca_dims: reduce the token vectors to this many principal components (centred first);
            ``None`` keeps the teacher's space as it is (no centring), which is what further MSE
            training against the teacher's embeddings needs.
        frequencies: sentences to count token frequencies on for the SIF weights; by default
            Zipf's law over the vocabulary order (model2vec's assumption).
        sif_coefficient: ``a`` in ``a / (a + p)``; ``None`` for no weighting.
        normalize: end the model with Normalize (default: when the teacher does).
        batch_size: tokens the teacher encodes per forward pass.
        progress: show a progress bar for the teacher's pass over the vocabulary.

    Returns:
        An ``EmbeddingModel`` of ``StaticEmbedding`` [+ ``Normalize``]; ``model.save(folder)``
        writes a folder that ``SentenceTransformer(folder)`` loads.
    """
    from workbench.distill import _as_model, fit_pca

    model = _as_model(teacher)
    vectors = token_vectors(model, batch_size=batch_size, progress=progress).astype(np.float64)
    tok = model.tokenizer
    never = never_produced(tok)
    keep = np.ones(len(vectors), dtype=bool)
    keep[never] = False
    if pca_dims is not None:
        if not 1 <= pca_dims <= vectors.shape[1]:
            raise ValueError(f"pca_dims={pca_dims} must be between 1 and the teacher's {vectors.shape[1]} dimensions")
        components, _ = fit_pca(vectors[keep], pca_dims)
        vectors = (vectors - vectors[keep].mean(axis=0)) @ components.T.astype(np.float64)
    if sif_coefficient is not None:
        p = token_probabilities(tok, frequencies, exclude=never)
        vectors = vectors * (sif_coefficient / (sif_coefficient + p))[:, None]
    vectors[~keep] = 0.0  # tokens a text never produces (padding, [CLS], [unused5]...)
    modules: list[Any] = [StaticEmbedding(tok, vectors.astype(np.float32))]
    if normalize if normalize is not None else model.normalizes:
        modules.append(Normalize())
    static = EmbeddingModel(modules, prompts=model.prompts, default_prompt_name=model.default_prompt_name,
                            similarity_fn_name=model.similarity_fn_name)
    static.source = f"static distillation of {model.source or 'a model'}"
    return static


FRESH_STD = 0.01  # the random start of a fresh table: small, so tokens that training never sees stay small


def fresh_static(tokenizer: Any, dim: int, normalize: bool = True, seed: int | None = 0) -> EmbeddingModel:
    """A static model with random token vectors (no teacher, no pretrained weights): a start for training.

    Only the tokenizer's vocabulary is borrowed. Every token gets a vector drawn from
    ``N(0, FRESH_STD**2)``, except the tokens a text never produces (:func:`never_produced`:
    ``[CLS]``, ``[PAD]``, ``[unusedN]``...), which get zeros; the unknown token keeps its random vector. Training (MNRL on pairs) then
    moves the tokens it sees; with mean pooling and ``Normalize``, the small start keeps unseen
    tokens from dominating a sentence.

    Args:
        tokenizer: a fast transformers tokenizer, a ``tokenizers.Tokenizer``, or a model name or
            folder whose tokenizer to use.
        dim: the vector size.
        normalize: end the model with ``Normalize`` (cosine similarity).
        seed: seeds the random table (``None``: torch's current state).

    Example:
        >>> model = fresh_static("all-MiniLM-L6-v2", dim=8, seed=0)
        >>> model.dim, model.encode(["a cat", "a dog"]).shape
        (8, (2, 8))
    """
    if dim < 1:
        raise ValueError(f"dim must be >= 1 (got {dim})")
    if isinstance(tokenizer, (str, os.PathLike)):
        from transformers import AutoTokenizer

        from workbench.models.model import _transformer_folder

        tokenizer = AutoTokenizer.from_pretrained(str(_transformer_folder(tokenizer)))
    generator = torch.Generator().manual_seed(int(seed)) if seed is not None else None
    size = len(tokenizer) if hasattr(tokenizer, "__len__") else tokenizer.get_vocab_size()
    table = torch.randn((size, dim), generator=generator) * FRESH_STD
    never = never_produced(tokenizer)
    if never:
        table[never] = 0.0
    modules: list[Any] = [StaticEmbedding(tokenizer, table)]
    if normalize:
        modules.append(Normalize())
    model = EmbeddingModel(modules)
    model.source = f"a fresh static table ({size} tokens x {dim}, random)"
    return model
