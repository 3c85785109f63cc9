"""Random number generator state: capture it, restore it, seed it.

Two uses share these functions: a checkpoint keeps every generator a training step draws from
(Python's ``random``, NumPy's global generator, torch's CPU generator and every CUDA device's) so
that a resumed run draws the same dropout masks, and GradCache keeps torch's generators before
each mini-batch so that its second forward pass replays the first one's dropout.

This module imports nothing from ``workbench``: the losses and the training loop both use it.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def capture(device: torch.device | str | None = None, python_numpy: bool = True) -> dict[str, Any]:
    """The generators' state now, as plain lists and tensors.

    Args:
        device: the accelerator whose generator is kept with torch's CPU one. ``None``: every CUDA
            device (what a checkpoint needs); ``"cuda:1"`` or ``"mps"``: that one only (what a
            replay on one device needs); ``"cpu"``: none.
        python_numpy: also keep Python's ``random`` and NumPy's global generator.

    Returns:
        A dict that :func:`restore` takes and that loads with ``torch.load(weights_only=True)``:
        ``"python"`` and ``"numpy"`` (with ``python_numpy``), ``"torch"`` (the CPU generator),
        then ``"cuda"`` (a list, one state per CUDA device, with ``device=None`` when CUDA is
        available) or one key named after the device (``"cuda:1"``, ``"mps"``).

    Example:
        >>> state = capture()
        >>> first = torch.rand(3), random.random(), np.random.rand()
        >>> restore(state)
        >>> again = torch.rand(3), random.random(), np.random.rand()
        >>> torch.equal(first[0], again[0]) and first[1:] == again[1:]
        True
    """
    state: dict[str, Any] = {}
    if python_numpy:
        version, internal, gauss = random.getstate()
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        state["python"] = [version, list(internal), gauss]
        state["numpy"] = [kind, keys.tolist(), pos, has_gauss, cached]
    state["torch"] = torch.get_rng_state()
    if device is None:
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        state[f"cuda:{index}"] = torch.cuda.get_rng_state(index)
    elif device.type == "mps":
        state["mps"] = torch.mps.get_rng_state()
    return state


def restore(state: dict[str, Any]) -> None:
    """Set the generators to a state from :func:`capture` (also one read back from a checkpoint).

    A generator the state does not hold is left as it is; so are the CUDA devices when CUDA is not
    available here (a checkpoint written on a GPU machine, resumed on a CPU).
    """
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    if "numpy" in state:
        kind, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    for key, value in state.items():
        if key == "cuda" and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(value)
        elif key.startswith("cuda:"):
            torch.cuda.set_rng_state(value, int(key.split(":", 1)[1]))
        elif key == "mps":
            torch.mps.set_rng_state(value)


def seed_all(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch's (CPU and every CUDA device).

    Example:
        >>> seed_all(3); a = torch.rand(2)
        >>> seed_all(3); torch.equal(a, torch.rand(2))
        True
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
