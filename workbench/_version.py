"""The package version, in a module that imports nothing, so any module can read it without a cycle."""

from __future__ import annotations

__version__ = "0.1.0"
