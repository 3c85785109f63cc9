"""How durations and numbers are written for people: log lines, tables, model cards and widgets.

Example:
    >>> duration(4.25), duration(42), duration(185), duration(3725)
    ('4.2s', '42s', '3m05s', '1h02m')
    >>> duration_words(102.0)
    '1.7 minutes (102 s)'
    >>> metric(0.81234), metric(None), number(2e-05), number(2e-05, digits=2), number(64)
    ('0.8123', '-', '2e-05', '2e-05', '64')
    >>> size(512), size(61_234_567), size(3_100_000_000)
    ('512 B', '61.2 MB', '3.1 GB')
"""

from __future__ import annotations

import numbers
from typing import Any


def duration(seconds: float) -> str:
    """A compact duration: ``4.2s`` (tenths below 10 s), ``42s``, ``3m05s``, ``1h02m``; negatives count as 0."""
    seconds = max(0.0, float(seconds))
    if seconds < 10:
        return f"{int(seconds * 10) / 10:.1f}s"  # truncated, as the whole seconds below are
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def duration_words(seconds: float) -> str:
    """A duration for documents: ``12.3 seconds``, ``1.7 minutes (102 s)``, ``1.25 hours (4500 s)``."""
    if seconds < 60:
        return f"{seconds:.1f} seconds"
    scaled = f"{seconds / 60:.1f} minutes" if seconds < 3600 else f"{seconds / 3600:.2f} hours"
    return f"{scaled} ({seconds:.0f} s)"


def metric(value: float | None) -> str:
    """An evaluation metric or a loss: 4 decimals (``0.8123``); ``-`` when there is none."""
    return "-" if value is None else f"{value:.4f}"


def number(value: Any, digits: int = 4) -> str:
    """A setting's value: a float with ``digits`` significant digits (``2e-05``), anything else as ``str``."""
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        return format(value, f".{digits}g")
    return str(value)


def size(n_bytes: int) -> str:
    """A size on disk in decimal units, as the set-up notes give them: ``512 B``, ``4.1 kB``, ``61.2 MB``, ``3.1 GB``."""
    value = float(max(0, n_bytes))
    if value < 1000:
        return f"{int(value)} B"
    for unit in ("kB", "MB", "GB"):
        value /= 1000
        if value < 999.95:
            return f"{value:.1f} {unit}"
    return f"{value / 1000:.1f} TB"
