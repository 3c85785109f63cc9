"""Notebook widgets over the workbench core: ipywidgets controls and plotly FigureWidgets.

Each widget is displayable as is (its ``widget`` box is what Jupyter shows), exposes its
controls as attributes (set ``.value``, call ``.click()``) and its figure as ``fig``, and
keeps callback exceptions in ``errors`` (also shown under the widget).

Example:
    >>> from workbench import load_model
    >>> from workbench.widgets import SimilarityHeatmap
    >>> w = SimilarityHeatmap(load_model("all-MiniLM-L6-v2"), ["A man plays a guitar.", "Someone makes music."])
    >>> w.z.round(1)  # what the heatmap shows; in a notebook, end the cell with ``w`` to see it
    array([[1. , 0.5],
           [0.5, 1. ]], dtype=float32)
"""

from __future__ import annotations

from workbench.widgets.comparison import ModelComparison
from workbench.widgets.compression import CompressionExplorer
from workbench.widgets.dashboard import LiveCurves, TrainingDashboard
from workbench.widgets.explain import ExplainPair
from workbench.widgets.heatmap import CompareHeatmaps, SimilarityHeatmap
from workbench.widgets.projector import CompareProjector, Projector
from workbench.widgets.search import ParaphraseMiner, SemanticSearch
from workbench.widgets.speedmap import SpeedQualityMap
from workbench.widgets.sweepboard import SweepBoard

__all__ = [
    "CompareHeatmaps",
    "CompareProjector",
    "CompressionExplorer",
    "ExplainPair",
    "LiveCurves",
    "ModelComparison",
    "ParaphraseMiner",
    "Projector",
    "SemanticSearch",
    "SimilarityHeatmap",
    "SpeedQualityMap",
    "SweepBoard",
    "TrainingDashboard",
]
