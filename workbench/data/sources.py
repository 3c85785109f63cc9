"""Where data comes from: the data-directory setting, the Hugging Face hub, and provenance.

A named data set is looked for, in order, at an explicit ``path``, in the folder named by the
``WORKBENCH_DATA`` environment variable (laid out like ``../shared/data``), on the hub (unless
``HF_HUB_OFFLINE`` or ``HF_DATASETS_OFFLINE`` is 1), and last in the built-in sample. Every
dataset the workbench returns records where it came from in ``dataset.info``; :func:`source`
reads it back.

Example:
    >>> from datasets import Dataset
    >>> ds = tag(Dataset.from_dict({"x": [1]}), "file", "/data/x.tsv", "x from /data/x.tsv (1 rows)")
    >>> source(ds).kind, str(source(ds))
    ('file', 'x from /data/x.tsv (1 rows)')
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from datasets import Dataset

ENV_VAR = "WORKBENCH_DATA"
HUB_URL = "https://huggingface.co/datasets/"
SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples"

SourceKind = Literal["file", "hub", "sample", "unknown"]
Loader = Callable[[], Dataset]

logger = logging.getLogger("workbench.data")


class DataError(ValueError):
    """A data file is missing, unreadable or malformed; the message names the file and line."""


class SampleDataWarning(UserWarning):
    """The built-in smoke-test sample is used because the real data set was not found."""


@dataclass(frozen=True)
class Source:
    """Where a dataset came from.

    Attributes:
        kind: ``"file"`` (a local file or files), ``"hub"`` (the Hugging Face hub),
            ``"sample"`` (the built-in smoke-test sample) or ``"unknown"``.
        location: file path(s) joined by ``"; "``, or the hub URL.
        description: one line for people, e.g. ``"STS-B en test from /d/stsb-en-test.tsv (1379 pairs)"``.
    """

    kind: SourceKind
    location: str
    description: str

    @property
    def is_sample(self) -> bool:
        """True for the built-in sample (numbers from it mean nothing)."""
        return self.kind == "sample"

    def __str__(self) -> str:
        return self.description


def tag(dataset: Dataset, kind: SourceKind, location: str, description: str) -> Dataset:
    """Record where ``dataset`` came from in its ``info`` (kept by select/shuffle/map).

    Args:
        dataset: the dataset, changed in place.
        kind: ``"file"``, ``"hub"`` or ``"sample"``.
        location: the file path(s) or hub id/URL.
        description: a one-line summary for people.

    Returns:
        The same dataset.
    """
    if kind == "hub" and not location.startswith(HUB_URL):
        location = HUB_URL + location
    # datasets keeps ``info`` through select/shuffle/map/filter/concatenate, so the record
    # follows the data; ``homepage`` carries the machine-readable location.
    dataset.info.description = description
    dataset.info.homepage = location
    logger.info("%s", description)
    return dataset


def source(dataset: Dataset) -> Source:
    """Where a dataset returned by :mod:`workbench.data` came from.

    Args:
        dataset: a dataset from a ``load_*`` function (or any dataset).

    Returns:
        A :class:`Source`; ``str(source(ds))`` is a line such as
        ``"STS-B en test from /data/stsb/stsb-en-test.tsv (1379 pairs)"``.
    """
    location = dataset.info.homepage or ""
    description = dataset.info.description or f"a dataset of {dataset.num_rows} rows"
    kind: SourceKind
    if location.startswith(HUB_URL):
        kind = "hub"
    elif location and all(Path(p).parent == SAMPLES_DIR for p in location.split("; ")):
        kind = "sample"
    elif location:
        kind = "file"
    else:
        kind = "unknown"
    return Source(kind, location, description)


def data_dir() -> Path | None:
    """The data folder named by ``WORKBENCH_DATA``, or ``None`` when it is not set.

    Returns:
        The folder (laid out like ``../shared/data``: ``stsb/stsb-en-test.tsv``, ...) or ``None``.

    Raises:
        DataError: ``WORKBENCH_DATA`` is set but is not a folder.
    """
    value = os.environ.get(ENV_VAR, "").strip()
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise DataError(f"{ENV_VAR}={value} is not a folder (expected one laid out like shared/data)")
    return path


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def hub_enabled() -> bool:
    """False when ``HF_HUB_OFFLINE`` or ``HF_DATASETS_OFFLINE`` is set to 1."""
    return not (_truthy("HF_HUB_OFFLINE") or _truthy("HF_DATASETS_OFFLINE"))


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the hub endpoint opens within ``timeout`` seconds.

    Checked before ``datasets.load_dataset`` so that a machine without network falls through
    to the next source in seconds instead of waiting on the hub client's retries.

    Args:
        timeout: seconds to wait, name resolution included.

    Returns:
        True if the hub host accepted a connection.
    """
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    result: list[bool] = []

    def connect() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    # getaddrinfo ignores socket timeouts, so the attempt runs in a daemon thread we stop waiting on.
    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def from_hub(name: str, load: Callable[[], Dataset]) -> Dataset | None:
    """Run ``load`` (a ``datasets.load_dataset`` call) if the hub is enabled and reachable.

    Args:
        name: what is loaded, for the log and warning.
        load: a function that downloads and returns the dataset.

    Returns:
        The dataset, or ``None`` when offline, unreachable, or the download failed (a warning
        says why), so the caller falls through to the next source.
    """
    if not hub_enabled():
        # Offline, the datasets library still reads what the local hub cache holds.
        try:
            return load()
        except Exception as exc:
            logger.debug("%s: not in the local hub cache (offline): %s", name, exc)
            return None
    if not hub_reachable():
        logger.info("%s: the hub cannot be reached; skipping it", name)
        return None
    try:
        return load()
    except Exception as exc:  # any download/parse failure means: use the next source
        warnings.warn(f"{name}: loading from the hub failed ({type(exc).__name__}: {exc})", stacklevel=4)
        return None


def warn_sample(name: str, rows: int, unit: str, real: str, stacklevel: int = 2) -> None:
    """Announce that the built-in sample stands in for a real data set.

    Args:
        name: what was asked for, e.g. ``"STS-B en test"``.
        rows: rows in the returned sample.
        unit: what a row is (``"pairs"``, ``"triplets"``, ...).
        real: the real data set to point people to, e.g. ``"STS-B"``.
        stacklevel: passed to ``warnings.warn`` so the warning names the caller's line.
    """
    warnings.warn(
        f"{name}: using the built-in SAMPLE of {rows} {unit}: a smoke-test sample, not a benchmark; "
        f"set {ENV_VAR}=<folder laid out like shared/data> for the real {real}",
        SampleDataWarning,
        stacklevel=stacklevel + 1,
    )


def resolve(
    name: str,
    unit: str,
    rel_paths: list[str],
    path: str | os.PathLike[str] | None,
    read: Callable[[list[Path]], Dataset],
    hub: tuple[str, Loader] | None,
    sample: Callable[[], tuple[Dataset, list[Path]]],
    real: str,
) -> Dataset:
    """Load a named data set from the first place that has it, and record which.

    The order: the explicit ``path``; the ``WORKBENCH_DATA`` folder; the hub; the sample.

    Args:
        name: what is loaded, for messages (``"STS-B en test"``).
        unit: what a row is, for messages (``"pairs"``).
        rel_paths: the files inside a ``shared/data``-like folder (``["stsb/stsb-en-test.tsv"]``).
        path: an explicit file (read as is) or folder; ``None`` to use the setting.
        read: turns the local files into the dataset.
        hub: ``(hub id, loader)``, or ``None`` when the set has no hub copy.
        sample: returns the built-in sample and the files it came from.
        real: the real data set's name, for the sample warning.

    Returns:
        The dataset, tagged with its :class:`Source`.

    Raises:
        DataError: an explicit ``path`` lacks the files, or a local file is malformed.
    """
    files = _local_files(name, rel_paths, path)
    if files is not None:
        ds = read(files)
        where = ", ".join(str(f) for f in files)
        location = "; ".join(str(f.resolve()) for f in files)
        return tag(ds, "file", location, f"{name} from {where} ({ds.num_rows} {unit})")
    if hub is not None:
        hub_id, load = hub
        ds = from_hub(name, load)
        if ds is not None:
            return tag(ds, "hub", hub_id, f"{name} from the hub ({hub_id}, {ds.num_rows} {unit})")
    ds, sample_files = sample()
    # stacklevel 3: warn_sample <- resolve <- load_*, so the warning names the caller's line
    warn_sample(name, ds.num_rows, unit, real, stacklevel=3)
    location = "; ".join(str(f) for f in sample_files)
    return tag(
        ds,
        "sample",
        location,
        f"{name}: the built-in SAMPLE ({ds.num_rows} {unit}; a smoke test, not a benchmark)",
    )


def _local_files(name: str, rel_paths: list[str], path: str | os.PathLike[str] | None) -> list[Path] | None:
    """The local files for ``rel_paths``, or ``None`` to go on to the hub and the sample."""
    if path is not None:
        given = Path(path).expanduser()
        if given.is_file():
            return [given]
        if not given.exists():
            raise DataError(f"{given}: no such file or folder (looking for {name})")
        root, explicit = given, True
    else:
        found_root = data_dir()
        if found_root is None:
            return None
        root, explicit = found_root, False
    found = {rel: _in_folder(root, rel) for rel in rel_paths}
    missing = [rel for rel, file in found.items() if file is None]
    if not missing:
        return [file for file in found.values() if file is not None]
    if explicit:
        raise DataError(f"{root}: has no {', '.join(missing)} (looking for {name})")
    # A data folder may hold only some sets; say so, then try the hub and the sample.
    warnings.warn(f"{ENV_VAR}={root} has no {', '.join(missing)}; looking elsewhere for {name}", stacklevel=4)
    return None


def _in_folder(folder: Path, rel: str) -> Path | None:
    # Accept the data root (``data/stsb/stsb-en-test.tsv``) or the set's own folder (``stsb/...``).
    for candidate in (folder / rel, folder / Path(rel).name):
        if candidate.is_file():
            return candidate
    return None
