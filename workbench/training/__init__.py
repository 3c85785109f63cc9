"""Training: a config, one plain loop that emits events, the run directory it writes, and (in
``distributed``) what the loop needs under several processes."""

from __future__ import annotations

from workbench.training.config import TrainConfig
from workbench.training.events import Checkpoint, Done, Eval, Event, RunHistory, Started, Step
from workbench.training.loop import Trainer, TrainingError
from workbench.training.runs import RunDir, RunInfo, list_runs

__all__ = [
    "Checkpoint", "Done", "Eval", "Event", "RunDir", "RunHistory", "RunInfo", "Started", "Step", "TrainConfig",
    "Trainer", "TrainingError", "list_runs",
]
