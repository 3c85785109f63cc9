"""Live training curves and the training dashboard.

:class:`LiveCurves` is a plain event consumer: give its ``on_event`` to any ``Trainer`` (or
``run_recipe``) and its figure gains points as the run goes. :class:`TrainingDashboard` adds
controls for the hyper-parameters that matter, Start/Stop, a progress bar and a comparison with
earlier runs read back from the run folder. The dashboard never trains anything itself: Start
runs a recipe through the core (:func:`workbench.recipes.run_recipe`) in a background thread,
so the notebook stays responsive and Stop works mid-run. :meth:`TrainingDashboard.sweep_board`
opens a :class:`~workbench.widgets.SweepBoard` over the same settings, to search some of them.

Example:
    >>> from workbench.widgets import TrainingDashboard
    >>> TrainingDashboard("offline-b-mnrl-minilm")  # doctest: +SKIP
"""

from __future__ import annotations

import html
import math
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import plotly.graph_objects as go

from workbench.figures import add_curves, curves_figure
from workbench.formatting import duration, number
from workbench.models.modules import POOLING_MODES
from workbench.training.events import Done, Eval, Event, Preparing, RunHistory, Started, Step, format_event
from workbench.training.runs import fresh_run_path, list_runs, settings_changes
from workbench.widgets._common import Html, View, figure_widget, html_table

if TYPE_CHECKING:
    from workbench.widgets.sweepboard import SweepBoard

# Runs started after this (when the widgets were imported: a notebook's first cells) are "this session's".
SESSION_STARTED = time.time()


def _curves_figure(title: str = "") -> go.FigureWidget:
    """The report's training-curves figure, as a widget with a legend (it holds several runs)."""
    return figure_widget(curves_figure(title=title, metric_title="primary metric", legend=True))


class LiveCurves(View):
    """Training loss and the primary evaluation metric, updated in place as events arrive.

    Args:
        metric: the evaluation metric to plot; by default (and when a run does not report
            this one) each evaluation's primary metric (``Eval.primary``, e.g. STS-B dev
            spearman cosine).
        name: the legend name of this run.

    Example:
        >>> from workbench.training import Step
        >>> curves = LiveCurves()
        >>> curves.on_event(Step(step=10, epoch=0.1, loss=1.5, lr=1e-5, examples_per_s=90.0, elapsed_s=2.0, total_steps=100))
        >>> list(curves.fig.data[0].x)
        [10]
    """

    def __init__(self, metric: str | None = None, name: str = "this run", redraw_s: float = 0.25) -> None:
        super().__init__()
        self.metric = metric
        # Steps closer together than this are drawn together: a fast run (a small model, a GPU) would
        # otherwise send the browser the whole curve dozens of times a second, and a click on Stop
        # would wait behind that traffic. Evaluations and the end draw everything at once.
        self.redraw_s = redraw_s
        self._drawn = -math.inf
        self._stopping = False
        # For the estimate of what is left: when each event arrived, how long the evaluations took
        # (from Started or the last Step to the Eval), and a smoothed rate.
        self._arrived: float | None = None
        self._eval_s: list[float] = []
        self._start_step = 0
        self._rate: float | None = None
        self.history = RunHistory()
        self.name = name
        self.fig = _curves_figure()
        add_curves(self.fig, self.history, name, metric)
        # The bar keeps the whole width and the status wraps under it: a long line ("model saved to
        # /home/.../model") is read in full, and never squeezes the bar.
        self.progress = widgets.FloatProgress(
            value=0.0, min=0.0, max=1.0, description="progress", layout=widgets.Layout(width="100%")
        )
        self.status = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.say("waiting for the first step")
        self.widget = widgets.VBox([self.fig, self.progress, self.status, self.log.output])

    def say(self, text: str) -> None:
        """Show ``text`` (plain text, wrapped) as the status line."""
        self.status.value = (f'<span style="white-space: normal; overflow-wrap: anywhere">'
                             f"{html.escape(text, quote=False)}</span>")

    @property
    def status_text(self) -> str:
        """The status line as plain text."""
        return html.unescape(re.sub(r"<[^>]+>", "", self.status.value))

    def on_event(self, event: Event) -> None:
        """Consume one training event (safe to call from the training thread)."""
        try:
            self._on_event(event)
        except Exception as exc:  # noqa: BLE001 - a plotting error must not end the run
            self.log.report(exc, "LiveCurves")

    __call__ = on_event

    def stopping(self) -> None:
        """Say that Stop was pressed: the run ends after its current step, evaluates and saves
        (this replaces the ETA until the run's Done arrives)."""
        self._stopping = True
        self.say(f"stopping… the run ends after step {self.history.steps[-1] if self.history.steps else 0}, then evaluates and saves its model")

    def seconds_left(self, event: Step) -> tuple[float, int]:
        """(seconds, evaluations) still to come after ``event``: the training steps at the rate seen
        so far (evaluation time taken out), plus each evaluation still due (every ``eval_every`` as
        the evaluations so far show it, and the final one) at the duration the last ones took."""
        spent_evaluating = sum(self._eval_s)
        done = max(event.step - self._start_step, 1)
        per_step = max(event.elapsed_s - spent_evaluating, 0.0) / done
        train_left = (event.total_steps - event.step) * per_step
        steps = sorted({e.step for e in self.history.evals})
        gaps = [b - a for a, b in zip(steps, steps[1:], strict=False) if b > a]
        every = min(gaps) if gaps else (steps[-1] if steps and steps[-1] > 0 else None)
        total = event.total_steps
        seen = set(steps)
        if every:  # a Step comes before the evaluation at its own step: that one is still due
            due_at = set(range(-(-event.step // every) * every, total + 1, every)) | {total}
        else:
            due_at = {total}  # the evaluation at the end
        due = len(due_at - seen) if seen else 0  # no evaluation seen: a run without an evaluator (or not yet known)
        recent = self._eval_s[-3:]
        return train_left + due * (sum(recent) / len(recent) if recent else 0.0), due

    def _draw_losses(self) -> None:
        if len(self.fig.data[0].x or ()) == len(self.history.steps):
            return
        with self.fig.batch_update():
            self.fig.data[0].x = list(self.history.steps)
            self.fig.data[0].y = list(self.history.losses)

    def _on_event(self, event: Event) -> None:
        now = time.monotonic()
        if isinstance(event, Started):
            self._start_step = event.start_step
        elif isinstance(event, Eval) and self._arrived is not None:
            self._eval_s.append(max(now - self._arrived, 0.0))
        elif isinstance(event, Step):
            self._rate = event.examples_per_s if self._rate is None else 0.7 * self._rate + 0.3 * event.examples_per_s
        self._arrived = now
        self.history.on_event(event)
        if isinstance(event, Step):
            if now - self._drawn < self.redraw_s and event.step < event.total_steps:
                return  # drawn with a later step, an evaluation or the end
            self._drawn = now
        elif isinstance(event, (Eval, Done)):
            self._draw_losses()
        if self._stopping and not isinstance(event, Done):
            if isinstance(event, Step):
                self._draw_losses()
                self.stopping()
                return
        if isinstance(event, Preparing):  # before the first step: the teacher encoding, say
            self.progress.value = event.done / max(event.total, 1)
            self.say(format_event(event))
        elif isinstance(event, Started):
            self.progress.value = event.start_step / max(event.total_steps, 1)
            self.say(format_event(event))
        elif isinstance(event, Step):
            self._draw_losses()
            self.progress.value = event.step / max(event.total_steps, 1)
            left, evaluations = self.seconds_left(event)
            including = f" (with {evaluations} evaluation{'s' if evaluations != 1 else ''})" if evaluations else ""
            self.say(
                f"step {event.step}/{event.total_steps} · loss {event.loss:.4f} · "
                f"{self._rate or event.examples_per_s:,.0f} examples/s · ~{duration(left)} left{including}"
            )
        elif isinstance(event, Eval):
            key = self.metric if self.metric in event.metrics else event.primary
            if key is None:
                return
            steps, values = self.history.metric(key)
            with self.fig.batch_update():
                self.fig.data[1].name = f"{self.name}: {key}"
                self.fig.layout.annotations[1].text = key  # the right panel's title: the metric it shows
                self.fig.data[1].x = steps
                self.fig.data[1].y = values
        elif isinstance(event, Done):
            self.progress.value = 1.0 if event.reason == "completed" else self.progress.value
            self.say(format_event(event))


class TrainingDashboard(View):
    """Hyper-parameter controls, Start/Stop, live curves and a comparison with earlier runs.

    The controls start at the recipe's values, and Start runs the recipe with what they say:
    a control left alone runs the recipe's value (an epoch-based recipe runs its epochs), a
    control moved replaces that field (``Recipe.with_``), so ``config.json`` and the model card
    record what ran. A control that cannot apply to the recipe is disabled, its tooltip says why.

    Args:
        recipe: a recipe name or file (see ``recipes/``), or a :class:`~workbench.recipes.Recipe`
            (e.g. ``load_recipe(name).with_(train={"max_steps": 50})``).
        runs_root: the folder holding runs (each Start makes a new one there).
        background: run training in a thread (the notebook stays usable; Stop works). Tests
            may pass ``False`` to run synchronously.

    Attributes:
        lr, batch_size, warmup, steps, scale, pooling, layers: the controls (set ``.value``).
        start, stop, refresh: the buttons (call ``.click()``).
        compare: which earlier runs the comparison shows (``"session"``: this session's runs of the
            recipe; ``"recipe"``: all its runs in ``runs_root``; ``"all"``: every run there).
        recipe: the recipe the controls start from; :meth:`planned_recipe` is what Start runs.
        curves: the :class:`LiveCurves` of the current run; ``compare_fig``: earlier runs.

    Example:
        >>> from workbench.recipes import load_recipe
        >>> dash = TrainingDashboard(load_recipe("offline-b-mnrl-minilm").with_(train={"max_steps": 50}))
        >>> dash.steps.value, dash.steps_note.value
        (50, "the recipe's max_steps")
        >>> dash.lr.value = 1e-4
        >>> planned = dash.planned_recipe()
        >>> planned.train.lr, planned.train.max_steps, planned.loss.params
        (0.0001, 50, {'scale': 20.0})
    """

    def __init__(
        self,
        recipe: str | Any = "offline-b-mnrl-minilm",
        runs_root: str | Path = "runs",
        background: bool = True,
    ) -> None:
        super().__init__()
        from workbench.recipes import Recipe, load_data, load_recipe, planned_steps

        self.recipe = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
        self.runs_root = Path(runs_root)
        self.background = background
        self.thread: threading.Thread | None = None
        self.stop_signal = threading.Event()
        self.result: Any = None
        self._going = False  # from Start's click until the run has ended
        self._starting = threading.Lock()
        spec, train, loss = self.recipe.model, self.recipe.train, self.recipe.loss
        wide = {"description_width": "initial"}
        self.lr = widgets.FloatLogSlider(
            value=train.lr, base=10, min=min(-6, math.floor(math.log10(train.lr))),
            max=max(-2, math.ceil(math.log10(train.lr))), step=0.1, description="learning rate",
            readout_format=".1e", style=wide,
        )
        self.batch_size = widgets.Dropdown(
            options=sorted({8, 16, 32, 64, 128, 256, train.batch_size}), value=train.batch_size, description="batch size",
        )
        self.warmup = widgets.FloatSlider(
            value=train.warmup_ratio, min=0.0, max=max(0.5, train.warmup_ratio), step=0.05, description="warmup"
        )
        # The recipe's own length: its max_steps, or its epochs counted in batches of the data.
        self._rows = None if train.max_steps is not None else [len(load_data(d)) for d in self.recipe.data]
        self._recipe_steps = planned_steps(self.recipe, self._rows)
        self.steps = widgets.IntSlider(
            value=self._recipe_steps, min=1, max=max(5000, self._recipe_steps), step=1, description="steps"
        )
        self.steps_note = widgets.Label()
        self._show_recipe_length()
        takes_scale = loss.takes("scale")
        self.scale = widgets.FloatSlider(
            value=float(loss.value("scale")) if takes_scale else 20.0, min=1.0, max=max(50.0, float(loss.value("scale")) if takes_scale else 50.0),
            step=1.0, description="loss scale", disabled=not takes_scale,
            tooltip="" if takes_scale else f"{loss.name} has no scale",
        )
        section = self.recipe.model_section
        finished = spec.load is not None
        self._pooling_default = spec.pooling or ("teacher's" if spec.from_teacher else "mean")
        self.pooling = widgets.Dropdown(
            options=list(dict.fromkeys([self._pooling_default, *POOLING_MODES])), value=self._pooling_default,
            description="pooling", disabled=finished,
            tooltip=f"[{section}] load = a finished model, taken as it is" if finished else "",
        )
        self._layers_default = ",".join(str(i) for i in spec.keep_layers) if spec.keep_layers else ""
        layers_apply = not finished and spec.fresh is None
        self.layers = widgets.Text(
            value=self._layers_default, description="keep layers", placeholder="e.g. 0,3,5 (blank: all)",
            disabled=not layers_apply, style=wide,
            tooltip="" if layers_apply else (f"[{section}] load = a finished model, taken as it is" if finished
                                             else f"[{section}] fresh = a new model: set its num_hidden_layers instead"),
        )
        self.batch_size.observe(lambda _c: self._show_recipe_length(), names="value")
        self.steps.observe(lambda _c: self._show_recipe_length(), names="value")
        self.start = widgets.Button(description="Start", button_style="success", icon="play")
        self.stop = widgets.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.refresh = widgets.Button(description="Refresh runs", icon="refresh")
        self.compare = widgets.Dropdown(
            options=[("this session's runs of the recipe", "session"), ("every run of the recipe", "recipe"),
                     (f"every run in {self.runs_root}", "all")],
            value="session", description="compare", style=wide, layout=widgets.Layout(width="auto"),
        )
        self.compare.observe(self.log.guard(lambda _c: self.refresh_runs(), "compare"), names="value")
        self.start.on_click(self.log.guard(lambda _b: self.start_run(), "Start"))
        self.stop.on_click(self.log.guard(lambda _b: self.stop_run(), "Stop"))
        self.refresh.on_click(self.log.guard(lambda _b: self.refresh_runs(), "Refresh"))
        self.curves = LiveCurves(name="current")
        self.compare_fig = _curves_figure("earlier runs")
        self.table = widgets.HTML()
        controls = widgets.VBox(
            [
                widgets.HTML(f"<b>{self.recipe.name}</b>: {self.recipe.description}"),
                widgets.HBox([self.lr, self.batch_size, self.warmup]),
                widgets.HBox([self.steps, self.steps_note, self.scale]),
                widgets.HBox([self.pooling, self.layers]),
                widgets.HBox([self.start, self.stop, self.refresh, self.compare]),
            ]
        )
        # The curves sit in their own box: a new run swaps only that box's child, so the views of
        # the widgets after it (the comparison figure) are not rebuilt in the browser.
        self._curves_box = widgets.VBox([self.curves.widget])
        self.widget = widgets.VBox(
            [controls, self._curves_box, self.compare_fig, self.table, self.log.output]
        )
        self.refresh_runs()

    # ----- what the controls say ---------------------------------------------------------------
    def _follows_recipe_length(self) -> bool:
        return self.steps.value == self._recipe_steps

    def _show_recipe_length(self) -> None:
        """Say what the steps control means; while it is left on the recipe's length, an
        epoch-based recipe's length follows the batch size (a larger batch, fewer steps)."""
        from workbench.recipes import planned_steps

        train = self.recipe.train
        if train.max_steps is None:
            follows = self._follows_recipe_length()
            self._recipe_steps = planned_steps(self.recipe.with_(train={"batch_size": self.batch_size.value}), self._rows)
            if follows and self.steps.value != self._recipe_steps:
                self.steps.max = max(self.steps.max, self._recipe_steps)
                self.steps.value = self._recipe_steps  # its observer comes back here to update the note
                return
        if not self._follows_recipe_length():
            self.steps_note.value = "max_steps (set here)"
        elif train.max_steps is None:
            epochs = f"{train.epochs} epoch{'s' if train.epochs != 1 else ''}"
            self.steps_note.value = f"the recipe's {epochs} (≈{self._recipe_steps} steps)"
        else:
            self.steps_note.value = "the recipe's max_steps"

    def planned_recipe(self) -> Any:
        """The recipe Start runs: the recipe with every field whose control was moved replaced."""
        train = self.recipe.train
        changes: dict[str, dict[str, Any]] = {"train": {}, "loss": {}, "model": {}}
        if self.lr.value != train.lr:
            changes["train"]["lr"] = float(self.lr.value)
        if self.batch_size.value != train.batch_size:
            changes["train"]["batch_size"] = int(self.batch_size.value)
        if self.warmup.value != train.warmup_ratio:
            changes["train"]["warmup_ratio"] = float(self.warmup.value)
        if not self._follows_recipe_length():
            changes["train"]["max_steps"] = int(self.steps.value)
        if not self.scale.disabled and self.scale.value != self.recipe.loss.value("scale"):
            changes["loss"]["scale"] = float(self.scale.value)
        if not self.pooling.disabled and self.pooling.value != self._pooling_default:
            changes["model"]["pooling"] = self.pooling.value
        layers = self.layers.value.replace(" ", "")
        if not self.layers.disabled and layers != self._layers_default:
            try:
                keep = [int(x) for x in layers.split(",") if x] or None
            except ValueError:
                raise ValueError(f"keep layers: {self.layers.value!r} is not a list of layer numbers such as 0,3,5") from None
            changes["model"]["keep_layers"] = keep
        return self.recipe.with_(**{k: v for k, v in changes.items() if v})

    # ----- actions -----------------------------------------------------------------------------
    def start_run(self) -> None:
        """Start a run with the current settings (in the background unless ``background=False``).

        Start is disabled first thing, so the browser greys it at once; a click that arrives while
        a run is starting or going (a double click) does nothing.
        """
        with self._starting:
            if self._going:
                return
            self._going = True
        self.start.disabled = True
        try:
            recipe = self.planned_recipe()
            run_dir = fresh_run_path(self.runs_root, f"{recipe.name}-{time.strftime('%Y%m%d-%H%M%S')}")
            self.stop_signal = threading.Event()
            self.curves = LiveCurves(name=changes_label(recipe.to_dict(), self.recipe.to_dict()))
            self._curves_box.children = (self.curves.widget,)
        except BaseException:
            self._going, self.start.disabled = False, False
            raise
        self.stop.disabled = False
        if self.background:
            self.thread = threading.Thread(
                target=self._run, args=(recipe, run_dir), daemon=True, name="workbench-train"
            )
            self.thread.start()
        else:
            self._run(recipe, run_dir)

    def _run(self, recipe: Any, run_dir: Path) -> None:
        from workbench.recipes import run_recipe

        try:
            self.result = run_recipe(
                recipe, run_dir=run_dir, callbacks=[self.curves.on_event, _let_the_kernel_answer],
                stop_signal=self.stop_signal,
            )
        except Exception as exc:  # noqa: BLE001 - shown under the dashboard, kept in errors
            self.log.report(exc, "training")
        finally:
            self._going = False
            self.start.disabled, self.stop.disabled = False, True
            try:
                self.refresh_runs()
            except Exception as exc:  # noqa: BLE001
                self.log.report(exc, "refresh")

    def stop_run(self) -> None:
        """End the current run after its current step; what it learned is saved. The status says
        "stopping…" from the click until the run has saved its model."""
        self.stop_signal.set()
        self.stop.disabled = True
        if self._going:
            self.curves.stopping()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the background run ends (for scripts and tests)."""
        if self.thread is not None:
            self.thread.join(timeout)

    def sweep_board(self, grid: dict[str, list], out: str | Path | None = None, **sweep_kwargs: Any) -> SweepBoard:
        """A :class:`~workbench.widgets.SweepBoard` over what Start would run (:meth:`planned_recipe`),
        one trial per combination of ``grid``'s values; press its Start to run the trials.

        Args:
            grid: ``{"section.key": [values]}``, e.g. ``{"train.lr": [1e-5, 1e-4], "loss.scale": [10, 20]}``.
            out: the sweep's folder; by default ``runs_root/sweeps/<recipe>-<time>``.
            sweep_kwargs: passed to :class:`~workbench.sweep.Sweep` (``trial_steps=50``, ``objective``...).

        Example:
            >>> board = dash.sweep_board({"train.lr": [1e-5, 1e-4]}, trial_steps=50)  # doctest: +SKIP
        """
        from workbench.sweep import Param, Sweep
        from workbench.widgets.sweepboard import SweepBoard

        recipe = self.planned_recipe()
        if out is None:
            out = self.runs_root / "sweeps" / f"{recipe.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        params = [Param(key, values=tuple(values)) for key, values in grid.items()]
        return SweepBoard(Sweep(recipe, params, out=out, **sweep_kwargs), background=self.background)

    def compared_runs(self, runs: list[Any] | None = None) -> list[Any]:
        """The runs the comparison shows (oldest first), as :attr:`compare` says: ``"session"``, the
        runs of this recipe started since this Python process imported the workbench (a notebook's
        session, the runs of earlier cells included); ``"recipe"``, every run of this recipe in
        ``runs_root``; ``"all"``, every run there (a distillation run too)."""
        runs = list_runs(self.runs_root) if runs is None else runs
        which = self.compare.value
        if which != "all":
            runs = [r for r in runs if r.config.get("recipe", {}).get("name") == self.recipe.name]
        if which == "session":
            runs = [r for r in runs if _started_at(r) >= SESSION_STARTED]
        return runs

    def refresh_runs(self) -> None:
        """Overlay the curves of earlier runs (as :attr:`compare` chooses them) and list their
        settings and scores. Each run is named by what it changed from the dashboard's recipe
        ("scale 5"), keeps one colour in both panels, and shows its points even when it logged
        only one; "last step" is where the run ended."""
        every = list_runs(self.runs_root)
        runs = self.compared_runs(every)
        base = self.recipe.to_dict()
        # A run without its recipe in config.json (an older version's) is named by its folder.
        labels = unique_labels([changes_label(r.config["recipe"], base) if isinstance(r.config.get("recipe"), dict)
                                else r.name for r in runs])
        rows = []
        with self.compare_fig.batch_update():
            self.compare_fig.data = ()
            for k, (run, label) in enumerate(zip(runs, labels, strict=True)):
                h = run.history
                few = len(h.steps) <= 40
                add_curves(self.compare_fig, h, label, loss_mode="lines+markers" if few else "lines")
                color = RUN_COLORS[k % len(RUN_COLORS)]
                loss, metric = self.compare_fig.data[-2:]
                for trace in (loss, metric):
                    trace.update(line_color=color, marker=dict(color=color, size=5), legendgroup=run.name,
                                 hovertemplate=f"{html.escape(label)} ({html.escape(run.name)})<br>"
                                               "step %{x}: %{y:.4f}<extra></extra>")
                loss.showlegend = False  # one legend entry per run: its colour in both panels
                metric.name = label
                steps, values = h.metric(h.primary) if h.primary else ([], [])
                train = run.config.get("train", {})
                params = run.config.get("loss", {}).get("params", {})
                best = h.best()
                rows.append([
                    Html(f'<span style="color:{color}">■</span> {html.escape(label)}'),
                    run.name,
                    run.status,
                    _fmt(train.get("lr")),
                    train.get("batch_size", ""),
                    h.total_steps or train.get("max_steps", ""),
                    _fmt(params.get("scale")),
                    values[0] if values else "",
                    best.value if best and best.value is not None else "",
                    last_step(h),
                ])
            self.compare_fig.layout.legend = dict(orientation="v", x=1.02, xanchor="left", y=1, yanchor="top",
                                                  title_text="runs")
            self.compare_fig.layout.title = self._compare_title(len(runs))
        header = ["run", "folder", "status", "lr", "batch", "steps", "scale", "STS dev start", "STS dev best", "last step"]
        if runs:
            self.table.value = html_table(header, rows, caption=self._compare_title(len(runs)))
        else:
            others = len(every) if self.compare.value != "all" else 0
            hint = f" ({others} other run{'s' if others != 1 else ''} there: choose which under compare)" if others else ""
            self.table.value = f"<i>no {self._compare_words()} in {html.escape(str(self.runs_root))} yet{hint}</i>"

    def _compare_words(self) -> str:
        return {"session": f"runs of {self.recipe.name} in this session",
                "recipe": f"runs of {self.recipe.name}", "all": "runs"}[self.compare.value]

    def _compare_title(self, n: int) -> str:
        title = f"{n} {self._compare_words()}".replace(f"{n} runs", f"{n} run" if n == 1 else f"{n} runs", 1)
        return f"{title} in {self.runs_root}" if self.compare.value == "all" else title


# One colour per run, the same in both panels (plotly's default qualitative colours).
RUN_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
              "#bcbd22", "#17becf")
# How a changed recipe field is named in a run's label.
_FIELD_NAMES = {"train.lr": "lr", "train.batch_size": "batch", "train.max_steps": "steps", "train.epochs": "epochs",
                "train.warmup_ratio": "warmup", "train.seed": "seed", "loss.scale": "scale", "loss.name": "loss",
                "model.pooling": "pooling", "model.keep_layers": "layers", "model.max_seq_length": "max_seq_length"}


def changes_label(recipe: dict[str, Any], base: dict[str, Any]) -> str:
    """What a run's recipe (its config.json ``recipe``) changed from ``base``, for a legend.

    Example:
        >>> base = {"name": "r", "train": {"lr": 1e-4, "seed": 0}, "loss": {"name": "MNRL", "scale": 20.0}}
        >>> changes_label({**base, "loss": {"name": "MNRL", "scale": 5.0}}, base)
        'scale 5'
        >>> changes_label({**base, "train": {"lr": 2e-4, "seed": 1}}, base), changes_label(base, base)
        ('lr 0.0002 · seed 1', "the recipe's settings")
        >>> changes_label({**base, "name": "offline-a-distill"}, base)
        'offline-a-distill'
    """
    if recipe.get("name") != base.get("name"):  # another recipe: its name says more than a list of changes
        return str(recipe.get("name") or "a run without a recipe")
    parts = []
    for key, (_, value) in settings_changes({"recipe": base}, {"recipe": recipe}).items():
        shown = "unset" if value is None else (
            ",".join(str(v) for v in value) if isinstance(value, list) else _fmt(value) if isinstance(value, float)
            else str(value))
        parts.append(f"{_FIELD_NAMES.get(key, key)} {shown}")
    return " · ".join(parts) or "the recipe's settings"


def unique_labels(labels: list[str]) -> list[str]:
    """The labels, a repeated one numbered from its second use on ("scale 5", "scale 5 (2)").

    Example:
        >>> unique_labels(["scale 5", "scale 20", "scale 5"])
        ['scale 5', 'scale 20', 'scale 5 (2)']
    """
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return out


def _let_the_kernel_answer(event: Event) -> None:
    """After each step of a background run, give the GIL away for a moment: the kernel's own thread
    then reads a click on Stop at once, even while a small model takes dozens of steps a second."""
    if isinstance(event, Step):
        time.sleep(0.002)


def _started_at(run: Any) -> float:
    """When a run began: its config.json is written first thing."""
    try:
        return (run.path / "config.json").stat().st_mtime
    except OSError:
        return 0.0


def last_step(history: RunHistory) -> int:
    """The step a run ended at (or has reached): its Done's, else its last step or evaluation."""
    if history.done is not None:
        return history.done.step
    return max([*history.steps, *(e.step for e in history.evals), 0])


def _fmt(value: Any) -> str:
    return "" if value is None else number(value, digits=2)
