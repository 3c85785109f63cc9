"""Training: a config, one plain loop that emits events, and the run directory it writes."""

from __future__ import annotations

from workbench.training.config import TrainConfig
from workbench.training.events import Checkpoint, Done, Eval, Event, RunHistory, Started, Step
from workbench.training.loop import Trainer, TrainingError
from workbench.training.runs import RunDir, RunInfo, list_runs

__all__ = [
    "Checkpoint", "Done", "Eval", "Event", "RunDir", "RunHistory", "RunInfo", "Started", "Step", "TrainConfig",
    "Trainer", "TrainingError", "list_runs",
]
