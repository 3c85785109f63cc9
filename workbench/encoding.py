"""Turning texts into embeddings: batching, device choice, and adapting any encoder.

Every part of the workbench that needs embeddings (evaluators, widgets, benchmarks) accepts
an *encoder*: a workbench ``EmbeddingModel``, a ``sentence_transformers.SentenceTransformer``
or a plain function ``texts -> array``. :func:`as_encode_fn` turns any of them into one
callable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

EncodeFn = Callable[[Sequence[str]], np.ndarray]


def as_encode_fn(encoder: Any, **encode_kwargs: Any) -> EncodeFn:
    """Adapt an encoder to a function ``list[str] -> float32 array of shape (n, dim)``.

    Args:
        encoder: an object with an ``encode(texts, **kwargs)`` method (a workbench model or a
            SentenceTransformer) or a plain callable ``texts -> array-like``.
        **encode_kwargs: passed to ``encoder.encode`` (e.g. ``batch_size``); ignored for
            plain callables.

    Returns:
        A function that encodes a list of texts into a 2-D float32 numpy array.

    Example:
        >>> fn = as_encode_fn(lambda texts: [[float(len(t))] for t in texts])
        >>> fn(["a", "abc"]).tolist()
        [[1.0], [3.0]]
    """
    if hasattr(encoder, "encode") and callable(encoder.encode):
        def call(texts: Sequence[str]) -> np.ndarray:
            return encoder.encode(list(texts), **encode_kwargs)
    elif callable(encoder):
        def call(texts: Sequence[str]) -> np.ndarray:
            return encoder(list(texts))
    else:
        raise TypeError(
            f"expected an encoder (a model with .encode or a function texts -> array), got {type(encoder).__name__}"
        )

    def encode_fn(texts: Sequence[str]) -> np.ndarray:
        out = call(texts)
        if hasattr(out, "detach"):  # a torch tensor
            out = out.detach().float().cpu().numpy()
        arr = np.asarray(out, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[0] != len(texts):
            raise ValueError(
                f"encoder returned an array of shape {arr.shape} for {len(texts)} texts; expected ({len(texts)}, dim)"
            )
        return arr

    return encode_fn
