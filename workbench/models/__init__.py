"""Embedding models: load, build, save (sentence-transformers layout) and encode."""

from __future__ import annotations

from workbench.models.loading import DEFAULT_MODEL, ModelFileError, ModelNotFoundError, resolve_model_path
from workbench.models.model import EmbeddingModel, build_model, pick_device
from workbench.models.modules import POOLING_MODES, Dense, Normalize, Pooling
from workbench.models.transformer import Transformer


def load_model(name_or_path: str = DEFAULT_MODEL, **kwargs) -> EmbeddingModel:
    """Load a model by folder, hub id or the default short name ``all-MiniLM-L6-v2``.

    See :meth:`EmbeddingModel.load` for the keyword arguments.

    Example:
        >>> model = load_model("all-MiniLM-L6-v2", device="cpu")  # the packaged copy, offline
        >>> model.dim, model.max_seq_length, model.similarity_fn_name
        (384, 256, 'cosine')
    """
    return EmbeddingModel.load(name_or_path, **kwargs)


__all__ = [
    "DEFAULT_MODEL", "POOLING_MODES", "Dense", "EmbeddingModel", "ModelFileError", "ModelNotFoundError", "Normalize", "Pooling",
    "Transformer", "build_model", "load_model", "pick_device", "resolve_model_path",
]
