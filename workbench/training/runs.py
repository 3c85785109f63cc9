"""The run directory: what a run leaves on disk, written so that a crash never breaks it.

    runs/NAME/
      config.json        # training config, loss, data and model facts
      metrics.jsonl      # every event, one JSON line each (replay with RunHistory.from_jsonl)
      checkpoints/step-000120/{model/, trainer_state.pt}   # resumable
      best/              # the best model so far (by the primary metric), while the run trains
      model/             # the final model with its card

Once ``model/`` is saved and ``Done`` logged, ``best/`` goes (``model/`` then holds the best weights,
with ``keep_best``; without it ``best/`` is never written), as do the checkpoints: a finished run
keeps one copy of its model. A run that stops before its final save keeps both, for ``--resume``.

Every file and folder is written aside and renamed into place, and a folder is renamed aside
before it is deleted (:mod:`workbench.atomic`, which names what is aside): a crash never leaves a
half-written or half-deleted folder under a name that a resume would read.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from workbench.atomic import atomic_write_text, discard_dir, leftovers, remove_leftovers, temp_dir
from workbench.training.events import Event, RunHistory, to_json


class RunFolderBusy(RuntimeError):
    """Another process is running in this run folder; the message names it."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def launch_rank() -> int:
    """This process's rank under torchrun / accelerate launch (``RANK``); 0 when not launched."""
    return int(os.environ.get("RANK", "0"))


def settings_changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """What differs between two ``config.json`` contents, as ``{"train.lr": [old, new], ...}``.

    Compared: the training config, the loss (its name and hyper-parameters) and, when both have
    it, the recipe's other sections (model, teacher, data, eval). Facts that a run computes
    (data sizes, sources, the precision used) are not settings and are not compared.

    Example:
        >>> a = {"train": {"lr": 5e-05, "seed": 0}, "loss": {"name": "MNRL", "params": {"scale": 20.0}}}
        >>> b = {"train": {"lr": 0.01, "seed": 0}, "loss": {"name": "MNRL", "params": {"scale": 10.0}}}
        >>> settings_changes(a, b)
        {'train.lr': [5e-05, 0.01], 'loss.scale': [20.0, 10.0]}
    """

    def plain(config: dict[str, Any]) -> dict[str, Any]:
        config = json.loads(json.dumps(config, default=str))  # as config.json holds it
        if "recipe" in before and "recipe" in after:  # every section of the recipe, as written
            return {k: v for k, v in config["recipe"].items() if k not in ("name", "description")}
        loss = config.get("loss") or {}
        return {"train": config.get("train", {}), "loss": {"name": loss.get("name"), **(loss.get("params") or {})}}

    def flat(value: Any, key: str, into: dict[str, Any]) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                flat(v, f"{key}.{k}" if key else k, into)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, v in enumerate(value):
                flat(v, f"{key}[{i}]", into)
        else:
            into[key] = value

    old, new = {}, {}
    flat(plain(before), "", old)
    flat(plain(after), "", new)
    return {k: [old.get(k), new.get(k)] for k in dict.fromkeys([*old, *new]) if old.get(k) != new.get(k)}


def refuse_changes(path: Path, changes: dict[str, list[Any]]) -> None:
    """Raise the one-line ``ValueError`` of a resume whose settings differ (see :func:`settings_changes`)."""
    if changes:
        listed = ", ".join(f"{k} {before!r} -> {after!r}" for k, (before, after) in changes.items())
        raise ValueError(f"--resume: the run in {path} started with other settings ({listed}); resume with the "
                         "settings it started with, or allow the change (--allow-changes, allow_changes=True: "
                         "recorded in metrics.jsonl, config.json and the model card)")


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

    LOCK = ".lock"  # {"pid", "host", "since", "token"} of the process running in the folder

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self.metrics_path = self.path / "metrics.jsonl"
        self.best_path = self.path / "best"
        self.model_path = self.path / "model"
        self.checkpoints = self.path / "checkpoints"
        self.lock_path = self.path / self.LOCK
        self._token: str | None = None

    # ----- one process per run folder ----------------------------------------------------------
    def holder(self) -> dict[str, Any] | None:
        """Who holds the folder's lock, if a live process does (a stale lock, whose process on
        this host is gone, counts as free)."""
        try:
            owner = json.loads(self.lock_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {"pid": None, "host": None, "since": None, "token": None}  # unreadable: held, by whom unknown
        if owner.get("host") == socket.gethostname() and isinstance(owner.get("pid"), int) and not _alive(owner["pid"]):
            return None
        return owner

    def refuse_if_busy(self) -> None:
        """Raise :class:`RunFolderBusy`, naming the holder, when a live process holds the folder."""
        owner = self.holder()
        if owner is None:
            return
        who = (f"process {owner['pid']} on {owner['host']} (since {owner['since']})" if owner.get("pid")
               else "a process whose lock file cannot be read")
        raise RunFolderBusy(f"{self.path} is in use by {who}; wait for it to finish, use another --run-dir, or, if "
                            f"that process is gone, delete {self.lock_path}")

    def claim(self) -> None:
        """Take the folder for this run, or raise :class:`RunFolderBusy` naming the process that has it.

        The record is written to a file of this process's own first and then hard-linked as the lock,
        which fails when the lock exists: so of two simultaneous starts exactly one gets it, and the
        other never reads a lock that is still empty (it names the holder). A lock left by a process
        that is gone (same host, pid not running) is taken over.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "since": time.strftime("%Y-%m-%d %H:%M:%S"), "token": token})
        mine = self.path / f".lock.{token[:12]}"
        mine.write_text(record + "\n", encoding="utf-8")
        try:
            self._take(mine, token)
        finally:
            mine.unlink(missing_ok=True)

    def _take(self, mine: Path, token: str) -> None:
        for _ in range(3):
            try:
                os.link(mine, self.lock_path)
            except FileExistsError:
                self.refuse_if_busy()
                try:  # stale: move it aside (one of several racers does) and try again
                    os.replace(self.lock_path, self.path / f".lock.stale-{token[:8]}")
                    (self.path / f".lock.stale-{token[:8]}").unlink(missing_ok=True)
                except FileNotFoundError:
                    pass
                continue
            self._token = token
            return
        raise RunFolderBusy(f"{self.path}: could not take the lock {self.lock_path}; try again")

    def release(self) -> None:
        """Give the folder back (only the lock this object took)."""
        if self._token is None:
            return
        try:
            owner = json.loads(self.lock_path.read_text(encoding="utf-8"))
            if owner.get("token") == self._token:
                self.lock_path.unlink()
        except (OSError, ValueError):
            pass
        self._token = None

    def start(self, config: dict[str, Any]) -> None:
        """Begin a fresh run here (an earlier run's log and checkpoints are replaced)."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.remove_leftovers()
        atomic_write_text(self.path / "config.json", json.dumps(config, indent=2, default=str) + "\n")
        atomic_write_text(self.metrics_path, "")
        self.clear_checkpoints()

    def read_config(self) -> dict[str, Any]:
        """The run's ``config.json`` ({} when it has none)."""
        path = self.path / "config.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    def update_config(self, config: dict[str, Any]) -> None:
        """Replace ``config.json`` (a resumed run that goes on with changed settings)."""
        atomic_write_text(self.path / "config.json", json.dumps(config, indent=2, default=str) + "\n")

    def leftovers(self) -> list[Path]:
        """What :meth:`remove_leftovers` would delete (nothing is removed here)."""
        return [*leftovers(self.path, self._final_names()), *leftovers(self.checkpoints, ["step-*"])]

    def _final_names(self) -> list[str]:
        return [self.model_path.name, self.best_path.name, self.checkpoints.name, "config.json", self.metrics_path.name]

    def remove_leftovers(self) -> None:
        """Delete what a killed writer left aside beside the run's files and folders and beside each
        checkpoint: half-written models and checkpoints, folders swapped out or being deleted, temporary
        files of atomic writes (``.model.saving-*``, ``.best.old-*``, ``checkpoints/.step-0000120.saving-*``,
        ``.metrics.jsonl.writing-*``...: the one naming rule of :mod:`workbench.atomic`). Call it only when
        no process is writing the run (before it starts or resumes); nothing under a final name is touched.
        """
        remove_leftovers(self.path, self._final_names())
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

    def discard_best(self) -> None:
        """Delete ``best/`` (renamed aside first, as every folder deleted here). Call it only once the
        final ``model/`` is saved and ``Done`` logged: with ``keep_best`` the final model holds the best
        weights, so ``best/`` is a second copy; a run that has not saved its final model must keep it
        (a resume takes the best weights back from it)."""
        discard_dir(self.best_path)
        remove_leftovers(self.path, [self.best_path.name])


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
        if done is not None:
            return done.reason
        return "running" if RunDir(self.path).holder() is not None else "unfinished"


def list_runs(root: str | Path = "runs") -> list[RunInfo]:
    """Every run under ``root`` (folders with a config.json), oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    return read_runs(p for p in root.iterdir() if (p / "config.json").is_file())


def read_runs(paths: Iterable[Path]) -> list[RunInfo]:
    """The runs in ``paths`` (folders with a config.json), oldest first; an unreadable config.json is skipped."""
    runs = []
    for path in sorted(paths):
        try:
            config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
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
