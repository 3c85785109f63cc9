"""The sweep board: Start a :class:`~workbench.sweep.Sweep`, watch its trials, take the best one.

The board runs nothing itself: Start calls :meth:`Sweep.run` in a background thread with the
board's :meth:`~SweepBoard.on_event` as its callback, and every view is drawn from the sweep's
events and its folder (each trial is an ordinary run folder). The views: a parallel-coordinates
plot (one axis per searched setting, then the objective; a line per trial with an objective,
coloured by it), the trials' dev curves overlaid (the running trial's grows as it is evaluated,
the best is drawn thick), and a table of the trials that sorts by any column. **Use best** hands
over the best trial's recipe (:meth:`Sweep.best_recipe`), ready for ``run_recipe`` or a dashboard.

Trials are counted from 1, as the command line prints them (folder ``trial-000`` is trial 1).

Example:
    >>> from workbench.recipes import load_recipe
    >>> from workbench.sweep import Param, Sweep
    >>> sweep = Sweep(load_recipe("offline-b-mnrl-minilm"), [Param.grid("train.lr=1e-5,1e-4")], out="sweeps/lr")
    >>> SweepBoard(sweep)  # doctest: +SKIP
"""

from __future__ import annotations

import html
import json
import math
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go

from workbench.formatting import duration, metric
from workbench.sweep import (
    Param,
    Sweep,
    SweepDone,
    SweepEvent,
    SweepStarted,
    TrialDone,
    TrialEvent,
    TrialRecord,
    TrialStarted,
    best_trial,
    format_sweep_event,
)
from workbench.training.events import Eval, RunHistory, Started, Step
from workbench.widgets._common import View, figure_widget, html_table

BEST_COLOR, RUNNING_COLOR, OTHER_COLOR = "#d62728", "#1f77b4", "rgba(127, 127, 127, 0.55)"


# ----- what the views show (plain data, testable without a figure) ------------------------------
def setting_text(value: Any) -> str:
    """A setting's value, short: ``1e-4``, ``20``, ``[0,3,5]``, ``mean`` (below 0.01, in powers of
    ten: learning rates read alike).

    Example:
        >>> setting_text(1e-4), setting_text(1e-3), setting_text(2.5e-5), setting_text(0.05), setting_text(20.0)
        ('1e-4', '1e-3', '2.5e-5', '0.05', '20')
        >>> setting_text([0, 3, 5])
        '[0,3,5]'
    """
    if isinstance(value, float) and math.isfinite(value):
        if value != 0 and not 1e-2 <= abs(value) < 1e5:
            mantissa, exponent = f"{value:.2e}".split("e")
            return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(setting_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def short_names(keys: Sequence[str]) -> dict[str, str]:
    """Each key by its last part (``train.lr`` -> ``lr``) unless two keys share it."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last, strict=True)}


def trial_label(params: Mapping[str, Any], keys: Sequence[str]) -> str:
    """What a trial changed, for a legend: ``lr=1e-4 scale=20``."""
    names = short_names(keys)
    return " ".join(f"{names[k]}={setting_text(params[k])}" for k in keys if k in params)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON holds them (a list read back from trial.json equals the tuple it was)."""
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def _padded(low: float, high: float) -> list[float]:
    if high > low:
        return [low, high]
    pad = abs(low) * 0.1 or 0.5
    return [low - pad, high + pad]


def axis_kind(param: Param) -> str:
    """``log`` (a log range, or listed positive numbers spanning 100x or more: shown as log10),
    ``number`` (other numbers) or ``category`` (text, lists, booleans: one tick per listed value)."""
    if param.is_range:
        return "log" if param.log else "number"
    if all(_number(v) for v in param.values):
        positive = all(v > 0 for v in param.values)
        return "log" if positive and max(param.values) / min(param.values) >= 100 else "number"
    return "category"


def parcoords_dimensions(
    params: Sequence[Param], records: Sequence[TrialRecord], objective: str
) -> tuple[list[TrialRecord], list[dict[str, Any]]]:
    """The trials drawn on the parallel-coordinates plot, and its axes.

    A trial is drawn when it has a finite objective (a failed trial has none: the table lists
    it) and a value for every searched setting. Axes: one per setting (see :func:`axis_kind`;
    their ranges span the whole search space, so they stay put as trials arrive), then the
    objective's.

    Returns:
        ``(records, dimensions)``: the drawn trials in order, and one ``go.Parcoords`` dimension
        dict per axis (``label``, ``values`` in the drawn trials' order, ``range``, ticks).
    """
    drawn = [r for r in records if r.objective is not None and math.isfinite(r.objective)
             and all(p.key in r.params for p in params)]
    dims = []
    for p in params:
        kind, values = axis_kind(p), [r.params[p.key] for r in drawn]
        if kind == "category":
            index = [next((i for i, v in enumerate(p.values) if _same(v, x)), None) for x in values]
            keep = [i is not None for i in index]
            drawn = [r for r, k in zip(drawn, keep, strict=True) if k]  # a value not in the list: left out
            dims = [{**d, "values": [v for v, k in zip(d["values"], keep, strict=True) if k]} for d in dims]
            dims.append({"label": p.key, "values": [i for i in index if i is not None],
                         "range": _padded(0, len(p.values) - 1), "tickvals": list(range(len(p.values))),
                         "ticktext": [setting_text(v) for v in p.values]})
            continue
        ends = p.probes()  # every listed value, or a range's ends
        scale = (lambda v: math.log10(v)) if kind == "log" else float
        dim: dict[str, Any] = {"label": f"{p.key} (log10)" if kind == "log" else p.key,
                               "values": [scale(v) for v in values], "range": _padded(scale(min(ends)), scale(max(ends)))}
        if not p.is_range and len(p.values) <= 12:
            dim["tickvals"] = [scale(v) for v in p.values]
            dim["ticktext"] = [setting_text(v) for v in p.values]
        elif kind == "log":
            decades = range(math.ceil(dim["range"][0]), math.floor(dim["range"][1]) + 1)
            dim["tickvals"], dim["ticktext"] = list(decades), [f"1e{d}" for d in decades]
        dims.append(dim)
    scores = [float(r.objective) for r in drawn]
    dims.append({"label": objective, "values": scores,
                 "range": _padded(min(scores), max(scores)) if scores else [0.0, 1.0]})
    return drawn, dims


def table_columns(keys: Sequence[str], objective: str) -> list[str]:
    return ["trial", *keys, objective, "best step", "steps", "seconds", "status", "error"]


def table_rows(records: Sequence[TrialRecord], keys: Sequence[str], sort_by: str = "trial", descending: bool = False,
               objective: str = "objective", running: int | None = None) -> list[list[Any]]:
    """The table's rows, sorted by column ``sort_by`` (a name of :func:`table_columns`); empty
    cells last either way. A trial left ``running`` that is not ``running`` now was interrupted."""
    columns = table_columns(keys, objective)
    at = columns.index(sort_by)

    def raw(r: TrialRecord) -> list[Any]:
        status = "interrupted" if r.status == "running" and r.number != running else r.status
        return [r.number + 1, *(r.params.get(k) for k in keys), r.objective, r.best_step, r.steps, r.seconds,
                status, r.error]

    def order(value: Any) -> tuple[int, Any]:
        return (0, float(value)) if _number(value) else (1, setting_text(value))

    rows = [raw(r) for r in sorted(records, key=lambda r: r.number)]
    present = sorted((row for row in rows if row[at] is not None), key=lambda row: order(row[at]), reverse=descending)
    return present + [row for row in rows if row[at] is None]


def _shown(row: list[Any], keys: Sequence[str]) -> list[str]:
    number, *rest = row
    settings, (objective, best_step, steps, seconds, status, error) = rest[:len(keys)], rest[len(keys):]
    return [str(number), *("" if v is None else setting_text(v) for v in settings), metric(objective),
            "" if best_step is None else str(best_step), str(steps), duration(seconds or 0.0), status, error or ""]


# ----- the widget ------------------------------------------------------------------------------
class SweepBoard(View):
    """Start/Stop a sweep, its trials on parallel coordinates, their dev curves, a table, the best.

    Built over a sweep whose folder already holds trials, it shows them at once (read back from
    ``trial-*/trial.json`` and each trial's ``metrics.jsonl``); Start runs the trials not yet
    finished, a Stop mid-trial leaves that trial to be finished by the next Start.

    Args:
        sweep: the :class:`~workbench.sweep.Sweep` to show and run.
        background: Start runs the sweep in a thread (the notebook stays usable, Stop works).
            Tests may pass ``False``: Start then returns when the sweep has ended.
        device: given to :meth:`Sweep.run` (``None``: the trials choose).

    Attributes:
        start, stop, use_best_button: the buttons (call ``.click()``). ``sort_by``, ``descending``:
            the table's controls (set ``.value``). ``status``: a line saying where the sweep is.
        parcoords: the parallel-coordinates ``FigureWidget`` (``data[0]`` is its trace).
        curves: the dev curves' ``FigureWidget``, a trace per trial (:meth:`curve` finds one).
        table: the ``HTML`` table of trials. ``records``: the trials by number, as last known.
        best_recipe: the recipe that **Use best** took (``None`` before). ``result``: the last
            :class:`~workbench.sweep.SweepDone`.

    Example:
        >>> from workbench.recipes import load_recipe
        >>> from workbench.sweep import Param, Sweep
        >>> sweep = Sweep(load_recipe("offline-b-mnrl-minilm"), [Param.grid("train.lr=1e-5,1e-4"),
        ...               Param.grid("loss.scale=10,20")], out="sweeps/demo", trial_steps=50)
        >>> board = SweepBoard(sweep)
        >>> board.start.click()  # doctest: +SKIP
        >>> board.wait(); board.use_best().train.lr  # doctest: +SKIP
        0.0001
    """

    def __init__(self, sweep: Sweep, background: bool = True, device: str | None = None) -> None:
        super().__init__()
        self.sweep, self.background, self.device = sweep, background, device
        self.keys = [p.key for p in sweep.params]
        self.records: dict[int, TrialRecord] = {}
        self.histories: dict[int, RunHistory] = {}  # each trial's events, for its curve
        self.best_recipe: Any = None
        self.result: SweepDone | None = None
        self.thread: threading.Thread | None = None
        self.stop_signal = threading.Event()
        self._lock = threading.RLock()  # events come from the sweep's thread, clicks from the kernel's
        self._going = self._stopping = False  # Start pressed and its thread not ended; Stop pressed
        self._live = False  # between SweepStarted and SweepDone (also for a sweep run elsewhere)
        self._running: int | None = None  # the trial running now
        self._step: tuple[int, int] | None = None  # its (step, total steps)
        self._traces: dict[int, int] = {}  # trial number -> index of its curve in curves.data
        self._note = ""  # the status line's last word on a finished run (or a failure)

        self.start = widgets.Button(description="Start", button_style="success", icon="play")
        self.stop = widgets.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.use_best_button = widgets.Button(description="Use best", icon="trophy")
        self.start.on_click(self.log.guard(lambda _b: self.start_sweep(), "Start"))
        self.stop.on_click(self.log.guard(lambda _b: self.stop_sweep(), "Stop"))
        self.use_best_button.on_click(self.log.guard(lambda _b: self.use_best(), "Use best"))
        self.status = widgets.Label()
        self.parcoords = figure_widget(
            data=[go.Parcoords(dimensions=parcoords_dimensions(sweep.params, [], sweep.objective)[1])],
            layout=dict(title=f"trials: settings and {sweep.objective}", height=380,
                        margin=dict(l=70, r=70, t=90, b=30)),
        )
        self.curves = figure_widget(go.Figure(layout=dict(
            title=f"dev curves: {sweep.objective} per trial", height=380, margin=dict(l=60, r=10, t=60, b=40),
            xaxis=dict(title=dict(text="step")), yaxis=dict(title=dict(text=sweep.objective)), showlegend=True,
        )))
        columns = table_columns(self.keys, sweep.objective)
        self.sort_by = widgets.Dropdown(options=columns, value=columns[0], description="sort by")
        self.descending = widgets.ToggleButton(value=False, description="descending", icon="sort-amount-desc")
        self.sort_by.observe(self.log.guard(lambda _c: self._draw_table(), "sort"), names="value")
        self.descending.observe(self.log.guard(lambda _c: self._draw_table(), "sort"), names="value")
        self.table = widgets.HTML()
        self.best_box = widgets.HTML()
        space = " · ".join(html.escape(p.describe()) for p in sweep.params)
        self.widget = widgets.VBox([
            widgets.HTML(f"<b>sweep</b> of {html.escape(sweep.recipe.name)}: {space} · {sweep.sampler}, "
                         f"{sweep.trials} trials · {sweep.direction} {html.escape(sweep.objective)} · "
                         f"{html.escape(str(sweep.out))}"),
            widgets.HBox([self.start, self.stop, self.use_best_button]),
            self.status,
            self.parcoords,
            self.curves,
            widgets.HBox([self.sort_by, self.descending]),
            self.table,
            self.best_box,
            self.log.output,
        ])  # fmt: skip
        self._reload()
        self._draw()

    # ----- actions -----------------------------------------------------------------------------
    def start_sweep(self) -> None:
        """Run the trials not yet finished (in the background unless ``background=False``). Like
        the button, this does nothing while Start is disabled: while the sweep runs, and once every
        trial has finished."""
        with self._lock:
            if self._going or self._live or self.start.disabled:
                return
            self._going, self._stopping, self._note = True, False, ""
            self.start.disabled, self.stop.disabled = True, False
            self.stop_signal = threading.Event()
            self._show_status()
        if self.background:
            self.thread = threading.Thread(target=self._run, daemon=True, name="workbench-sweep")
            self.thread.start()
        else:
            self._run()

    def _run(self) -> None:
        try:
            self.result = self.sweep.run(callbacks=[self.on_event], stop_signal=self.stop_signal, device=self.device)
        except Exception as exc:  # noqa: BLE001 - shown under the board, kept in errors
            self.log.report(exc, "sweep")
            self._note = f"failed: {type(exc).__name__}: {exc}"[:300]
        finally:
            with self._lock:
                self._going = self._stopping = self._live = False  # also when the sweep raised mid-way
                self._running = None
                try:
                    self._reload()
                    self._draw()
                except Exception as exc:  # noqa: BLE001
                    self.log.report(exc, "SweepBoard")

    def stop_sweep(self) -> None:
        """Stop the sweep: the running trial ends after its current step (a later Start finishes it)."""
        with self._lock:
            if not self._going:
                return  # a sweep run elsewhere (this board only listens) is stopped by its own signal
            self._stopping = True
            self.stop_signal.set()
            self.stop.disabled = True
            self._show_status()

    def wait(self, timeout: float | None = None) -> None:
        """Block until a background sweep ends (for scripts and tests)."""
        if self.thread is not None:
            self.thread.join(timeout)

    def use_best(self) -> Any:
        """The best trial's recipe (:meth:`Sweep.best_recipe`: its settings, the trial step cap
        lifted), kept in :attr:`best_recipe` and summed up under the board.

        Raises:
            SweepError: no trial has reached an objective yet.
        """
        recipe = self.sweep.best_recipe()
        best = self.sweep.best()
        self.best_recipe = recipe
        self.best_box.value = self._best_summary(recipe, best)
        return recipe

    def curve(self, number: int) -> Any:
        """The dev-curve trace of trial ``number`` (counted from 0, as ``TrialRecord.number``)."""
        return self.curves.data[self._traces[number]]

    # ----- events --------------------------------------------------------------------------------
    def on_event(self, event: SweepEvent) -> None:
        """Consume one sweep event (safe to call from the sweep's thread); an error here is shown
        under the board and never ends the sweep."""
        try:
            with self._lock:
                self._on_event(event)
        except Exception as exc:  # noqa: BLE001 - a drawing error must not end the sweep
            self.log.report(exc, "SweepBoard")

    __call__ = on_event

    def _on_event(self, event: SweepEvent) -> None:
        if isinstance(event, TrialEvent):
            inner = event.event
            self.histories.setdefault(event.number, RunHistory()).on_event(inner)
            if isinstance(inner, Started):
                self._step = (inner.start_step, inner.total_steps)
            elif isinstance(inner, Step):
                self._step = (inner.step, inner.total_steps)
            elif isinstance(inner, Eval) and self.sweep.objective in inner.metrics:
                self._draw_curve(event.number)
            else:
                return
            self._show_status()
        elif isinstance(event, SweepStarted):
            self._live, self._note = True, ""
            self._reload()
            self._draw()
        elif isinstance(event, TrialStarted):
            self.records[event.number] = TrialRecord(event.number, dict(event.params), run_dir=event.run_dir)
            self.histories[event.number] = RunHistory()
            self._running, self._step = event.number, None
            self._draw()
        elif isinstance(event, TrialDone):
            number = event.record.number
            self.records[number] = event.record
            self.histories[number] = self._history(event.record)  # the whole run, also before a resume
            self._running = None
            self._draw()
        elif isinstance(event, SweepDone):
            self.result, self._running, self._live = event, None, False
            self._note = format_sweep_event(event, self.sweep.objective) or event.reason
            self._show_status()

    # ----- reading the folder --------------------------------------------------------------------
    def _history(self, record: TrialRecord) -> RunHistory:
        path = Path(self.sweep.trial_dir(record.number)) / "metrics.jsonl"
        return RunHistory.from_jsonl(path) if path.exists() else RunHistory()

    def _reload(self) -> None:
        """The trials recorded in the sweep's folder, and their curves."""
        for record in self.sweep.records():
            if record.number == self._running:
                continue  # live: its events are newer than its files
            self.records[record.number] = record
            self.histories[record.number] = self._history(record)

    @property
    def best(self) -> TrialRecord | None:
        """The best trial so far (a completed one when there is one), as the sweep chooses."""
        return best_trial(list(self.records.values()), self.sweep.direction)

    # ----- drawing -------------------------------------------------------------------------------
    def _draw(self) -> None:
        self._draw_parcoords()
        self._draw_curves()
        self._draw_table()
        self._show_status()
        has_best = self.best is not None
        self.use_best_button.disabled = not has_best
        self.use_best_button.tooltip = "" if has_best else "no trial has reached an objective yet"

    def _draw_parcoords(self) -> None:
        drawn, dims = parcoords_dimensions(self.sweep.params, sorted(self.records.values(), key=lambda r: r.number),
                                           self.sweep.objective)
        scores = dims[-1]["values"]
        with self.parcoords.batch_update():
            trace = self.parcoords.data[0]
            trace.dimensions = dims
            trace.line = dict(color=scores, colorscale="Viridis", reversescale=self.sweep.direction == "minimize",
                              cmin=dims[-1]["range"][0], cmax=dims[-1]["range"][1], showscale=bool(scores),
                              colorbar=dict(title=dict(text="objective")))
            trace.customdata = [r.number + 1 for r in drawn]  # which trial each line is

    def _draw_curves(self) -> None:
        for number in sorted(self.records):
            if number not in self._traces:
                self.curves.add_scatter(x=[], y=[], mode="lines+markers", name=trial_label(self.records[number].params,
                                                                                           self.keys))
                self._traces[number] = len(self.curves.data) - 1
        best = self.best
        with self.curves.batch_update():
            for number in self._traces:
                self._style_curve(number, best)

    def _draw_curve(self, number: int) -> None:
        """The running trial's curve, after an evaluation."""
        if number in self._traces:
            with self.curves.batch_update():
                self._style_curve(number, self.best)

    def _style_curve(self, number: int, best: TrialRecord | None) -> None:
        steps, values = self.histories.get(number, RunHistory()).metric(self.sweep.objective)
        trace = self.curve(number)
        label = trial_label(self.records[number].params, self.keys)
        is_best = best is not None and best.number == number
        if is_best:
            style, label = dict(width=4, color=BEST_COLOR), f"{label} (best)"
        elif number == self._running:
            style = dict(width=2.5, color=RUNNING_COLOR)
        else:
            style = dict(width=1.5, color=OTHER_COLOR)
        trace.x, trace.y = list(steps), list(values)
        trace.name, trace.line = label, style
        trace.marker = dict(size=7 if is_best else 4, color=style["color"])

    def _draw_table(self) -> None:
        rows = table_rows(list(self.records.values()), self.keys, self.sort_by.value, self.descending.value,
                          self.sweep.objective, self._running)
        order = "descending" if self.descending.value else "ascending"
        self.table.value = (
            html_table(table_columns(self.keys, self.sweep.objective), [_shown(r, self.keys) for r in rows],
                       caption=f"{len(rows)} trials in {self.sweep.out}, by {self.sort_by.value} ({order})")
            if rows else f"<i>no trials in {html.escape(str(self.sweep.out))} yet: press Start</i>"
        )

    def _show_status(self) -> None:
        total, best = self.sweep.trials, self.best
        so_far = f"best so far {best.objective:.4f} (trial {best.number + 1})" if best is not None else "no objective yet"
        if self._going or self._live:
            parts = [f"trial {self._running + 1}/{total}" if self._running is not None else "starting"]
            if self._running is not None and self._step is not None:
                parts.append(f"step {self._step[0]}/{self._step[1]}")
            line = " · ".join([*parts, so_far])
            self.status.value = f"stopping… · {line}" if self._stopping else line
            return
        finished = sum(r.finished for r in self.records.values())
        rest = "" if finished >= total else " · press Start to run the rest" if finished else " · press Start"
        line = self._note or f"{finished} of {total} trials finished · {so_far}"
        self.status.value = line + rest
        self.start.disabled = finished >= total
        self.start.tooltip = "every trial has finished" if finished >= total else ""
        self.stop.disabled = True

    def _best_summary(self, recipe: Any, best: TrialRecord | None) -> str:
        from workbench.recipes import (
            assigned_text,  # the value as --set reads it back
            load_recipe,
            recipe_summary,
        )

        settings = ", ".join(f"{html.escape(k)} = {html.escape(setting_text(v))}" for k, v in best.params.items())
        lines = [f"<b>best: trial {best.number + 1}</b> ({settings}): {html.escape(self.sweep.objective)} "
                 f"{metric(best.objective)} at step {best.best_step}",
                 f"<pre>{html.escape(recipe_summary(recipe))}</pre>",
                 "run it in full: <code>run_recipe(board.best_recipe)</code> or <code>TrainingDashboard(board.best_recipe)</code>"]
        try:  # a command line only when the sweep's recipe is its file as it stands
            as_file = self.sweep.recipe.path is not None and load_recipe(self.sweep.recipe.path) == self.sweep.recipe
        except Exception:  # noqa: BLE001 - then there is no command line to show
            as_file = False
        if as_file:
            sets = " ".join(f"--set {k}={assigned_text(v)}" for k, v in best.params.items())
            lines.append(f"or from a terminal: <code>workbench {recipe.kind} {html.escape(self.sweep.recipe.path)} "
                         f"{html.escape(sets)}</code>")
        return "<br>".join(lines)
