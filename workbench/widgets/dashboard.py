"""Live training curves and the training dashboard.

:class:`LiveCurves` is a plain event consumer: give its ``on_event`` to any ``Trainer`` (or
``run_recipe``) and its figure gains points as the run goes. :class:`TrainingDashboard` adds
controls for the hyper-parameters that matter, Start/Stop, a progress bar and a comparison with
earlier runs read back from the run folder. The dashboard never trains anything itself: Start
runs a recipe through the core (:func:`workbench.recipes.run_recipe`) in a background thread,
so the notebook stays responsive and Stop works mid-run.

Example:
    >>> from workbench.widgets import TrainingDashboard
    >>> TrainingDashboard("offline-b-mnrl-minilm")  # doctest: +SKIP
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.training.events import Done, Eval, Event, RunHistory, Started, Step, format_event
from workbench.training.runs import fresh_run_path, list_runs
from workbench.widgets._common import View, html_table

PRIMARY = "sts-dev_spearman_cosine"


def _curves_figure(title: str = "") -> go.FigureWidget:
    fig = make_subplots(rows=1, cols=2, subplot_titles=("training loss", "STS-B dev spearman (cosine)"))
    fig.update_layout(
        height=340,
        margin=dict(l=40, r=10, t=50, b=40),
        title=title or None,
        legend=dict(orientation="h", y=-0.2),
    )
    fig.update_xaxes(title_text="step")
    return go.FigureWidget(fig)


class LiveCurves(View):
    """Training loss and the primary evaluation metric, updated in place as events arrive.

    Args:
        metric: the evaluation metric to plot (default STS-B dev spearman cosine; the event's
            primary metric is used when this one is absent).
        name: the legend name of this run.

    Example:
        >>> from workbench.training import Step
        >>> curves = LiveCurves()
        >>> curves.on_event(Step(step=10, epoch=0.1, loss=1.5, lr=1e-5, examples_per_s=90.0, elapsed_s=2.0, total_steps=100))
        >>> list(curves.fig.data[0].x)
        [10]
    """

    def __init__(self, metric: str = PRIMARY, name: str = "this run") -> None:
        super().__init__()
        self.metric = metric
        self.history = RunHistory()
        self.fig = _curves_figure()
        self.fig.add_scatter(x=[], y=[], mode="lines+markers", name=f"{name}: loss", row=1, col=1)
        self.fig.add_scatter(x=[], y=[], mode="lines+markers", name=f"{name}: {metric}", row=1, col=2)
        self.progress = widgets.FloatProgress(
            value=0.0, min=0.0, max=1.0, description="progress", layout=widgets.Layout(width="60%")
        )
        self.status = widgets.Label("waiting for the first step")
        self.widget = widgets.VBox([self.fig, widgets.HBox([self.progress, self.status]), self.log.output])

    def on_event(self, event: Event) -> None:
        """Consume one training event (safe to call from the training thread)."""
        try:
            self._on_event(event)
        except Exception as exc:  # noqa: BLE001 - a plotting error must not end the run
            self.log.report(exc, "LiveCurves")

    __call__ = on_event

    def _on_event(self, event: Event) -> None:
        self.history.on_event(event)
        if isinstance(event, Started):
            self.progress.value = event.start_step / max(event.total_steps, 1)
            self.status.value = format_event(event)
        elif isinstance(event, Step):
            with self.fig.batch_update():
                self.fig.data[0].x = list(self.history.steps)
                self.fig.data[0].y = list(self.history.losses)
            self.progress.value = event.step / max(event.total_steps, 1)
            left = (event.total_steps - event.step) * event.elapsed_s / max(event.step, 1)
            self.status.value = (
                f"step {event.step}/{event.total_steps} · loss {event.loss:.4f} · "
                f"{event.examples_per_s:,.0f} examples/s · ~{_minutes(left)} left"
            )
        elif isinstance(event, Eval):
            key = self.metric if self.metric in event.metrics else (event.primary or self.metric)
            steps, values = self.history.metric(key)
            with self.fig.batch_update():
                self.fig.data[1].x = steps
                self.fig.data[1].y = values
        elif isinstance(event, Done):
            self.progress.value = 1.0 if event.reason == "completed" else self.progress.value
            self.status.value = format_event(event)


class TrainingDashboard(View):
    """Hyper-parameter controls, Start/Stop, live curves and a comparison with earlier runs.

    Args:
        recipe: a recipe name or file (see ``recipes/``); the controls override its values.
        runs_root: the folder holding runs (each Start makes a new one there).
        overrides: extra fixed ``section.key=value`` overrides (e.g. a short smoke setting).
        background: run training in a thread (the notebook stays usable; Stop works). Tests
            may pass ``False`` to run synchronously.

    Attributes:
        lr, batch_size, warmup, steps, scale, pooling, layers: the controls (set ``.value``).
        start, stop, refresh: the buttons (call ``.click()``).
        curves: the :class:`LiveCurves` of the current run; ``compare_fig``: earlier runs.
    """

    def __init__(
        self,
        recipe: str = "offline-b-mnrl-minilm",
        runs_root: str | Path = "runs",
        overrides: Sequence[str] = (),
        background: bool = True,
    ) -> None:
        super().__init__()
        from workbench.recipes import load_recipe

        self.recipe_name = recipe
        self.recipe = load_recipe(recipe, overrides)
        self.runs_root = Path(runs_root)
        self.overrides = list(overrides)
        self.background = background
        self.thread: threading.Thread | None = None
        self.stop_signal = threading.Event()
        self.result: Any = None
        model = self.recipe.model
        train = self.recipe.train
        self.lr = widgets.FloatLogSlider(
            value=train.lr,
            base=10,
            min=-6,
            max=-2,
            step=0.1,
            description="learning rate",
            readout_format=".1e",
            style={"description_width": "initial"},
        )
        self.batch_size = widgets.Dropdown(
            options=[8, 16, 32, 64, 128, 256],
            value=_nearest([8, 16, 32, 64, 128, 256], train.batch_size),
            description="batch size",
        )
        self.warmup = widgets.FloatSlider(
            value=train.warmup_ratio, min=0.0, max=0.5, step=0.05, description="warmup"
        )
        self.steps = widgets.IntSlider(
            value=train.max_steps or 200, min=10, max=5000, step=10, description="steps"
        )
        self.scale = widgets.FloatSlider(
            value=float(self.recipe.loss.get("scale", 20.0)),
            min=1.0,
            max=50.0,
            step=1.0,
            description="MNRL scale",
            disabled="scale" not in self.recipe.loss
            and self.recipe.loss.get("name", "MultipleNegativesRankingLoss")
            != "MultipleNegativesRankingLoss",
        )
        self.pooling = widgets.Dropdown(
            options=["mean", "cls", "max", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"],
            value=model.get("pooling", "mean"),
            description="pooling",
            disabled="pooling" not in model and "keep_layers" not in model,
        )
        layers = model.get("keep_layers")
        self.layers = widgets.Text(
            value=",".join(str(i) for i in layers) if layers else "",
            description="student layers",
            placeholder="e.g. 0,3,5 (blank: all)",
            disabled=layers is None,
            style={"description_width": "initial"},
        )
        self.start = widgets.Button(description="Start", button_style="success", icon="play")
        self.stop = widgets.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.refresh = widgets.Button(description="Refresh runs", icon="refresh")
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
                widgets.HBox([self.steps, self.scale]),
                widgets.HBox([self.pooling, self.layers]),
                widgets.HBox([self.start, self.stop, self.refresh]),
            ]
        )
        # The curves sit in their own box: a new run swaps only that box's child, so the views of
        # the widgets after it (the comparison figure) are not rebuilt in the browser.
        self._curves_box = widgets.VBox([self.curves.widget])
        self.widget = widgets.VBox(
            [controls, self._curves_box, self.compare_fig, self.table, self.log.output]
        )
        self.refresh_runs()

    # ----- actions -----------------------------------------------------------------------------
    def settings(self) -> list[str]:
        """The recipe overrides that the controls currently say."""
        out = list(self.overrides) + [
            f"train.lr={self.lr.value!r}",
            f"train.batch_size={self.batch_size.value}",
            f"train.warmup_ratio={self.warmup.value!r}",
            f"train.max_steps={self.steps.value}",
        ]
        if not self.scale.disabled:
            out.append(f"loss.scale={self.scale.value!r}")
        section = "student" if self.recipe.kind == "distill" else "model"
        if not self.pooling.disabled:
            out.append(f"{section}.pooling={self.pooling.value!r}")
        if not self.layers.disabled and self.layers.value.strip():
            layers = [int(x) for x in self.layers.value.replace(" ", "").split(",") if x]
            out.append(f"{section}.keep_layers={layers!r}")
        return out

    def start_run(self) -> None:
        """Start a run with the current settings (in the background unless ``background=False``)."""
        from workbench.recipes import load_recipe

        if self.thread is not None and self.thread.is_alive():
            raise RuntimeError("a run is already going; press Stop first")
        recipe = load_recipe(self.recipe_name, self.settings())
        run_dir = fresh_run_path(self.runs_root, f"{recipe.name}-{time.strftime('%Y%m%d-%H%M%S')}")
        self.stop_signal = threading.Event()
        self.curves = LiveCurves(name=run_dir.name)
        self._curves_box.children = (self.curves.widget,)
        self.start.disabled, self.stop.disabled = True, False
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
                recipe, run_dir=run_dir, callbacks=[self.curves.on_event], stop_signal=self.stop_signal
            )
        except Exception as exc:  # noqa: BLE001 - shown under the dashboard, kept in errors
            self.log.report(exc, "training")
        finally:
            self.start.disabled, self.stop.disabled = False, True
            try:
                self.refresh_runs()
            except Exception as exc:  # noqa: BLE001
                self.log.report(exc, "refresh")

    def stop_run(self) -> None:
        """End the current run after its current step; what it learned is saved."""
        self.stop_signal.set()
        self.stop.disabled = True

    def wait(self, timeout: float | None = None) -> None:
        """Block until the background run ends (for scripts and tests)."""
        if self.thread is not None:
            self.thread.join(timeout)

    def refresh_runs(self) -> None:
        """Overlay the curves of earlier runs and list their settings and scores."""
        runs = list_runs(self.runs_root)
        rows = []
        with self.compare_fig.batch_update():
            self.compare_fig.data = ()
            for run in runs:
                h = run.history
                self.compare_fig.add_scatter(
                    x=h.steps, y=h.losses, mode="lines", name=f"{run.name}: loss", row=1, col=1
                )
                steps, values = h.metric(PRIMARY)
                self.compare_fig.add_scatter(
                    x=steps, y=values, mode="lines+markers", name=f"{run.name}: STS dev", row=1, col=2
                )
                train = run.config.get("train", {})
                loss = run.config.get("loss", {}).get("params", {})
                best = h.best()
                rows.append(
                    [
                        run.name,
                        run.status,
                        _fmt(train.get("lr")),
                        train.get("batch_size", ""),
                        train.get("max_steps", ""),
                        _fmt(loss.get("scale")),
                        values[0] if values else "",
                        best.value if best and best.value is not None else "",
                        h.steps[-1] if h.steps else 0,
                    ]
                )
        header = [
            "run",
            "status",
            "lr",
            "batch",
            "steps",
            "scale",
            "STS dev start",
            "STS dev best",
            "last step",
        ]
        self.table.value = (
            html_table(header, rows, caption=f"{len(runs)} runs in {self.runs_root}")
            if runs
            else f"<i>no runs in {self.runs_root} yet</i>"
        )


def _nearest(options: list[int], value: int) -> int:
    return min(options, key=lambda o: abs(math.log(o) - math.log(max(value, 1))))


def _fmt(value: Any) -> str:
    return f"{value:.2g}" if isinstance(value, float) else ("" if value is None else str(value))


def _minutes(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
