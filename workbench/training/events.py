"""Events the training loop emits, and a history that any consumer can fill from them.

The notebook curves, the CLI log line, ``metrics.jsonl`` and the tests all consume the same
stream of small frozen records of plain numbers; none of them ever sees the trainer itself.

Example:
    >>> events = [Started(total_steps=100, examples=6400, batch_size=64),
    ...           Step(step=50, epoch=0.5, loss=0.41, lr=2e-5, examples_per_s=800.0, elapsed_s=4.0, total_steps=100),
    ...           Eval(step=50, epoch=0.5, metrics={"sts-dev_spearman_cosine": 0.81},
    ...                primary="sts-dev_spearman_cosine", value=0.81, is_best=True)]
    >>> for event in events:
    ...     print(format_event(event))
    training: 100 steps, 6400 examples, batch 64
    step     50/100 | epoch 0.50 | loss 0.4100 | lr 2.00e-05 | 800 ex/s | 4.0s elapsed, ~4.0s left
    eval step     50 | sts-dev_spearman_cosine 0.8100  (best so far)
    >>> from_json(to_json(events[1])) == events[1]
    True
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.formatting import duration, metric


@dataclass(frozen=True)
class Started:
    """The run is about to take its first step (``start_step`` > 0 when resuming)."""

    total_steps: int
    examples: int
    batch_size: int
    start_step: int = 0
    run_dir: str | None = None


@dataclass(frozen=True)
class Step:
    """Training progress, averaged over the last ``log_every`` steps."""

    step: int
    epoch: float
    loss: float
    lr: float
    examples_per_s: float
    elapsed_s: float
    total_steps: int


@dataclass(frozen=True)
class Eval:
    """An evaluation: flat metrics, the primary one and whether it is the best so far."""

    step: int
    epoch: float
    metrics: Mapping[str, float] = field(default_factory=dict)
    primary: str | None = None
    value: float | None = None
    is_best: bool = False


@dataclass(frozen=True)
class Checkpoint:
    step: int
    path: str


@dataclass(frozen=True)
class Done:
    """The run ended: ``reason`` is completed, stopped, interrupted or failed."""

    step: int
    reason: str
    elapsed_s: float
    best_step: int | None = None
    best_value: float | None = None
    model_path: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Changed:
    """A resumed run goes on with other settings than it started with (``allow_changes``):
    ``changes`` maps each changed key (``train.lr``) to ``[before, after]``; from ``step`` on the
    new values apply."""

    step: int
    changes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Preparing:
    """Work before the first step that takes a while (a teacher encoding the training sentences):
    ``done`` of ``total`` ``unit`` after ``elapsed_s`` seconds. Shown live; not a part of the run's
    curves (``metrics.jsonl`` does not record it)."""

    what: str
    done: int
    total: int
    elapsed_s: float = 0.0
    unit: str = "sentences"


Event = Started | Step | Eval | Checkpoint | Done | Changed | Preparing
EVENT_TYPES: dict[str, type] = {cls.__name__: cls for cls in (Started, Step, Eval, Checkpoint, Done, Changed, Preparing)}


def to_json(event: Event) -> str:
    """One JSON line; non-finite floats become null so every line stays valid JSON."""
    data = {"event": type(event).__name__, **asdict(event)}
    return json.dumps(_finite(data), sort_keys=False)


def from_json(line: str) -> Event:
    data = json.loads(line)
    cls = EVENT_TYPES[data.pop("event")]
    return cls(**data)


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    return obj


class RunHistory:
    """Curves of one run, filled from events (live, or replayed from ``metrics.jsonl``).

    Example:
        >>> h = RunHistory()
        >>> h.on_event(Step(step=10, epoch=0.1, loss=2.0, lr=1e-5, examples_per_s=100.0, elapsed_s=1.0, total_steps=100))
        >>> h.steps, h.losses
        ([10], [2.0])
    """

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.epochs: list[float] = []
        self.losses: list[float] = []
        self.lrs: list[float] = []
        self.examples_per_s: list[float] = []
        self.evals: list[Eval] = []
        self.total_steps: int | None = None
        self.done: Done | None = None
        self.changes: list[Changed] = []

    def on_event(self, event: Event) -> None:
        if isinstance(event, Started):
            self.total_steps = event.total_steps
        elif isinstance(event, Step):
            self.steps.append(event.step)
            self.epochs.append(event.epoch)
            self.losses.append(event.loss)
            self.lrs.append(event.lr)
            self.examples_per_s.append(event.examples_per_s)
            self.total_steps = event.total_steps
        elif isinstance(event, Eval):
            self.evals.append(event)
        elif isinstance(event, Done):
            self.done = event
        elif isinstance(event, Changed):
            self.changes.append(event)

    __call__ = on_event

    def metric(self, key: str) -> tuple[list[int], list[float]]:
        """(steps, values) of one evaluation metric, e.g. ``sts-dev_spearman_cosine``."""
        pairs = [(e.step, e.metrics[key]) for e in self.evals if key in e.metrics and e.metrics[key] is not None]
        return [s for s, _ in pairs], [v for _, v in pairs]

    @property
    def primary(self) -> str | None:
        return next((e.primary for e in reversed(self.evals) if e.primary), None)

    def best(self) -> Eval | None:
        scored = [e for e in self.evals if e.value is not None]
        return max(scored, key=lambda e: e.value) if scored else None

    @classmethod
    def from_jsonl(cls, path: str | Path) -> RunHistory:
        """Replay a ``metrics.jsonl``; a torn last line (a crash mid-write) is skipped."""
        history = cls()
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            try:
                history.on_event(from_json(line))
            except (ValueError, KeyError, TypeError):
                continue
        return history


def format_event(event: Event) -> str:
    """One human-readable log line per event (what the CLI prints)."""
    if isinstance(event, Started):
        resumed = f", resuming at step {event.start_step}" if event.start_step else ""
        where = f" -> {event.run_dir}" if event.run_dir else ""
        return f"training: {event.total_steps} steps, {event.examples} examples, batch {event.batch_size}{resumed}{where}"
    if isinstance(event, Step):
        left = (event.total_steps - event.step) * event.elapsed_s / max(event.step, 1)
        return (f"step {event.step:>6}/{event.total_steps} | epoch {event.epoch:.2f} | loss {event.loss:.4f} | "
                f"lr {event.lr:.2e} | {event.examples_per_s:,.0f} ex/s | {duration(event.elapsed_s)} elapsed, ~{duration(left)} left")
    if isinstance(event, Eval):
        if event.primary and event.value is not None:
            best = "  (best so far)" if event.is_best else ""
            return f"eval step {event.step:>6} | {event.primary} {metric(event.value)}{best}"
        return f"eval step {event.step:>6} | " + ", ".join(f"{k} {metric(v)}" for k, v in event.metrics.items())
    if isinstance(event, Checkpoint):
        return f"checkpoint step {event.step} -> {event.path}"
    if isinstance(event, Changed):
        changed = ", ".join(f"{k} {before!r} -> {after!r}" for k, (before, after) in event.changes.items())
        return f"settings changed from step {event.step + 1} on: {changed}"
    if isinstance(event, Preparing):
        left = ""
        if 0 < event.done < event.total and event.elapsed_s > 0:
            left = f", ~{duration(event.elapsed_s * (event.total - event.done) / event.done)} left"
        return f"{event.what}: {event.done:,}/{event.total:,} {event.unit} ({duration(event.elapsed_s)}{left})"
    if isinstance(event, Done):
        best = f"; best {metric(event.best_value)} at step {event.best_step}" if event.best_value is not None else ""
        saved = f"; model saved to {event.model_path}" if event.model_path else ""
        error = f": {event.error}" if event.error else ""
        return f"done ({event.reason}{error}) after {event.step} steps in {duration(event.elapsed_s)}{best}{saved}"
    return repr(event)
