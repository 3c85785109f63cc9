"""Sweeps: one recipe, a search space over its fields, many ordinary runs.

A :class:`Sweep` runs a recipe once per setting of its search space (grid, random, or Optuna's
TPE sampler with pruning when ``optuna`` is installed). Each trial is an ordinary run folder
(``OUT/trial-000``: config.json, metrics.jsonl, model) made by :func:`~workbench.recipes.run_recipe`,
so everything that reads runs reads trials. ``OUT/results.csv`` has a row per trial, rewritten
after each one; restarting the same sweep skips finished trials and re-runs an interrupted one.
The objective is a dev metric (STS-B dev spearman_cosine by default); STS-B test is evaluated
once, on the chosen trial's model, when the sweep ends.

    workbench sweep offline-b-mnrl-minilm --grid train.lr=1e-5,5e-5,1e-4 --grid loss.scale=10,20 --out sweeps/lr

Example:
    >>> from workbench.recipes import load_recipe
    >>> space = [Param.grid("train.lr=1e-5,1e-4"), Param.grid("loss.scale=10,20")]
    >>> sweep = Sweep(load_recipe("offline-b-mnrl-minilm"), space, out="sweeps/demo")
    >>> [s for s in sweep.planned()]
    [{'train.lr': 1e-05, 'loss.scale': 10}, {'train.lr': 1e-05, 'loss.scale': 20}, {'train.lr': 0.0001, 'loss.scale': 10}, {'train.lr': 0.0001, 'loss.scale': 20}]
    >>> sweep.trial_recipe({"train.lr": 1e-4, "loss.scale": 10}).loss.params["scale"]
    10.0
    >>> Sweep(load_recipe("offline-b-mnrl-minilm"), [Param.grid("train.lrr=1e-4")], out="sweeps/demo")
    Traceback (most recent call last):
    ...
    workbench.sweep.SweepError: train.lrr=0.0001: ...offline-b-mnrl-minilm.toml [train]: unknown key 'lrr' (did you mean 'lr'?)
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from workbench.atomic import atomic_write_text, discard_dir
from workbench.formatting import duration
from workbench.training.events import Eval, Event, RunHistory

SAMPLERS = ("grid", "random", "tpe")
DEFAULT_OBJECTIVE = "sts-dev_spearman_cosine"
FINISHED = ("completed", "pruned", "failed")  # a restart skips these; any other status is run again


class SweepError(ValueError):
    """A sweep that cannot run as asked; refused before the first trial, naming the field."""


# ----- the search space ------------------------------------------------------------------------
@dataclass(frozen=True)
class Param:
    """One searched field: listed ``values`` (grid, random choice, TPE categorical) or a range
    ``low..high`` (random and TPE only; ``log`` samples its logarithm uniformly).

    ``key`` is a recipe field as ``--set`` names it: ``train.lr``, ``loss.scale``,
    ``model.keep_layers``, ``data.limit`` (every ``[[data]]`` entry) or ``data.NAME.limit``.

    Example:
        >>> Param.grid("model.keep_layers=[0,5],[0,3,5]").values
        ([0, 5], [0, 3, 5])
        >>> Param.range("train.lr=1e-5..1e-3:log")
        Param(key='train.lr', values=None, low=1e-05, high=0.001, log=True)
    """

    key: str
    values: tuple[Any, ...] | None = None
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False

    def __post_init__(self) -> None:
        if "." not in self.key:
            raise SweepError(f"{self.key!r}: name a recipe field as section.key, e.g. train.lr")
        if self.values is not None:
            if not self.values:
                raise SweepError(f"{self.key}: no values given")
            return
        if self.low is None or self.high is None:
            raise SweepError(f"{self.key}: give values or a range low..high")
        for end in (self.low, self.high):
            if isinstance(end, bool) or not isinstance(end, (int, float)) or not math.isfinite(end):
                raise SweepError(f"{self.key}: a range needs numbers, got {self.low!r}..{self.high!r}")
        if not self.low < self.high:
            raise SweepError(f"{self.key}: a range needs low < high, got {self.low!r}..{self.high!r}")
        if self.log and self.low <= 0:
            raise SweepError(f"{self.key}: a log range needs low > 0, got {self.low!r}")

    @property
    def is_range(self) -> bool:
        return self.values is None

    @property
    def is_int(self) -> bool:
        return self.is_range and isinstance(self.low, int) and isinstance(self.high, int)

    @classmethod
    def grid(cls, text: str) -> Param:
        """``key=v1,v2,...``; each value read as ``--set`` reads it (TOML, then a Python literal,
        then text), commas inside ``[...]`` or quotes kept."""
        from workbench.recipes.sections import _assigned_value

        key, values = _split_assignment(text, "--grid", "train.lr=1e-5,5e-5,1e-4")
        items = _split_top_level(values)
        if any(not item.strip() for item in items):
            raise SweepError(f"--grid {text!r}: an empty value (two commas, or one at the end)")
        return cls(key, values=tuple(_assigned_value(item.strip()) for item in items))

    @classmethod
    def range(cls, text: str) -> Param:
        """``key=low..high`` or ``key=low..high:log``; integers at both ends sample integers."""
        from workbench.recipes.sections import _assigned_value

        key, spec = _split_assignment(text, "--range", "train.lr=1e-5..1e-3:log")
        log = spec.endswith(":log")
        low_text, sep, high_text = spec.removesuffix(":log").partition("..")
        if not sep:
            raise SweepError(f"--range {text!r}: use key=low..high (or low..high:log)")
        return cls(key, low=_assigned_value(low_text.strip()), high=_assigned_value(high_text.strip()), log=log)

    def sample(self, rng: Any) -> Any:
        """One value drawn with the numpy generator ``rng``."""
        if not self.is_range:
            return self.values[int(rng.integers(len(self.values)))]
        lo, hi = float(self.low), float(self.high)
        if self.is_int:
            hi += 1.0  # integers in [low, high]
        x = math.exp(rng.uniform(math.log(lo), math.log(hi))) if self.log else rng.uniform(lo, hi)
        return min(int(math.floor(x)), int(self.high)) if self.is_int else float(x)

    def probes(self) -> list[Any]:
        """The values checked against the recipe before the first trial (every listed value; a range's ends)."""
        return list(self.values) if not self.is_range else [self.low, self.high]

    def describe(self) -> str:
        if not self.is_range:
            return f"{self.key} in {{{', '.join(_show(v) for v in self.values)}}}"
        return f"{self.key} in [{_show(self.low)}, {_show(self.high)}]{' (log)' if self.log else ''}"

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


def _split_assignment(text: str, option: str, example: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or "." not in key or not value.strip():
        raise SweepError(f"{option} {text!r}: use section.key=..., e.g. {option} {example}")
    return key.strip(), value.strip()


def _split_top_level(text: str) -> list[str]:
    """Split at commas outside brackets and quotes: ``[0,5],[0,3,5]`` -> two items."""
    items, depth, quote, current = [], 0, None, []
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append("".join(current))
            current = []
            continue
        current.append(ch)
    items.append("".join(current))
    return items


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_show(v) for v in value) + "]"
    return str(value)


# ----- records and events ----------------------------------------------------------------------
@dataclass(frozen=True)
class TrialRecord:
    """One trial as ``trial.json`` and ``results.csv`` hold it.

    ``status``: running (or interrupted: it never finished), completed, pruned (stopped early by
    the pruner), stopped (Stop, or the time budget), failed (``error`` says why). ``objective`` is
    the best value of the sweep's objective over the trial's evaluations (the weights the trial
    kept), ``best_step`` where it was reached.
    """

    number: int
    params: Mapping[str, Any]
    status: str = "running"
    objective: float | None = None
    best_step: int | None = None
    steps: int = 0
    seconds: float = 0.0
    error: str | None = None
    run_dir: str | None = None
    has_model: bool = False

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


@dataclass(frozen=True)
class SweepStarted:
    out: str
    keys: tuple[str, ...]
    sampler: str
    trials: int
    objective: str
    direction: str
    finished: tuple[TrialRecord, ...] = ()  # trials already done when a sweep is restarted


@dataclass(frozen=True)
class TrialStarted:
    number: int
    params: Mapping[str, Any]
    run_dir: str


@dataclass(frozen=True)
class TrialEvent:
    """A training event of trial ``number`` (the trial's own run emits it)."""

    number: int
    event: Event


@dataclass(frozen=True)
class TrialDone:
    record: TrialRecord
    best: TrialRecord | None  # the best trial so far


@dataclass(frozen=True)
class SweepDone:
    reason: str  # completed, budget, stopped
    best: TrialRecord | None
    test_metrics: Mapping[str, float] = field(default_factory=dict)
    seconds: float = 0.0


SweepEvent = SweepStarted | TrialStarted | TrialEvent | TrialDone | SweepDone


def format_sweep_event(event: SweepEvent, objective: str = DEFAULT_OBJECTIVE, total: int | None = None) -> str | None:
    """The CLI's line for a sweep event (None for the trials' own training events)."""
    if isinstance(event, SweepStarted):
        again = f", {len(event.finished)} already finished" if event.finished else ""
        return (f"sweep: {event.trials} trials ({event.sampler}) over {', '.join(event.keys)} in {event.out}{again}; "
                f"objective {event.direction} {event.objective}")
    if isinstance(event, TrialDone):
        r = event.record
        value = f"{r.objective:.4f}" if r.objective is not None else "-"
        settings = " ".join(f"{k}={_show(v)}" for k, v in r.params.items())
        of = f"/{total}" if total else ""
        best = " (best so far)" if event.best is not None and event.best.number == r.number else ""
        error = f" · {r.error}" if r.error else ""
        return (f"trial {r.number + 1}{of} {r.status} · {settings} · {objective} {value}{best} · "
                f"{r.steps} steps · {duration(r.seconds)}{error}")
    if isinstance(event, SweepDone):
        if event.best is None:
            return f"sweep {event.reason} in {duration(event.seconds)}: no trial reached an objective"
        test = "".join(f" · {k} {v:.4f}" for k, v in event.test_metrics.items() if k.endswith("spearman_cosine"))
        return (f"sweep {event.reason} in {duration(event.seconds)}: best trial {event.best.number + 1} "
                f"({' '.join(f'{k}={_show(v)}' for k, v in event.best.params.items())}) {objective} "
                f"{event.best.objective:.4f}{test}")
    return None


# ----- the sweep -------------------------------------------------------------------------------
class Sweep:
    """A recipe run once per setting of a search space.

    Args:
        recipe: the recipe every trial starts from.
        params: the search space (:class:`Param`; :meth:`Param.grid`, :meth:`Param.range`).
        out: the sweep's folder (trials in ``out/trial-NNN``, ``results.csv``, ``sweep.json``).
        sampler: ``grid`` (every combination of listed values), ``random`` (``trials`` draws) or
            ``tpe`` (Optuna's TPE sampler, ``trials`` trials, bad ones pruned; needs ``optuna``).
        trials: how many trials random and TPE run (a grid runs all its combinations).
        seed: seeds the random draws and TPE (a trial's draw depends on the seed and its number only).
        objective: the dev metric to choose by (a key of the trials' evaluations).
        direction: ``maximize`` or ``minimize``.
        budget_minutes: no trial starts after this, and the running one stops (status stopped; a
            restart finishes it).
        trial_steps: cap each trial at this many training steps.
        keep_models: ``best`` (delete the model of every finished trial that is not the best so
            far) or ``all``.
        prune: with TPE, stop a trial whose evaluations fall below the median of earlier trials
            at the same step (Optuna's MedianPruner).
        evaluate_test: evaluate STS-B test on the chosen trial's model at the end (when the
            recipe's ``[eval] sts_test`` is on); trials themselves never see test.
        overwrite: replace a different sweep found in ``out`` (else that is refused).
    """

    def __init__(
        self,
        recipe: Any,
        params: Sequence[Param],
        out: str | Path,
        sampler: str = "grid",
        trials: int | None = None,
        seed: int = 0,
        objective: str = DEFAULT_OBJECTIVE,
        direction: str = "maximize",
        budget_minutes: float | None = None,
        trial_steps: int | None = None,
        keep_models: str = "best",
        prune: bool = True,
        evaluate_test: bool = True,
        overwrite: bool = False,
    ) -> None:
        from workbench.recipes import Recipe, load_recipe

        self.recipe = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
        self.params = tuple(params)
        self.out = Path(out)
        self.sampler, self.seed, self.objective, self.direction = sampler, seed, objective, direction
        self.budget_minutes, self.trial_steps, self.keep_models = budget_minutes, trial_steps, keep_models
        self.prune, self.evaluate_test, self.overwrite = prune, evaluate_test, overwrite
        if sampler not in SAMPLERS:
            raise SweepError(f"sampler {sampler!r}: choose from {', '.join(SAMPLERS)}")
        if direction not in ("maximize", "minimize"):
            raise SweepError(f"direction {direction!r}: choose maximize or minimize")
        if keep_models not in ("best", "all"):
            raise SweepError(f"keep_models {keep_models!r}: choose best or all")
        if not self.params:
            raise SweepError("an empty search space: give at least one --grid or --range")
        keys = [p.key for p in self.params]
        if len(set(keys)) != len(keys):
            raise SweepError(f"a field searched twice: {', '.join(sorted({k for k in keys if keys.count(k) > 1}))}")
        if sampler == "grid":
            ranges = [p.key for p in self.params if p.is_range]
            if ranges:
                raise SweepError(f"a grid needs listed values; {', '.join(ranges)} is a range: list values, or use "
                                 "--random N or --sampler tpe")
            if trials is not None:
                raise SweepError("a grid runs every combination; trials applies to random and tpe")
            self.trials = math.prod(len(p.values) for p in self.params)
        else:
            if trials is None or trials < 1:
                raise SweepError(f"a {sampler} sweep needs trials >= 1 (got {trials})")
            self.trials = trials
        if sampler == "tpe":
            _require_optuna()
        if trial_steps is not None and trial_steps < 1:
            raise SweepError(f"trial_steps must be >= 1 (got {trial_steps})")
        if budget_minutes is not None and not budget_minutes > 0:
            raise SweepError(f"budget_minutes must be > 0 (got {budget_minutes})")
        self._check_space()
        self._rows: list[int] | None = None

    # ----- the settings ----------------------------------------------------------------------
    def _check_space(self) -> None:
        """Every listed value and each range's ends, applied to the recipe: a misspelt field or a
        value of the wrong type is refused here, before the first trial."""
        for p in self.params:
            for value in p.probes():
                try:
                    self._apply({p.key: value})
                except ValueError as err:
                    raise SweepError(f"{p.key}={_show(value)}: {err}") from None
            if p.is_range and not p.is_int:  # a float range on an int field would fail mid-sweep
                try:
                    self._apply({p.key: (float(p.low) + float(p.high)) / 2 + 1e-9})
                except ValueError as err:
                    raise SweepError(f"{p.key}: a range of decimals does not fit this field ({err}); give integer "
                                     "ends for an integer field") from None
        if self.objective and self.recipe.eval.sts_dev is False and self.objective.startswith("sts-dev"):
            raise SweepError(f"the objective {self.objective} needs [eval] sts_dev = true")

    def _apply(self, params: Mapping[str, Any]) -> Any:
        grouped: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            section, name = key.split(".", 1)
            grouped.setdefault(section, {})[name] = value
        return self.recipe.with_(**grouped)

    def planned(self) -> Iterator[dict[str, Any]]:
        """The settings of the grid's or the random sweep's trials, in order (TPE decides as it goes)."""
        if self.sampler == "grid":
            for combo in itertools.product(*(p.values for p in self.params)):
                yield dict(zip((p.key for p in self.params), combo, strict=True))
        elif self.sampler == "random":
            for number in range(self.trials):
                yield self._draw(number)
        else:
            raise SweepError("a TPE sweep chooses each trial's settings from the trials before it")

    def _draw(self, number: int) -> dict[str, Any]:
        import numpy as np

        rng = np.random.default_rng([self.seed, number])
        return {p.key: p.sample(rng) for p in self.params}

    def trial_recipe(self, params: Mapping[str, Any]) -> Any:
        """The recipe a trial runs: the sweep's recipe with ``params``, no STS-B test (it is
        evaluated once, for the chosen trial), and at most ``trial_steps`` steps."""
        recipe = self._apply(params).with_(eval={"sts_test": False})
        if self.trial_steps is not None:
            from workbench.recipes import load_data, planned_steps

            if recipe.train.max_steps is None and self._rows is None:
                self._rows = [len(load_data(d)) for d in recipe.data]
            rows = self._rows if recipe.train.max_steps is None and not any(k.startswith("data.") for k in params) else None
            if planned_steps(recipe, rows) > self.trial_steps:
                recipe = recipe.with_(train={"max_steps": self.trial_steps})
        return recipe

    # ----- the folder ------------------------------------------------------------------------
    def definition(self) -> dict[str, Any]:
        """What makes this sweep this sweep (``sweep.json``); a restart must match it."""
        return {"recipe": self.recipe.to_dict(), "recipe_file": self.recipe.path, "params": [p.to_dict() for p in self.params],
                "sampler": self.sampler, "trials": self.trials, "seed": self.seed, "objective": self.objective,
                "direction": self.direction, "trial_steps": self.trial_steps}

    def _claim_folder(self) -> None:
        path = self.out / "sweep.json"
        if path.exists():
            stored = json.loads(path.read_text(encoding="utf-8"))
            mine = json.loads(json.dumps(self.definition()))
            stored.pop("budget_minutes", None)
            if self.sampler != "grid":  # more (or fewer) draws of the same random or TPE sweep: the same sweep
                stored.pop("trials", None)
                mine.pop("trials")
            if stored != mine:
                if not self.overwrite:
                    changed = sorted(k for k in mine if stored.get(k) != mine[k])
                    raise SweepError(f"{self.out} holds another sweep (it differs in {', '.join(changed)}); choose another "
                                     "--out, or pass --overwrite to replace it")
                for trial in self.out.glob("trial-*"):
                    discard_dir(trial)
                (self.out / "results.csv").unlink(missing_ok=True)
                (self.out / "best.json").unlink(missing_ok=True)
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps({**self.definition(), "budget_minutes": self.budget_minutes}, indent=2) + "\n")

    def trial_dir(self, number: int) -> Path:
        return self.out / f"trial-{number:03d}"

    def records(self) -> list[TrialRecord]:
        """Every trial recorded in the folder, by number."""
        return read_trials(self.out)

    def best(self, records: Sequence[TrialRecord] | None = None) -> TrialRecord | None:
        """The best completed trial (or, when none completed, the best with an objective)."""
        return best_trial(self.records() if records is None else records, self.direction)

    def best_recipe(self) -> Any:
        """The recipe of the best trial: the sweep's recipe with its settings (STS-B test on,
        and no trial step cap: the full recipe to run)."""
        best = self.best()
        if best is None:
            raise SweepError(f"no trial in {self.out} has reached an objective yet")
        return self._apply(best.params)

    # ----- running ---------------------------------------------------------------------------
    def run(self, callbacks: Sequence[Callable[[SweepEvent], None]] = (), stop_signal: threading.Event | None = None,
            device: str | None = None) -> SweepDone:
        """Run the trials not yet finished, write ``results.csv`` after each, evaluate STS-B test on
        the best trial's model at the end; every event goes to ``callbacks``."""
        self._claim_folder()
        start = time.perf_counter()
        deadline = start + self.budget_minutes * 60 if self.budget_minutes else None
        stop_signal = stop_signal or threading.Event()
        records = {r.number: r for r in self.records()}
        finished = tuple(r for r in records.values() if r.finished)

        def emit(event: SweepEvent) -> None:
            for callback in callbacks:
                callback(event)

        emit(SweepStarted(str(self.out), tuple(p.key for p in self.params), self.sampler, self.trials, self.objective,
                          self.direction, finished))
        study = self._study(records) if self.sampler == "tpe" else None
        reason = "completed"
        for number, params, ask in self._schedule(records, study):
            if stop_signal.is_set():
                reason = "stopped"
                break
            if deadline is not None and time.perf_counter() >= deadline:
                reason = "budget"
                break
            record = self._run_trial(number, params, emit, stop_signal, deadline, ask, device)
            records[number] = record
            if study is not None and ask is not None:
                self._tell(study, ask, record)
            best = self.best(list(records.values()))
            self._prune_models(list(records.values()), best)
            self.write_results(list(records.values()))
            emit(TrialDone(record, best))
            if record.status == "stopped":
                reason = "budget" if deadline is not None and time.perf_counter() >= deadline else "stopped"
                break
        best = self.best(list(records.values()))
        test = self._evaluate_test(best, device) if reason == "completed" else {}
        done = SweepDone(reason, best, test, time.perf_counter() - start)
        if best is not None:
            atomic_write_text(self.out / "best.json", json.dumps(
                {"trial": best.number, "params": dict(best.params), "objective": {self.objective: best.objective},
                 "test": test, "run_dir": best.run_dir, "reason": reason}, indent=2, default=str) + "\n")
        emit(done)
        return done

    def _schedule(self, records: dict[int, TrialRecord], study: Any) -> Iterator[tuple[int, dict[str, Any], Any]]:
        """(number, settings, optuna trial or None) for each trial still to run."""
        if study is None:
            for number, params in enumerate(self.planned()):
                if not (number in records and records[number].finished):
                    yield number, params, None
            return
        for number in range(self.trials):
            record = records.get(number)
            if record is not None and record.finished:
                continue
            if record is not None:  # interrupted: the same settings again
                study.enqueue_trial(self._to_optuna(record.params))
            ask = study.ask(self._distributions())
            yield number, self._from_optuna(ask.params), ask

    def _run_trial(self, number: int, params: dict[str, Any], emit: Callable[[SweepEvent], None],
                   sweep_stop: threading.Event, deadline: float | None, ask: Any, device: str | None) -> TrialRecord:
        from workbench.recipes import run_recipe
        from workbench.training.runs import RunDir

        folder = self.trial_dir(number)
        record = TrialRecord(number, dict(params), run_dir=str(folder))
        _write_trial(folder, record)
        emit(TrialStarted(number, dict(params), str(folder)))
        history = RunHistory()
        stop = threading.Event()
        why: list[str] = []
        t0 = time.perf_counter()

        def on_event(event: Event) -> None:
            history.on_event(event)
            emit(TrialEvent(number, event))
            if sweep_stop.is_set():
                stop.set()
            if deadline is not None and time.perf_counter() >= deadline and not stop.is_set():
                why.append("the sweep's time budget ran out")
                stop.set()
            if ask is not None and self.prune and isinstance(event, Eval) and self.objective in event.metrics:
                value = float(event.metrics[self.objective])
                if math.isfinite(value):
                    ask.report(value, event.step)
                    if ask.should_prune() and not stop.is_set():
                        why.append("pruned")
                        stop.set()

        watcher = _Watcher(sweep_stop, stop)
        error = None
        try:
            recipe = self.trial_recipe(params)
            resume = RunDir(folder).latest_checkpoint_path() is not None
            run_recipe(recipe, run_dir=folder, callbacks=[on_event], stop_signal=stop, resume=resume,
                       overwrite=not resume, device=device)
        except Exception as err:  # noqa: BLE001 - a failed trial is recorded; the sweep goes on
            error = f"{type(err).__name__}: {err}".splitlines()[0][:300]
        finally:
            watcher.close()
        if (folder / "metrics.jsonl").exists():  # the whole run, also what came before a resume
            history = RunHistory.from_jsonl(folder / "metrics.jsonl")
        done = history.done
        objective, best_step = _objective(history, self.objective, self.direction)
        if error is not None or (done is not None and done.reason == "failed"):
            status = "failed"
            error = error or (done.error if done is not None else None)
        elif "pruned" in why:
            status = "pruned"
        elif stop.is_set():
            status = "stopped"
            error = why[0] if why else "stopped"
        elif objective is None:
            status, error = "failed", f"no evaluation reported {self.objective}"
        else:
            status = "completed"
        record = replace(record, status=status, objective=objective, best_step=best_step,
                         steps=history.steps[-1] if history.steps else (done.step if done is not None else 0),
                         seconds=round(time.perf_counter() - t0, 1), error=error,
                         has_model=(folder / "model").is_dir())
        if done is not None:
            record = replace(record, steps=max(record.steps, done.step))
        _write_trial(folder, record)
        return record

    def _prune_models(self, records: Sequence[TrialRecord], best: TrialRecord | None) -> None:
        """With keep_models='best', only the best trial keeps its model (the others keep config and curves)."""
        if self.keep_models != "best":
            return
        for r in records:
            if r.finished and r.has_model and (best is None or r.number != best.number):
                folder = self.trial_dir(r.number)
                for name in ("model", "best"):
                    discard_dir(folder / name)
                _write_trial(folder, replace(r, has_model=False))

    def _evaluate_test(self, best: TrialRecord | None, device: str | None) -> dict[str, float]:
        if best is None or not self.evaluate_test or not self.recipe.eval.sts_test:
            return {}
        model_dir = self.trial_dir(best.number) / "model"
        if not model_dir.is_dir():
            return {}
        from workbench.data import load_stsb
        from workbench.evaluation import STSEvaluator
        from workbench.models import load_model

        test = STSEvaluator.from_dataset(load_stsb("test"), name="sts-test")
        return {k: float(v) for k, v in test(load_model(model_dir, device=device)).items()}

    def write_results(self, records: Sequence[TrialRecord] | None = None) -> Path:
        """``results.csv``: one row per trial (its settings, the objective, steps, seconds, status)."""
        records = sorted(self.records() if records is None else records, key=lambda r: r.number)
        buffer = io.StringIO()
        keys = [p.key for p in self.params]
        writer = csv.writer(buffer)
        writer.writerow(["trial", *keys, self.objective, "best_step", "steps", "seconds", "status", "error", "run_dir"])
        for r in records:
            writer.writerow([r.number, *(_csv_value(r.params.get(k)) for k in keys),
                             "" if r.objective is None else f"{r.objective:.6f}", "" if r.best_step is None else r.best_step,
                             r.steps, r.seconds, r.status, r.error or "", r.run_dir or ""])
        path = self.out / "results.csv"
        atomic_write_text(path, buffer.getvalue())
        return path

    # ----- optuna ----------------------------------------------------------------------------
    def _distributions(self) -> dict[str, Any]:
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        out = {}
        for p in self.params:
            if not p.is_range:
                out[p.key] = CategoricalDistribution([json.dumps(v) for v in p.values])
            elif p.is_int:
                out[p.key] = IntDistribution(int(p.low), int(p.high), log=p.log)
            else:
                out[p.key] = FloatDistribution(float(p.low), float(p.high), log=p.log)
        return out

    def _to_optuna(self, params: Mapping[str, Any]) -> dict[str, Any]:
        kinds = {p.key: p for p in self.params}
        return {k: (json.dumps(v) if not kinds[k].is_range else v) for k, v in params.items() if k in kinds}

    def _from_optuna(self, params: Mapping[str, Any]) -> dict[str, Any]:
        kinds = {p.key: p for p in self.params}
        return {p.key: (json.loads(params[p.key]) if not kinds[p.key].is_range else params[p.key]) for p in self.params}

    def _study(self, records: Mapping[int, TrialRecord]) -> Any:
        """A TPE study holding the finished trials (read back from the folder on a restart)."""
        optuna = _require_optuna()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(direction=self.direction, sampler=optuna.samplers.TPESampler(seed=self.seed),
                                    pruner=optuna.pruners.MedianPruner(n_startup_trials=2))
        states = {"completed": optuna.trial.TrialState.COMPLETE, "pruned": optuna.trial.TrialState.PRUNED,
                  "failed": optuna.trial.TrialState.FAIL}
        for r in sorted(records.values(), key=lambda r: r.number):
            if not r.finished:
                continue
            history = _trial_history(self.out, r)
            steps, values = history.metric(self.objective)
            intermediate = {s: v for s, v in zip(steps, values, strict=True) if v is not None and math.isfinite(v)}
            complete = r.status == "completed" and r.objective is not None
            study.add_trial(optuna.trial.create_trial(
                params=self._to_optuna(r.params), distributions=self._distributions(),
                value=r.objective if complete else None, intermediate_values=intermediate,
                state=states["completed"] if complete else states["pruned" if r.status == "pruned" else "failed"]))
        return study

    def _tell(self, study: Any, ask: Any, record: TrialRecord) -> None:
        import optuna

        if record.status == "completed" and record.objective is not None:
            study.tell(ask, record.objective)
        elif record.status == "pruned":
            study.tell(ask, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(ask, state=optuna.trial.TrialState.FAIL)


class _Watcher:
    """Pass the sweep's Stop to the running trial while it is between events (a long evaluation)."""

    def __init__(self, sweep_stop: threading.Event, trial_stop: threading.Event) -> None:
        self._closed = threading.Event()

        def watch() -> None:
            while not self._closed.wait(0.2):
                if sweep_stop.is_set():
                    trial_stop.set()
                    return

        self._thread = threading.Thread(target=watch, daemon=True, name="workbench-sweep-stop")
        self._thread.start()

    def close(self) -> None:
        self._closed.set()


def _require_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise SweepError("the tpe sampler uses Optuna: pip install 'workbench[sweep]' (or optuna); grid and random "
                         "sweeps need nothing more") from None
    return optuna


def _objective(history: RunHistory, key: str, direction: str) -> tuple[float | None, int | None]:
    steps, values = history.metric(key)
    pairs = [(v, s) for s, v in zip(steps, values, strict=True) if v is not None and math.isfinite(v)]
    if not pairs:
        return None, None
    value, step = (max if direction == "maximize" else min)(pairs, key=lambda p: p[0])
    return float(value), int(step)


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return str(value)


def _write_trial(folder: Path, record: TrialRecord) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "trial.json", json.dumps(asdict(record), indent=2, default=str) + "\n")


def read_trials(out: str | Path) -> list[TrialRecord]:
    """The trials recorded under a sweep folder (``trial-*/trial.json``), by number; ``has_model`` says
    whether the trial's model is there now (a clean-up may have removed it)."""
    records = []
    for path in sorted(Path(out).glob("trial-*/trial.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        record = TrialRecord(**data)
        if record.has_model and not (path.parent / "model").is_dir():  # removed since (workbench clean --models)
            record = replace(record, has_model=False)
        records.append(record)
    return sorted(records, key=lambda r: r.number)


def _trial_history(out: Path, record: TrialRecord) -> RunHistory:
    path = Path(record.run_dir or out / f"trial-{record.number:03d}") / "metrics.jsonl"
    return RunHistory.from_jsonl(path) if path.exists() else RunHistory()


def best_trial(records: Sequence[TrialRecord], direction: str = "maximize") -> TrialRecord | None:
    """The best completed trial by objective (ties: the earlier); when none completed, the best with an objective."""
    for pool in ([r for r in records if r.status == "completed"], list(records)):
        scored = [r for r in pool if r.objective is not None and math.isfinite(r.objective)]
        if scored:
            sign = 1 if direction == "maximize" else -1
            return max(sorted(scored, key=lambda r: r.number), key=lambda r: sign * r.objective)
    return None
