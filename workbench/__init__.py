"""workbench: a Jupyter-first workbench for sentence embeddings."""

from __future__ import annotations

__version__ = "0.1.0"

from workbench.models import EmbeddingModel, build_model, load_model  # noqa: E402

__all__ = ["EmbeddingModel", "__version__", "build_model", "load_model"]
