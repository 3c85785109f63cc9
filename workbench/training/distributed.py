"""What the training loop needs to run under several processes, and several runs in one process.

Under ``torchrun`` / ``accelerate launch`` every process runs the same loop on its share of each
batch. These helpers keep the processes agreeing: one loss value, one decision to stop, one run
folder, averaged gradients where DDP's hooks cannot average them. With one process each is a
no-op that returns its input, so the loop calls them unconditionally.

``accelerator`` arguments are ``accelerate.Accelerator`` objects.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from typing import Any

import torch

from workbench.losses import CachedMultipleNegativesRankingLoss


def mean_over_processes(accelerator: Any, value: torch.Tensor) -> float:
    """A scalar averaged over all processes (itself with one process); every process gets it."""
    if accelerator.num_processes == 1:
        return float(value)
    return float(accelerator.reduce(value.float().reshape(1), reduction="mean"))


def any_process(accelerator: Any, flag: bool) -> bool:
    """True on every process when it is true on any (a stop asked for on one must end all)."""
    if accelerator.num_processes == 1:
        return flag
    return bool(accelerator.reduce(torch.tensor([float(flag)], device=accelerator.device), reduction="sum") > 0)


def from_main(accelerator: Any, obj: Any) -> Any:
    """The main process's ``obj`` (a picklable value) on every process."""
    if accelerator.num_processes == 1:
        return obj
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([obj], from_process=0)[0]


def gather_from_all(accelerator: Any, obj: Any) -> list[Any] | None:
    """Every process's ``obj`` (a picklable value), in process order; ``None`` with one process."""
    if accelerator.num_processes == 1:
        return None
    from accelerate.utils import gather_object

    return gather_object([obj])


def broadcast_parameters(accelerator: Any, params: Iterable[torch.nn.Parameter]) -> None:
    """Give every process the main process's values of ``params`` (DDP does it for the model's own)."""
    if accelerator.num_processes == 1:
        return
    import torch.distributed as dist

    with torch.no_grad():
        for p in params:
            dist.broadcast(p.data, src=0)


def average_gradients(accelerator: Any, params: Iterable[torch.nn.Parameter]) -> None:
    """Average the gradients of ``params`` over processes in one all-reduce, as DDP does in backward.

    For the gradients DDP's hooks do not see: those of parameters outside the DDP-wrapped model
    (a loss's own weights), and all of them when the loss re-runs the model inside its backward
    pass (see :func:`replays_forward_in_backward`).
    """
    if accelerator.num_processes == 1:
        return
    import torch.distributed as dist

    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])  # (n_params,)
    dist.all_reduce(flat)
    flat /= accelerator.num_processes
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def replays_forward_in_backward(loss: Any) -> bool:
    """Whether ``loss.backward()`` runs the model again (GradCache).

    Such a loss cannot embed through the DDP-wrapped model: DDP's hooks expect one forward pass
    per backward pass. It gets the bare model, and the loop averages the gradients afterwards.
    """
    return isinstance(loss, CachedMultipleNegativesRankingLoss)


class Running:
    """How many trainings are going in this process (two dashboards can train at once in one kernel).

    Example:
        >>> counter = Running()
        >>> with counter:
        ...     counter.count
        1
        >>> counter.count
        0
    """

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __enter__(self) -> Running:
        with self._lock:
            self.count += 1
        return self

    def __exit__(self, *exc: Any) -> None:
        with self._lock:
            self.count -= 1


RUNNING = Running()  # entered by every Trainer.fit of this process


def forget_accelerate_state(precision: str, cpu: bool) -> None:
    """Let the next Accelerator take new settings, in a process that is not one of several.

    accelerate keeps one state per process and refuses a second Accelerator with another
    ``mixed_precision`` (or a CPU one after a GPU one), telling the user to restart the runtime:
    in a notebook, the second run after a precision change would fail. One process has nothing
    to coordinate, so its state is dropped before each run; under torchrun / accelerate launch
    (several processes) it is kept, and every run there comes from the same recipe. It is also
    kept while another training in this process is using it (see :data:`RUNNING`), and a run that
    needs other settings is refused with a plain message (accelerate's would say to restart the
    runtime).

    Args:
        precision: the ``mixed_precision`` the next Accelerator gets.
        cpu: whether it runs on the CPU.
    """
    from accelerate.state import AcceleratorState, PartialState

    if RUNNING.count > 1:
        state = AcceleratorState._shared_state
        if state and (state.get("_mixed_precision") != precision or (state["device"].type == "cpu") != cpu):
            theirs = f"mixed_precision={state.get('_mixed_precision')!r} on {state['device'].type}"
            raise RuntimeError(f"another training in this process is running with {theirs}; this one needs "
                               f"mixed_precision={precision!r} on {'cpu' if cpu else 'the GPU'}: wait for it to "
                               "finish (or Stop it), or use the same settings")
        return
    if PartialState._shared_state and PartialState().num_processes > 1:
        return
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return
    AcceleratorState._reset_state(reset_partial_state=True)  # accelerate's own tests reset it this way
