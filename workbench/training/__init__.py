"""Training: a config, one plain loop that emits events, the run directory it writes, what run
folders take on disk and their clean-up (``disk``), and (in ``distributed``) what the loop needs
under several processes."""

from __future__ import annotations

from workbench.training.config import TrainConfig
from workbench.training.disk import clean_runs, disk_usage
from workbench.training.events import Checkpoint, Done, Eval, Event, RunHistory, Started, Step
from workbench.training.loop import Trainer, TrainingError
from workbench.training.runs import RunDir, RunInfo, list_runs

__all__ = [
    "Checkpoint", "Done", "Eval", "Event", "RunDir", "RunHistory", "RunInfo", "Started", "Step", "TrainConfig",
    "Trainer", "TrainingError", "clean_runs", "disk_usage", "list_runs",
]
