"""Reading the files of a model folder without trusting them.

Every file and folder the loader opens must resolve inside the model folder (a hub snapshot may
also point into its own ``blobs/``), JSON files must parse, and safetensors headers must be
whole; anything else raises :class:`ModelFileError`, one line naming the file and what to do.
This module imports nothing from the package, so the loader and every module class can use it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class ModelFileError(ValueError):
    """A model folder is damaged, inconsistent or unsafe; the one-line message names the file and what to do.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "model.safetensors").write_bytes(b"")  # an interrupted download
        >>> try:
        ...     tensor_shapes(folder / "model.safetensors")
        ... except ModelFileError as err:
        ...     print(str(err).replace(str(folder), "FOLDER"))
        FOLDER/model.safetensors is truncated or corrupt (header too small); save the model again or download it again
    """


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def read_json(path: Path) -> Any:
    """Parse a JSON file of a model folder.

    Raises:
        FileNotFoundError: when it is missing.
        ModelFileError: when it is not valid JSON.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} is missing") from None
    except UnicodeDecodeError:
        raise ModelFileError(f"{path} is not UTF-8 text (corrupt?); save the model again or download it again") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path} is a folder, not a JSON file") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        what = "empty" if not text.strip() else f"not valid JSON ({_one_line(err)})"
        raise ModelFileError(f"{path} is {what}; fix it, or save the model again or download it again") from None


def read_config(path: Path) -> dict[str, Any]:
    """A JSON file that must hold an object (a module's ``config.json``)."""
    cfg = read_json(path)
    if not isinstance(cfg, dict):
        raise ModelFileError(f"{path} must hold a JSON object, not {type(cfg).__name__}")
    return cfg


def tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """The name -> shape of every tensor in a safetensors file, from its header alone (no tensor data is read).

    Raises:
        ModelFileError: when the file is empty, truncated or its header is corrupt.
    """
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            return {name: tuple(fh.get_slice(name).get_shape()) for name in fh.keys()}
    except SafetensorError as err:
        reason = _one_line(err).removeprefix("Error while deserializing header: ")
        raise ModelFileError(f"{path} is truncated or corrupt ({reason}); save the model again or download it again") from None


def _hub_blobs(folder: Path) -> Path | None:
    """The ``blobs/`` folder of a hub cache repo when ``folder`` lies in one of its snapshots, else None.

    The hub cache keeps ``models--org--name/snapshots/REV/FILE`` as a symlink to ``../../blobs/HASH``.
    """
    for parent in folder.parents:
        if parent.name == "snapshots" and parent.parent.name.startswith(("models--", "datasets--", "spaces--")):
            blobs = parent.parent / "blobs"
            return blobs if blobs.is_dir() else None
    return None


def check_folder(folder: Path) -> None:
    """Refuse a folder with an entry (file or folder) that resolves outside it, e.g. ``config.json -> /elsewhere``.

    Entries that are not symlinks are inside by construction; a symlink may point anywhere inside
    the folder, or into the hub cache's ``blobs/`` when the folder is a hub snapshot.
    """
    root = folder.resolve()
    allowed = [root] + [b for b in (_hub_blobs(root),) if b is not None]
    try:
        entries = list(os.scandir(root))
    except (FileNotFoundError, NotADirectoryError):
        return  # nothing to open; the module's loader says what is missing
    for entry in entries:
        if not entry.is_symlink():
            continue
        target = Path(entry.path).resolve()
        if not any(target.is_relative_to(a) for a in allowed):
            raise ModelFileError(
                f"{folder}/{entry.name} points outside the model folder (to {target}); "
                "copy the file into the folder instead of linking to it"
            )


def _inside(root: Path, rel: str) -> Path:
    """``root / rel``, refused when it resolves (through ``..`` or symlinks) outside ``root``."""
    if not (root / rel).resolve().is_relative_to(root.resolve()):
        raise ModelFileError(f"{root}/modules.json points outside the model folder: {rel!r}")
    return root / rel
