"""workbench: a Jupyter-first workbench for sentence embeddings."""

from __future__ import annotations

from workbench._version import __version__
from workbench.models import EmbeddingModel, build_model, load_model

__all__ = ["EmbeddingModel", "__version__", "build_model", "load_model"]
