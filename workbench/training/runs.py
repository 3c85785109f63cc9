"""The run directory: what a run leaves on disk, written so that a crash never breaks it.

    runs/NAME/
      config.json        # training config, loss, data and model facts
      metrics.jsonl      # every event, one JSON line each (replay with RunHistory.from_jsonl)
      checkpoints/step-000120/{model/, trainer_state.pt}   # resumable
      best/              # the best model so far (by the primary metric)
      model/             # the final model with its card

Every file and folder is written aside and renamed into place, and a folder is renamed aside
before it is deleted (:mod:`workbench.atomic`, which names what is aside): a crash never leaves a
half-written or half-deleted folder under a name that a resume would read.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from workbench.atomic import atomic_write_text, discard_dir, remove_leftovers, temp_dir
from workbench.training.events import Event, RunHistory, to_json


def launch_rank() -> int:
    """This process's rank under torchrun / accelerate launch (``RANK``); 0 when not launched."""
    return int(os.environ.get("RANK", "0"))


class RunDir:
    """Files of one run. Only the main process writes.

    Example:
        >>> import tempfile
        >>> from workbench.training.events import Done, Started
        >>> run = RunDir(Path(tempfile.mkdtemp()) / "demo")
        >>> run.start({"lr": 2e-5})
        >>> run.log(Started(total_steps=10, examples=640, batch_size=64))
        >>> run.log(Done(step=10, reason="completed", elapsed_s=3.0))
        >>> [(info.name, info.status, info.config) for info in list_runs(run.path.parent)]
        [('demo', 'completed', {'lr': 2e-05})]
    """

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self.metrics_path = self.path / "metrics.jsonl"
        self.best_path = self.path / "best"
        self.model_path = self.path / "model"
        self.checkpoints = self.path / "checkpoints"

    def start(self, config: dict[str, Any]) -> None:
        """Begin a fresh run here (an earlier run's log and checkpoints are replaced)."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.remove_leftovers()
        atomic_write_text(self.path / "config.json", json.dumps(config, indent=2, default=str) + "\n")
        atomic_write_text(self.metrics_path, "")
        self.clear_checkpoints()

    def remove_leftovers(self) -> None:
        """Delete what a killed writer left aside beside the run's files and folders and beside each
        checkpoint: half-written models and checkpoints, folders swapped out or being deleted, temporary
        files of atomic writes (``.model.saving-*``, ``.best.old-*``, ``checkpoints/.step-0000120.saving-*``,
        ``.metrics.jsonl.writing-*``...: the one naming rule of :mod:`workbench.atomic`). Call it only when
        no process is writing the run (before it starts or resumes); nothing under a final name is touched.
        """
        remove_leftovers(self.path, [self.model_path.name, self.best_path.name, self.checkpoints.name,
                                     "config.json", self.metrics_path.name])
        remove_leftovers(self.checkpoints, ["step-*"])

    def log(self, event: Event) -> None:
        with open(self.metrics_path, "a", encoding="utf-8") as fh:
            fh.write(to_json(event) + "\n")

    def truncate_log(self, step: int) -> None:
        """Forget events after ``step`` (a resumed run replays them)."""
        if not self.metrics_path.exists():
            return
        keep = []
        for line in self.metrics_path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by the crash
            if record.get("event") == "Done":
                continue
            if record.get("event") == "Started" or record.get("step", 0) <= step:
                keep.append(line)
        atomic_write_text(self.metrics_path, "".join(k + "\n" for k in keep))

    def save_checkpoint(self, step: int, model: Any, state: dict[str, Any], keep: int) -> Path:
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        final = self.checkpoints / f"step-{step:07d}"
        tmp = temp_dir(final)
        try:
            model.save(tmp / "model", card="")
            torch.save(state, tmp / "trainer_state.pt")
            discard_dir(final)  # the same step saved again (an interrupted or failed run)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        for old in self._checkpoint_dirs()[:-keep] if keep > 0 else []:
            discard_dir(old)
        return final

    def _checkpoint_dirs(self) -> list[Path]:
        if not self.checkpoints.is_dir():
            return []
        return sorted(p for p in self.checkpoints.iterdir() if p.is_dir() and p.name.startswith("step-"))

    def has_checkpoint(self, step: int) -> bool:
        return (self.checkpoints / f"step-{step:07d}" / "trainer_state.pt").is_file()

    def latest_checkpoint_path(self) -> Path | None:
        dirs = self._checkpoint_dirs()
        return dirs[-1] if dirs else None

    def latest_checkpoint(self) -> tuple[Path, dict[str, Any]] | None:
        """The newest complete checkpoint (half-written ones never carry the final name)."""
        for path in reversed(self._checkpoint_dirs()):
            if not (path / "model" / "modules.json").is_file():
                continue
            try:
                state = torch.load(path / "trainer_state.pt", map_location="cpu", weights_only=True)
            except (OSError, RuntimeError, EOFError):
                continue
            return path / "model", state
        return None

    def clear_checkpoints(self) -> None:
        discard_dir(self.checkpoints)
        remove_leftovers(self.path, [self.checkpoints.name])


@dataclass(frozen=True)
class RunInfo:
    """A run found on disk: its settings, its curves and how it ended."""

    path: Path
    config: dict[str, Any]
    history: RunHistory

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def status(self) -> str:
        done = self.history.done
        return done.reason if done is not None else "unfinished"


def list_runs(root: str | Path = "runs") -> list[RunInfo]:
    """Every run under ``root`` (folders with a config.json), oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = []
    for path in sorted(p for p in root.iterdir() if (p / "config.json").is_file()):
        try:
            config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            continue
        history = RunHistory.from_jsonl(path / "metrics.jsonl") if (path / "metrics.jsonl").exists() else RunHistory()
        runs.append(RunInfo(path, config, history))
    return sorted(runs, key=lambda r: (r.path / "config.json").stat().st_mtime)


def fresh_run_path(root: str | Path, name: str) -> Path:
    """``root/name``, or ``root/name-2``, ``-3``... when taken: two runs never share a folder.

    The folder is created here (``mkdir`` fails if another run took the name a moment before), so
    two runs started in the same second, from two dashboards or two terminals, get two folders.
    Under a launcher only the main process (``RANK`` 0) creates it; the trainer gives every
    process the main one's folder.
    """
    root = Path(root)
    claim = launch_rank() == 0
    if claim:
        root.mkdir(parents=True, exist_ok=True)
    n = 0
    while True:
        n += 1
        path = root / (name if n == 1 else f"{name}-{n}")
        if not claim:
            if not path.exists():
                return path
            continue
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
