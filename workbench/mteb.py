"""MTEB as a client: run ``mteb.evaluate`` on a workbench model through one small adapter.

``mteb`` is an optional extra (``pip install workbench[mteb]``). It recognises
sentence-transformers models and objects that implement its encoder protocol; a workbench model
is neither, so it goes through :class:`MTEBEncoder`::

    import mteb
    from workbench import load_model
    from workbench.mteb import MTEBEncoder

    encoder = MTEBEncoder(load_model("all-MiniLM-L6-v2"))
    results = mteb.evaluate(encoder, mteb.get_tasks(tasks=["STSBenchmark"]), cache=None)

The adapter encodes the texts of mteb's batched inputs with the model's own ``encode`` and scores
with the model's similarity function (:mod:`workbench.similarity`); its ``mteb_model_meta``
describes the model (name, dimension, maximum tokens, parameters, similarity). A model that has
prompts named ``"query"`` or ``"document"`` uses them for the inputs mteb marks as such.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from mteb.models.model_meta import ModelMeta, ScoringFunction

from workbench.encoding import as_encode_fn
from workbench.similarity import canonical_fn_name, pairwise_similarity, similarity_matrix

# mteb insists on an "organization/name" model name.
DEFAULT_ORGANIZATION = "workbench"


class MTEBEncoder:
    """A workbench model (or any encoder) seen by mteb as one of its encoders.

    Args:
        model: a workbench model, a ``SentenceTransformer`` or a function ``texts -> array``.
        name: the model name mteb records (``"org/name"``; a bare name gets ``workbench/``). By
            default the model's ``source`` (the id or folder it was loaded from), else
            ``workbench/model``.
        revision: the revision mteb records (default ``"local"``).
        batch_size: texts per forward pass, unless mteb's ``encode_kwargs`` give one.
        similarity_fn_name: how to score pairs; by default the model's own (cosine without one).

    Attributes:
        mteb_model_meta: the ``mteb.ModelMeta`` describing the model.

    Example:
        >>> encoder = MTEBEncoder(lambda texts: np.ones((len(texts), 3)), name="toy")
        >>> encoder.mteb_model_meta.name, encoder.mteb_model_meta.similarity_fn_name.value
        ('workbench/toy', 'cosine')
        >>> encoder.similarity_pairwise(np.eye(2), np.ones((2, 2))).tolist()
        [0.7071067811865475, 0.7071067811865475]
    """

    def __init__(
        self, model: Any, *, name: str | None = None, revision: str | None = None, batch_size: int = 32,
        similarity_fn_name: str | None = None,
    ) -> None:
        self.model = model
        self.batch_size = batch_size
        self.similarity_fn_name = canonical_fn_name(
            similarity_fn_name or getattr(model, "similarity_fn_name", None) or "cosine")
        self.mteb_model_meta = _model_meta(model, name, revision or "local", self.similarity_fn_name)

    def encode(
        self, inputs: Any, *, task_metadata: Any = None, hf_split: str | None = None,
        hf_subset: str | None = None, prompt_type: Any = None, **kwargs: Any,
    ) -> np.ndarray:
        """Embed the texts of mteb's batched inputs (a ``DataLoader`` of ``{"text": [...]}`` batches).

        Args:
            inputs: the batches; each must have a ``"text"`` list (text tasks only).
            task_metadata: the task's metadata (unused: prompts come from the model).
            hf_split: the split (unused).
            hf_subset: the subset (unused).
            prompt_type: ``query``/``document``; a model prompt of that name is applied.
            **kwargs: mteb's ``encode_kwargs``; ``batch_size`` is used, the rest ignored.

        Returns:
            float32 embeddings of shape ``(texts, dim)``, in input order.

        Raises:
            ValueError: a batch without texts (an image or audio task).
        """
        texts: list[str] = []
        for batch in inputs:
            if "text" not in batch:
                raise ValueError(f"MTEBEncoder embeds text only; this task's batches hold {sorted(batch)}")
            texts.extend(batch["text"])
        options: dict[str, Any] = {"batch_size": kwargs.get("batch_size") or self.batch_size}
        prompt = getattr(prompt_type, "value", prompt_type)
        if prompt is not None and prompt in (getattr(self.model, "prompts", None) or {}):
            options["prompt_name"] = prompt
        return as_encode_fn(self.model, **options)(texts)

    def similarity(self, embeddings1: Any, embeddings2: Any) -> torch.Tensor:
        """Every row of ``embeddings1`` against every row of ``embeddings2``: shape ``(n1, n2)``."""
        return torch.as_tensor(similarity_matrix(embeddings1, embeddings2, self.similarity_fn_name))

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> torch.Tensor:
        """Row ``i`` of ``embeddings1`` against row ``i`` of ``embeddings2``: shape ``(n,)``."""
        return torch.as_tensor(pairwise_similarity(embeddings1, embeddings2, self.similarity_fn_name))

    def __repr__(self) -> str:
        return f"MTEBEncoder({self.mteb_model_meta.name!r}, similarity={self.similarity_fn_name!r})"


def _model_meta(model: Any, name: str | None, revision: str, fn: str) -> ModelMeta:
    name = name or str(getattr(model, "source", None) or "model")
    if "/" not in name or name.startswith(("/", ".", "~")):  # a bare name or a local folder
        name = f"{DEFAULT_ORGANIZATION}/{name.rstrip('/').rsplit('/', 1)[-1]}"
    parameters = getattr(model, "parameters", None)
    n_parameters = sum(p.numel() for p in parameters()) if callable(parameters) else None
    dim = getattr(model, "dim", None)
    # create_empty's overwrites skip pydantic's validation: give the fields their final types.
    return ModelMeta.create_empty({
        "name": name, "revision": revision, "embed_dim": dim if isinstance(dim, int) else None,
        "max_tokens": getattr(model, "max_seq_length", None), "n_parameters": n_parameters,
        "similarity_fn_name": ScoringFunction(fn), "framework": ["PyTorch"], "open_weights": True,
    })
