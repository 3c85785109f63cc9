"""One content digest (sha256) for caches and resumable files: texts, arrays and weights.

A digest says whether two things have the same content, so that work already on disk is reused
only for exactly the same input. Texts are hashed length-prefixed (``["ab", "c"]`` and
``["a", "bc"]`` differ); arrays by their bytes, read a block of rows at a time (bounded memory
for a memory map); weights by name, dtype, shape and bytes.

The ``hash_*`` functions feed an existing ``hashlib`` object, to build a digest of several
parts; :func:`texts_digest` and :func:`array_digest` return the hex digest of one part.

Example:
    >>> texts_digest(["ab", "c"]) == texts_digest(["a", "bc"])
    False
    >>> array_digest(np.arange(4, dtype=np.float32)) == hashlib.sha256(np.arange(4, dtype=np.float32)).hexdigest()
    True
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def hash_texts(h: Any, texts: Sequence[str]) -> None:
    """Feed ``texts`` to the hash ``h``: their count, then each one's UTF-8 bytes, length-prefixed."""
    h.update(len(texts).to_bytes(8, "little"))
    for text in texts:
        data = text.encode("utf-8")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)


def hash_array(h: Any, arr: np.ndarray, rows: int = 8192) -> None:
    """Feed the bytes of ``arr`` (C order) to ``h``, ``rows`` rows at a time."""
    for start in range(0, arr.shape[0], rows):
        h.update(np.ascontiguousarray(arr[start : start + rows]))


def hash_tensors(h: Any, tensors: Mapping[str, Any], max_values: int | None = None) -> None:
    """Feed named torch tensors (a ``state_dict``) to ``h``: each one's name, dtype, shape and bytes.

    Args:
        h: a ``hashlib`` object.
        tensors: name -> tensor.
        max_values: hash only this many evenly spaced values of each tensor (a quick fingerprint
            that any training step still changes); all values by default.
    """
    import torch

    for name, tensor in tensors.items():
        flat = tensor.detach().reshape(-1)
        if max_values is not None:
            flat = flat[:: max(1, flat.numel() // max_values)]
        values = flat.cpu().contiguous()
        h.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        if values.numel():
            h.update(values.view(torch.uint8).numpy())


def texts_digest(texts: Sequence[str]) -> str:
    """The sha256 hex digest of ``texts`` (see :func:`hash_texts`)."""
    h = hashlib.sha256()
    hash_texts(h, texts)
    return h.hexdigest()


def array_digest(arr: np.ndarray, rows: int = 8192) -> str:
    """The sha256 hex digest of an array's bytes (see :func:`hash_array`)."""
    h = hashlib.sha256()
    hash_array(h, arr, rows)
    return h.hexdigest()
