"""Writing files and folders so that a crash never leaves a half-written one under its final name.

Everything is written aside and renamed into place; a folder is renamed aside before it is
deleted. What is aside has one naming rule, so that whoever finds it after a crash can tell it
from real output: the temporary of ``folder/NAME`` is ``folder/.NAME.KIND-RANDOM`` where KIND says
why it is there (:data:`KINDS`): ``writing`` (a file being written), ``saving`` (a folder being
filled), ``old`` (a folder swapped out by a new one), ``deleting`` (a folder being removed).
:func:`remove_leftovers` deletes exactly those names, and nothing else.

What is written gets the modes a plain ``open()``/``mkdir()`` would give: ``0o666``/``0o777``
less the user's umask (``tempfile`` alone gives 600/700, which hides a shared model from the
other users of a machine); a replaced file keeps its mode.

Example:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> atomic_write_text(folder / "config.json", "{}\\n")
    >>> aside(folder / "model", "saving").name.startswith(".model.saving-")
    True
    >>> _ = temp_dir(folder / "model")  # a save that a crash interrupted
    >>> sorted(p.name for p in folder.iterdir())[0].startswith(".model.saving-")
    True
    >>> remove_leftovers(folder, ["model"])
    >>> sorted(p.name for p in folder.iterdir())
    ['config.json']
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

KINDS = ("writing", "saving", "old", "deleting")


def _umask_from_proc() -> int | None:
    """The umask as Linux reports it (``Umask:`` in /proc/self/status), read without changing it."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _umask_by_setting() -> int:
    # Setting the umask to read it is racy across threads, so this runs once, at import.
    old = os.umask(0o022)
    os.umask(old)
    return old


_UMASK_AT_IMPORT = _umask_from_proc()
if _UMASK_AT_IMPORT is None:
    _UMASK_AT_IMPORT = _umask_by_setting()


def current_umask() -> int:
    """The process umask: read live from /proc where there is one, else as it was when this module was imported.

    Example:
        >>> 0 <= current_umask() <= 0o777
        True
    """
    live = _umask_from_proc()
    return _UMASK_AT_IMPORT if live is None else live


def _prefix(path: Path, kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return f".{path.name}.{kind}-"


def aside(path: Path, kind: str) -> Path:
    """A fresh name beside ``path`` for it to be ``kind`` (``.NAME.KIND-RANDOM``); nothing is created."""
    return path.with_name(_prefix(path, kind) + uuid.uuid4().hex[:8])


def temp_dir(path: Path) -> Path:
    """Create an empty folder beside ``path`` to be filled and then renamed to ``path`` (:func:`replace_dir`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=_prefix(path, "saving"), dir=path.parent))
    os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes it 700
    return tmp


def apply_umask(folder: Path) -> None:
    """Give ``folder`` and everything in it the modes a plain ``open()``/``mkdir()`` would (666/777 less the
    umask). Call it on a folder just filled, before :func:`replace_dir`: some writers (safetensors'
    ``save_file``) create their files 600 whatever the umask."""
    mask = current_umask()
    os.chmod(folder, 0o777 & ~mask)
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            if not os.path.islink(os.path.join(root, name)):
                os.chmod(os.path.join(root, name), 0o777 & ~mask)
        for name in files:
            if not os.path.islink(os.path.join(root, name)):
                os.chmod(os.path.join(root, name), 0o666 & ~mask)


def _file_mode(path: Path) -> int:
    """The mode a plain ``open(path, "w")`` would leave: an existing file's own, else 666 less the umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~current_umask()


@contextlib.contextmanager
def atomic_open(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; when the block ends without error it is synced to disk
    and renamed to ``path``, else removed. Readers see the old file or the new one, never half of one.

    Args:
        path: the file to write.
        mode: ``"w"`` (text, UTF-8) or ``"wb"``.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_prefix(path, "writing"), dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as fh:
            os.chmod(tmp, _file_mode(path))
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write a text file aside and rename it into place (see :func:`atomic_open`)."""
    with atomic_open(path, "w") as fh:
        fh.write(text)


def replace_dir(src: Path, dst: Path) -> None:
    """Move a finished folder ``src`` to ``dst``; an existing ``dst`` is renamed aside, then removed."""
    if dst.exists():
        old = aside(dst, "old")
        os.replace(dst, old)
        os.replace(src, dst)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(src, dst)


def discard_dir(path: Path) -> None:
    """Delete a folder, renaming it aside first: readers see it whole or not at all, never half-deleted."""
    if not path.exists():
        return
    trash = aside(path, "deleting")
    os.replace(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def leftovers(folder: Path, names: Iterable[str]) -> list[Path]:
    """What a killed writer left aside in ``folder`` for each of ``names`` (glob patterns of final
    names, e.g. ``"model"`` or ``"step-*"``): the ``.NAME.KIND-*`` files and folders, of every kind,
    sorted. Nothing is removed (:func:`remove_leftovers` does that)."""
    if not folder.is_dir():
        return []
    return sorted({old for name in names for kind in KINDS for old in folder.glob(f".{name}.{kind}-*")})


def remove_leftovers(folder: Path, names: Iterable[str]) -> None:
    """Delete what a killed writer left aside in ``folder`` for each of ``names`` (:func:`leftovers`).
    Call it only when no process is writing there."""
    for old in leftovers(folder, names):
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
