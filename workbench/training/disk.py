"""What run folders take on disk, and a clean-up that frees it while keeping every run's curves.

A finished run keeps one copy of its model (``model/``); runs from before that rule, or killed
while tidying up, may still hold ``best/`` (a copy of the same weights) and ``checkpoints/``.
:func:`clean_runs` removes those, and what killed writers left aside; asked to (``keep_models``),
it also removes the models of all but the newest runs. ``config.json`` and ``metrics.jsonl`` are
never touched, so :func:`~workbench.training.runs.list_runs` and the dashboards still show every
run's settings and curves, and a run that a live process holds is left alone.

    workbench clean runs --dry-run     # what would go, and how much it frees
    workbench clean runs               # best/ and checkpoints/ of finished runs, leftovers
    workbench clean runs --keep 2      # ...and the models of all but the 2 newest runs

Example:
    >>> import tempfile
    >>> from workbench.training.events import Done
    >>> run = RunDir(Path(tempfile.mkdtemp()) / "demo")  # a finished run from before best/ was removed
    >>> run.start({"lr": 2e-5})
    >>> run.log(Done(step=10, reason="completed", elapsed_s=3.0))
    >>> for folder in (run.model_path, run.best_path):
    ...     folder.mkdir()
    ...     _ = (folder / "model.safetensors").write_bytes(bytes(1000))
    >>> report = clean_runs(run.path.parent)
    >>> report.summary(), sorted(p.name for p in run.path.iterdir())
    ('freed 1.0 kB in 1 run', ['config.json', 'metrics.jsonl', 'model'])
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from workbench.atomic import discard_dir
from workbench.formatting import size
from workbench.training.runs import RunDir, RunFolderBusy, RunInfo, read_runs

FINISHED = ("completed", "stopped")  # the Done reasons of a run whose model/ is its final model


def folder_bytes(path: Path) -> int:
    """The bytes of the files under ``path`` (a file: its own size; nothing there: 0). Links are
    counted as links, never followed.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "a.bin").write_bytes(bytes(300))
        >>> folder_bytes(folder), folder_bytes(folder / "a.bin"), folder_bytes(folder / "absent")
        (300, 300, 0)
    """
    if not os.path.lexists(path):
        return 0
    if path.is_symlink() or not path.is_dir():
        return os.lstat(path).st_size
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except FileNotFoundError:  # removed while we counted (a run writing)
                pass
    return total


def find_runs(root: str | Path) -> list[RunInfo]:
    """Every run under ``root``, at any depth, oldest first: the runs of ``runs/`` and the trials of
    the sweeps in it (``runs/sweeps/NAME/trial-000``); ``root`` itself when it is a run folder.

    A run folder is one with a ``config.json`` that is not a saved model's (a model folder has a
    ``modules.json``); a run's own folders (``model/``, ``checkpoints/``) and dot-named folders are
    not searched. Symbolic links are not followed.
    """
    root = Path(root).expanduser()
    found = []
    for folder, dirs, files in os.walk(root):
        if "config.json" in files and "modules.json" not in files:
            found.append(Path(folder))
            dirs[:] = []
        else:
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    return read_runs(found)


@dataclass(frozen=True)
class RunDisk:
    """What one run folder holds on disk, in bytes; ``None``: that folder is not there.

    Example:
        >>> disk = RunDisk(Path("runs/a"), "completed", model=61_200_000, best=61_200_000)
        >>> disk.finished, disk.total, size(disk.total)
        (True, 122400000, '122.4 MB')
    """

    path: Path
    status: str  # how the run ended (RunInfo.status); "running" whenever a live process holds the folder
    model: int | None = None  # model/, the final model
    best: int | None = None  # best/, the best weights so far (a copy of model/ once the run finished)
    checkpoints: int | None = None  # checkpoints/, what a resume starts from
    leftovers: tuple[tuple[Path, int], ...] = ()  # what killed writers left aside, with its bytes
    other: int = 0  # everything else: config.json, metrics.jsonl, the lock

    @property
    def finished(self) -> bool:
        """The run ended with its final model saved: ``best/`` and ``checkpoints/`` are no longer needed."""
        return self.status in FINISHED and self.model is not None

    @property
    def total(self) -> int:
        """Bytes of the whole folder (what lies aside in ``checkpoints/`` is counted with it)."""
        beside = sum(n for p, n in self.leftovers if p.parent == self.path)
        return sum(n or 0 for n in (self.model, self.best, self.checkpoints)) + beside + self.other

    def line(self) -> str:
        """One line for a listing: ``runs/a  completed  model 61.2 MB  best 61.2 MB  total 122.4 MB``."""
        parts = [f"{name} {size(n)}" for name, n in (("model", self.model), ("best", self.best),
                                                      ("checkpoints", self.checkpoints)) if n is not None]
        aside = sum(n for _, n in self.leftovers)
        if aside:
            parts.append(f"leftovers {size(aside)}")
        return "  ".join([str(self.path), self.status, *parts, f"total {size(self.total)}"])


def disk_usage(root: str | Path = "runs") -> list[RunDisk]:
    """What each run under ``root`` (:func:`find_runs`) holds on disk, oldest first. Nothing is changed."""
    usage = []
    for info in find_runs(root):
        run = RunDir(info.path)
        status = "running" if run.holder() is not None else info.status
        parts = {p: folder_bytes(p) if p.is_dir() else None for p in (run.model_path, run.best_path, run.checkpoints)}
        aside = tuple((p, folder_bytes(p)) for p in run.leftovers())
        counted = {*parts, *(p for p, _ in aside)}
        other = sum(folder_bytes(p) for p in info.path.iterdir() if p not in counted)
        usage.append(RunDisk(info.path, status, *parts.values(), leftovers=aside, other=other))
    return usage


def describe_disk(usage: Sequence[RunDisk]) -> str:
    """A listing of :func:`disk_usage`: a line per run and the total.

    Example:
        >>> print(describe_disk([RunDisk(Path("runs/a"), "completed", model=61_200_000, other=2_000)]))
        runs/a  completed  model 61.2 MB  total 61.2 MB
        1 run, 61.2 MB in all
    """
    runs = f"{len(usage)} run{'' if len(usage) == 1 else 's'}"
    return "\n".join([*(u.line() for u in usage), f"{runs}, {size(sum(u.total for u in usage))} in all"])


@dataclass(frozen=True)
class Removal:
    """One thing a clean-up removes: a folder or file of a run, its bytes and why it can go."""

    run: Path
    path: Path
    bytes: int
    why: str

    def line(self, dry_run: bool = False) -> str:
        return f"{'would remove' if dry_run else 'removed'} {self.path} ({size(self.bytes)}): {self.why}"


WHY_BEST = "a copy of the final model/"
WHY_CHECKPOINTS = "checkpoints of a finished run"
WHY_LEFTOVER = "left aside by a writer that was killed"
WHY_MODEL = "model of an older run (its curves stay)"
WHY_RESUME = "resume state of an older run (it can no longer be resumed)"


def plan_clean(usage: Sequence[RunDisk], keep_models: int | None = None) -> list[Removal]:
    """What :func:`clean_runs` removes, decided from :func:`disk_usage` alone (oldest run first).

    Always, for every run that no live process holds: ``best/`` and ``checkpoints/`` of finished
    runs (their ``model/`` holds the weights; see :attr:`RunDisk.finished`) and what killed writers
    left aside. With ``keep_models=N``, also the weights of every such run except the ``N`` newest
    that have a ``model/``: its ``model/``, and ``best/`` and ``checkpoints/`` of an unfinished run
    (which then can no longer be resumed). ``config.json`` and ``metrics.jsonl`` always stay.

    Example:
        >>> old = RunDisk(Path("runs/a"), "completed", model=60, best=60)
        >>> new = RunDisk(Path("runs/b"), "completed", model=60)
        >>> live = RunDisk(Path("runs/c"), "running", best=60, checkpoints=200)
        >>> [(str(r.path), r.bytes) for r in plan_clean([old, new, live])]
        [('runs/a/best', 60)]
        >>> [(str(r.path), r.why) for r in plan_clean([old, new, live], keep_models=1)]
        [('runs/a/model', 'model of an older run (its curves stay)'), ('runs/a/best', 'a copy of the final model/')]
    """
    if keep_models is not None and keep_models < 0:
        raise ValueError(f"keep_models must be 0 or more (the newest models to keep), got {keep_models}")
    idle = [u for u in usage if u.status != "running"]
    with_model = [u.path for u in idle if u.model is not None]
    kept = set(with_model[max(0, len(with_model) - keep_models):]) if keep_models else set()
    plan = []
    for u in idle:
        drop = keep_models is not None and u.path not in kept
        parts = []
        if drop and u.model is not None:
            parts.append(("model", u.model, WHY_MODEL))
        if u.best is not None and (u.finished or drop):
            parts.append(("best", u.best, WHY_BEST if u.finished else WHY_RESUME))
        if u.checkpoints is not None and (u.finished or drop):
            parts.append(("checkpoints", u.checkpoints, WHY_CHECKPOINTS if u.finished else WHY_RESUME))
        plan += [Removal(u.path, u.path / name, n, why) for name, n, why in parts]
        gone = {u.path / name for name, _, _ in parts}  # what lies aside in checkpoints/ goes with it
        plan += [Removal(u.path, p, n, WHY_LEFTOVER) for p, n in u.leftovers if p.parent not in gone]
    return plan


@dataclass(frozen=True)
class CleanReport:
    """What :func:`clean_runs` removed (or, in a dry run, would remove) and the runs it left alone.

    Example:
        >>> gone = Removal(Path("runs/a"), Path("runs/a/best"), 61_200_000, WHY_BEST)
        >>> print("\\n".join(CleanReport((gone,), skipped=(Path("runs/b"),)).lines()))
        removed runs/a/best (61.2 MB): a copy of the final model/
        skipped runs/b: a running process holds it
        freed 61.2 MB in 1 run
    """

    removed: tuple[Removal, ...] = ()
    skipped: tuple[Path, ...] = ()  # runs in use by a live process, left alone
    dry_run: bool = False

    @property
    def freed(self) -> int:
        """Bytes freed (in a dry run: that a real run would free)."""
        return sum(r.bytes for r in self.removed)

    @property
    def runs(self) -> int:
        """How many runs lost something."""
        return len({r.run for r in self.removed})

    def summary(self) -> str:
        runs = f"{self.runs} run{'' if self.runs == 1 else 's'}"
        if self.dry_run:
            return f"would free {size(self.freed)} in {runs} (dry run: nothing was removed)"
        return f"freed {size(self.freed)} in {runs}"

    def lines(self) -> list[str]:
        """A line per removal, one per run skipped, then :meth:`summary`."""
        return [*(r.line(self.dry_run) for r in self.removed),
                *(f"skipped {p}: a running process holds it" for p in self.skipped), self.summary()]


def clean_runs(root: str | Path = "runs", *, keep_models: int | None = None, dry_run: bool = False) -> CleanReport:
    """Free the disk that the runs under ``root`` (:func:`find_runs`) no longer need; keep their curves.

    Removes what :func:`plan_clean` lists. Each run is taken (its lock, as a training takes it) while
    its folders are removed, so a run that starts or resumes meanwhile is skipped, not cut short; each
    folder is renamed aside before it is deleted, so a kill mid-way never leaves half a model under
    its name.

    Args:
        root: a folder of runs (``runs``), a sweep's folder, or one run folder.
        keep_models: ``None`` keeps every model; ``N`` removes the models of all but the ``N`` newest
            runs that have one (``0``: every model), and the resume state of unfinished runs.
        dry_run: remove nothing; the report says what would go.

    Raises:
        FileNotFoundError: ``root`` does not exist.
        ValueError: ``root`` is a file, or ``keep_models`` is negative.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such folder (give the folder that holds the runs, e.g. runs)")
    if not root.is_dir():
        raise ValueError(f"{root} is a file; give the folder that holds the runs (e.g. runs)")
    usage = disk_usage(root)
    plan = plan_clean(usage, keep_models)
    skipped = [u.path for u in usage if u.status == "running"]
    if dry_run:
        return CleanReport(tuple(plan), tuple(skipped), dry_run=True)
    removed = []
    for run in dict.fromkeys(r.run for r in plan):
        folder = RunDir(run)
        try:
            folder.claim()
        except RunFolderBusy:  # started or resumed since disk_usage looked
            skipped.append(run)
            continue
        try:
            for r in (r for r in plan if r.run == run):
                _remove(r.path, leftover=r.why == WHY_LEFTOVER)
                removed.append(r)
        finally:
            folder.release()
    return CleanReport(tuple(removed), tuple(skipped))


def _remove(path: Path, leftover: bool) -> None:
    if not leftover:
        discard_dir(path)  # renamed aside, then deleted: never half a model under its name
    elif path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)  # already aside
    else:
        path.unlink(missing_ok=True)
