"""The speed/quality map as a widget: press Measure, watch the encoders land on the map.

The numbers are :func:`workbench.speed.measure_encoders`'s; the figure is
:func:`workbench.figures.speed_quality_figure`'s (points arrive through its ``callback`` and are
drawn as they come); the table beside it is :func:`workbench.speed.table_rows`. The widget only
holds the encoders it was given and the pairs to score them on.
"""

from __future__ import annotations

import html
import threading
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as widgets

from workbench.evaluation import STSEvaluator
from workbench.figures import draw_speed_quality, speed_quality_figure
from workbench.speed import (
    COLUMNS,
    MIN_PAIRS,
    EncoderPoint,
    SpeedQualityResult,
    check_encoders,
    format_row,
    machine_description,
    measure_encoders,
    pareto_front,
    table_rows,
)
from workbench.widgets._common import LatestJob, View, figure_widget, html_table

_OWNER = "SpeedQualityMap"


class SpeedQualityMap(View):
    """Sentences per second on this machine against STS quality, for several encoders, live.

    Press **Measure** (or call :meth:`measure`): each encoder is scored on the pairs and timed
    (see :func:`~workbench.speed.measure_encoders`); its point appears on the map after its
    first timed run and moves as further runs refine the median. The Pareto front (the encoders
    worth choosing) is the red step line; the table beside the map compares each encoder with the
    baseline (the slowest unless named): "× faster" and what it costs in quality.

    Args:
        encoders: ``{name: encoder}`` (a workbench model, a SentenceTransformer, an object with
            ``.encode``, a function ``texts -> array``), or a measured
            :class:`~workbench.speed.SpeedQualityResult` to show as it is (nothing is re-measured).
        pairs: the STS pairs: a dataset, DataFrame or dict with ``sentence1``, ``sentence2`` and
            ``score`` columns, or a ``(sentences1, sentences2, scores)`` triple. By default
            STS-B dev (``load_stsb("dev")``: from ``WORKBENCH_DATA``, else the built-in sample,
            which the status line and the title then call a SAMPLE).
        limit: use the first ``limit`` pairs only (a quick look; the full dev set is 1,500).
        speed_texts: the texts to time; by default the distinct sentences of the pairs.
        batch_size: given to encoders whose ``encode`` takes it.
        repeats: timed runs per encoder.
        sizes: ``{name: bytes or path}`` for sizes the encoders cannot tell.
        baseline: the encoder the others are compared with.
        background: the Measure button measures in a thread (the notebook stays usable);
            :meth:`measure` itself runs in the caller's thread unless asked otherwise.

    Attributes:
        fig: the ``FigureWidget`` (the table is beside it, or below on a narrow screen) (``fig.data[0]``: every encoder; ``fig.data[1]``: the front).
        table: the ``HTML`` widget holding the table. ``button``: Measure. ``status``: a line
            saying what is measured on what. ``result``: the last :class:`SpeedQualityResult`.

    Raises:
        TypeError: an encoder is neither an object with ``.encode`` nor callable, a name is not a
            string, ``pairs`` is not a dataset or triple.
        ValueError: no encoders, fewer than 3 pairs, a ``sizes`` or ``baseline`` name that is not
            an encoder.

    Example:
        >>> import numpy as np
        >>> chars = lambda texts: np.array([[t.count(c) for c in "aeioust "] for t in texts], dtype=float)
        >>> pairs = (["a cat sits", "a man runs", "the sky"], ["a kitten sits", "a woman", "stocks"], [4.8, 3.0, 0.2])
        >>> w = SpeedQualityMap({"chars": chars, "length": lambda t: np.array([[len(s), 1.0] for s in t])},
        ...                     pairs, repeats=1)
        >>> result = w.measure()
        >>> len(w.fig.data[0].x), sorted(p.name for p in result.points)
        (2, ['chars', 'length'])
    """

    def __init__(
        self,
        encoders: Mapping[str, Any] | SpeedQualityResult,
        pairs: Any = None,
        *,
        limit: int | None = None,
        speed_texts: Sequence[str] | None = None,
        batch_size: int = 32,
        repeats: int = 3,
        sizes: Mapping[str, Any] | None = None,
        baseline: str | None = None,
        background: bool = True,
    ) -> None:
        super().__init__()
        self.result: SpeedQualityResult | None = None
        self.background = background
        self.batch_size, self.repeats, self.sizes, self.baseline = batch_size, repeats, sizes, baseline
        self.speed_texts = speed_texts
        self.points: dict[str, EncoderPoint] = {}  # as they come, by name
        self._lock = threading.Lock()
        self.fig = figure_widget(speed_quality_figure())
        self.fig.layout.width = 760
        self.table = widgets.HTML(layout=widgets.Layout(margin="20px 0 0 12px"))
        self.button = widgets.Button(description="Measure", button_style="primary", icon="play",
                                     layout=widgets.Layout(width="130px"))
        self.progress = widgets.IntProgress(value=0, min=0, max=1, layout=widgets.Layout(width="30%"))
        self.status = widgets.HTML()
        if isinstance(encoders, SpeedQualityResult):
            self.encoders: dict[str, Any] = {}
            self.pairs: tuple[list[str], list[str], list[float]] | None = None
            self.data, self.is_sample = encoders.data, encoders.is_sample
            self.button.disabled = True
            self.button.tooltip = "this map shows a measured result; give encoders to measure again"
            self._show(encoders)
            self.status.value = self._describe(encoders)
        else:
            check_encoders(encoders, sizes, baseline, owner=_OWNER)
            if repeats < 1:
                raise ValueError(f"repeats must be at least 1, got {repeats}")
            self.encoders = dict(encoders)
            self.pairs, self.data, self.is_sample = _pairs(pairs, limit)
            self.progress.max = len(self.encoders) * repeats
            self.status.value = (
                f"{len(self.encoders)} encoders · {html.escape(self.data)}{_sample_note(self.is_sample)}"
                " · press <b>Measure</b>"
            )
            self._draw()
        self._job = LatestJob(self._measure, self.log, on_error=self._failed)
        self.button.on_click(self.log.guard(lambda _b: self.measure(background=self.background), "measure"))
        self.widget = widgets.VBox([
            widgets.HBox([self.button, self.progress]),
            self.status,
            widgets.HBox([self.fig, self.table], layout=widgets.Layout(flex_flow="row wrap")),
            self.log.output,
        ])  # fmt: skip

    def measure(self, background: bool = False) -> SpeedQualityResult | None:
        """Measure every encoder, drawing each point as it comes.

        Args:
            background: run in a thread and return at once (``None``); :meth:`wait` waits for it.

        Returns:
            The :class:`SpeedQualityResult` (also kept in :attr:`result`), or ``None`` in the background.

        Raises:
            RuntimeError: the map was built from a result (there is nothing to measure).
        """
        if not self.encoders or self.pairs is None:
            raise RuntimeError("this map shows a measured result: give encoders to measure")
        self.button.disabled = True
        if background:
            self._job.background = True
            self._job.submit(True)
            return None
        self._job.background = False
        try:
            self._job.submit(True)
        except BaseException as exc:
            self._failed(exc)
            raise
        return self.result

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a background measurement to end; ``False`` on timeout."""
        return self._job.wait(timeout)

    # ----- what the job does --------------------------------------------------------------------
    def _measure(self, _request: Any) -> None:
        with self._lock:
            self.points = {}
            self.progress.value = 0
            self.status.value = f"measuring {len(self.encoders)} encoders on {html.escape(self.data)}…"
            s1, s2, scores = self.pairs
            result = measure_encoders(
                self.encoders, s1, s2, scores, speed_texts=self.speed_texts, batch_size=self.batch_size,
                repeats=self.repeats, sizes=self.sizes, baseline=self.baseline, data=self.data,
                is_sample=self.is_sample, progress=False, callback=self._on_point,
            )  # fmt: skip
            self.result = result
            self._show(result)
            self.progress.value = self.progress.max
            self.status.value = self._describe(result)
            self.button.disabled = False

    def _on_point(self, point: EncoderPoint) -> None:
        self.points[point.name] = point
        self.progress.value = min(self.progress.max, self.progress.value + 1)
        self.status.value = (
            f"{html.escape(point.name)}: run {len(point.timings)} of {self.repeats}, "
            f"{point.sentences_per_s:,.0f} sentences/s · {len(self.points)} of {len(self.encoders)} encoders on the map"
        )
        self._draw()

    def _failed(self, exc: BaseException) -> None:
        self.button.disabled = False
        self.status.value = f"<span style='color:#b00'>failed: {html.escape(type(exc).__name__)}: {html.escape(str(exc))[:300]}</span>"

    # ----- drawing ------------------------------------------------------------------------------
    def _draw(self) -> None:
        """Draw the points measured so far (a provisional result)."""
        points = list(self.points.values())
        baseline = self.baseline if self.baseline in self.points else None
        partial = SpeedQualityResult(
            points, pareto=pareto_front(points),
            baseline=baseline or (min(points, key=lambda p: p.sentences_per_s).name if points else ""),
            machine=machine_description(), data=self.data, n_pairs=len(self.pairs[0]) if self.pairs else 0,
            batch_size=self.batch_size, repeats=self.repeats, is_sample=self.is_sample,
        ) if points else None  # fmt: skip
        self._show(partial)

    def _show(self, result: SpeedQualityResult | None) -> None:
        with self.fig.batch_update():
            draw_speed_quality(self.fig, result)
        if result is None:
            names = ", ".join(html.escape(n) for n in self.encoders)
            self.table.value = f"<div style='font-size:15px'>not measured yet: {names}</div>"
            return
        rows = [format_row(r) for r in table_rows(result.points, result.baseline)]
        caption = f"compared with {result.baseline} · {result.metric}"
        self.table.value = f"<div style='font-size:15px'>{html_table([h for _, h in COLUMNS], rows, caption)}</div>"

    def _describe(self, result: SpeedQualityResult) -> str:
        front = ", ".join(html.escape(n) for n in result.pareto)
        return (
            f"{len(result.points)} encoders, {result.repeats} timed runs each · {html.escape(result.data)}"
            f"{_sample_note(result.is_sample)} · Pareto front: {front}"
        )


def _sample_note(is_sample: bool) -> str:
    return " · <b>SAMPLE data: the quality numbers mean nothing</b> (set WORKBENCH_DATA)" if is_sample else ""


def _pairs(pairs: Any, limit: int | None) -> tuple[tuple[list[str], list[str], list[float]], str, bool]:
    """The STS pairs as three lists, what they are in words, and whether they are the sample."""
    from workbench.data import SampleDataWarning, load_stsb, source

    if pairs is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SampleDataWarning)  # said in the status line and the title instead
            pairs = load_stsb("dev")
    info = source(pairs) if hasattr(pairs, "info") and hasattr(pairs, "column_names") else None  # a Dataset
    if isinstance(pairs, (tuple, list)) and len(pairs) == 3 and not isinstance(pairs[0], str):
        checked = STSEvaluator(*pairs)  # lengths, strings, finite scores: the evaluator's own checks
    elif hasattr(pairs, "keys") or hasattr(pairs, "column_names"):
        checked = STSEvaluator.from_dataset(pairs)
    else:
        raise TypeError(
            f"{_OWNER} takes pairs as a dataset (or dict, DataFrame) with sentence1, sentence2 and score "
            f"columns, or a (sentences1, sentences2, scores) triple; got {type(pairs).__name__}"
        )
    s1, s2, scores = checked.sentences1, checked.sentences2, checked.scores.tolist()
    total = len(scores)
    if limit is not None:
        if limit < MIN_PAIRS:
            raise ValueError(f"limit={limit}: the map needs at least {MIN_PAIRS} pairs")
        s1, s2, scores = s1[:limit], s2[:limit], scores[:limit]
    if len(scores) < MIN_PAIRS:
        raise ValueError(f"{_OWNER} needs at least {MIN_PAIRS} STS pairs, got {len(scores)}")
    what = str(info) if info is not None else f"{total} STS pairs"
    if len(scores) < total:
        what = f"the first {len(scores)} pairs of {what}"
    return (s1, s2, scores), what, bool(info is not None and info.is_sample)
