"""The widgets in a real browser (slow): JupyterLab, headless Chromium, Playwright.

A copy of ``tests/browser/widgets.ipynb`` is opened in JupyterLab (a local server on a free
port, a random token, a scratch folder and settings) in Debian's Chromium driven by Playwright.
All cells are run from the Run menu; then the tests check what plotly drew against what the
kernel holds (traces, points, bars), move the controls as a person would (a dropdown, a slider
dragged with the mouse, a query typed, a button clicked) and wait for the figures to change in
place, and save a screenshot of each widget in ``docs/screenshots/`` (or ``WORKBENCH_SCREENSHOTS``).

Needs ``/usr/bin/chromium`` (``.ci/browser-deps.sh`` installs it; ``WORKBENCH_CHROMIUM`` names
another) and the ``playwright`` package (the ``test`` extra). Without them the tests skip,
unless ``WORKBENCH_REQUIRE_BROWSER=1``: then they fail. Every wait is bounded, and the server,
its kernel and the browser are shut down whatever happens.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from test_sweep import _write_recipe

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "tests" / "browser" / "widgets.ipynb"
CHROMIUM = os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# The code cells of the notebook, in order.
SETUP, HEATMAP, PROJECTOR, SEARCH, DASHBOARD, SPEEDMAP, STATE = range(7)
SECOND = 1000  # Playwright counts milliseconds
SERVER_START_S = 120
RUN_ALL_S = 240  # model, 300 sentences, a first UMAP layout (numba compiles it) on 2 cores
TRAIN_S = 150  # the dashboard's 10-step run
SWEEP_S = 300  # the sweep board's 4 trials of a tiny fresh model, 6 steps each (about 30 s on 2 idle cores)


# ----- what the page is asked (JavaScript run in the browser) -----------------------------------
# The notebook's code cells, and the plotly figures in one of them.
JS_CELL = "i => document.querySelectorAll('.jp-Notebook .jp-CodeCell')[i]"
JS_PLOTS = f"i => Array.from(({JS_CELL})(i).querySelectorAll('.js-plotly-plot'))"
# What a figure holds (its ``data``, as plotly.js got it) and what it drew (SVG), per trace.
JS_DESCRIBE = f"""([i, k]) => {{
  const gd = ({JS_PLOTS})(i)[k];
  if (!gd || !gd.data) return null;
  const title = gd.querySelector('.gtitle');
  return {{
    data: gd.data.map(t => ({{type: t.type, name: t.name || '', n: (t.x || t.z || []).length}})),
    scatter: Array.from(gd.querySelectorAll('.scatterlayer .trace')).map(
      g => g.querySelectorAll('path.point').length),
    heatmaps: gd.querySelectorAll('.heatmaplayer .hm image').length,
    bars: Array.from(gd.querySelectorAll('.barlayer .trace')).map(
      g => g.querySelectorAll('.point path').length),
    title: title ? title.textContent : '',
    yticks: Array.from(gd.querySelectorAll('.yaxislayer-above .ytick text')).map(t => t.textContent),
  }};
}}"""
# A fingerprint of what is drawn: it changes when the picture does.
JS_FINGERPRINT = f"""([i, k]) => {{
  const gd = ({JS_PLOTS})(i)[k];
  if (!gd) return '';
  const parts = [];
  gd.querySelectorAll('path.point').forEach(p => parts.push(p.getAttribute('transform')));
  gd.querySelectorAll('.hm image').forEach(im => parts.push(im.getAttribute('href') || ''));
  gd.querySelectorAll('.gtitle, .ytick text').forEach(t => parts.push(t.textContent));
  return parts.join('|');
}}"""
# The code cells' prompts ("[ ]:", "[*]:", "[3]:") and the tracebacks shown.
JS_RUN_STATE = """() => ({
  prompts: Array.from(document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt'))
    .map(p => p.textContent.trim()),
  raised: Array.from(document.querySelectorAll('.jp-Notebook .jp-OutputArea-output'))
    .map(o => o.textContent).filter(t => t.includes('Traceback (most recent call last)')),
})"""


# ----- skipping -------------------------------------------------------------------------------
def _required() -> bool:
    return os.environ.get("WORKBENCH_REQUIRE_BROWSER", "") not in ("", "0", "false", "no")


def _need_browser() -> None:
    missing = []
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"no Chromium at {CHROMIUM} (bash .ci/browser-deps.sh installs Debian's)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package is missing (pip install -e '.[test]')")
    if missing:
        reason = "browser test: " + "; ".join(missing)
        if _required():
            pytest.fail(reason + " (WORKBENCH_REQUIRE_BROWSER is set, so this is a failure, not a skip)")
        pytest.skip(reason)


# ----- the server -----------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_settings(folder: Path) -> None:
    """JupyterLab settings for a quiet, predictable page."""
    settings = {
        # Every cell in the DOM (no virtual scrolling), so that every figure is drawn.
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
        # No news or update toasts over the notebook.
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    }
    for plugin, values in settings.items():
        path = folder / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")


def _api(base: str, token: str, path: str, method: str = "GET", timeout: float = 5) -> bytes:
    request = urllib.request.Request(
        f"{base}{path}", method=method, headers={"Authorization": f"token {token}"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read()


def _tail(path: Path, n: int = 4000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-n:]
    except OSError:
        return ""


class Lab:
    """A JupyterLab server in a scratch folder holding a copy of the notebook."""

    def __init__(self, scratch: Path) -> None:
        self.root = scratch / "root"
        self.root.mkdir()
        shutil.copy(NOTEBOOK, self.root / NOTEBOOK.name)
        conf = scratch / "conf"
        _write_settings(conf / "settings")
        self.log = scratch / "jupyterlab.log"
        self.port, self.token = _free_port(), secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        env.update(
            JUPYTERLAB_SETTINGS_DIR=str(conf / "settings"),
            JUPYTERLAB_WORKSPACES_DIR=str(conf / "workspaces"),
            JUPYTER_CONFIG_DIR=str(conf / "config"),
            JUPYTER_DATA_DIR=str(conf / "data"),  # no user kernels: the python3 kernel is this interpreter
            JUPYTER_RUNTIME_DIR=str(conf / "runtime"),
            IPYTHONDIR=str(conf / "ipython"),
            HF_HUB_OFFLINE="1",
            HF_DATASETS_OFFLINE="1",
            PYTHONUNBUFFERED="1",
            PATH=str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""),
        )
        cmd = [
            sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
            "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}", "--ServerApp.terminals_enabled=False",
        ]  # fmt: skip
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")  # CI and containers run as root
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    @property
    def url(self) -> str:
        return self.url_of(NOTEBOOK.name)

    def url_of(self, notebook: str) -> str:
        """The notebook open in JupyterLab; another than the widgets' opens in a fresh workspace of its own
        (so that a second tab shows it alone)."""
        if notebook == NOTEBOOK.name:
            return f"{self.base}/lab/tree/{notebook}?token={self.token}"
        return f"{self.base}/lab/workspaces/{Path(notebook).stem}/tree/{notebook}?reset&token={self.token}"

    def wait_ready(self, timeout: float = SERVER_START_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited ({self.proc.returncode}):\n{_tail(self.log)}")
            try:
                _api(self.base, self.token, "/api/status", timeout=2)
                return
            except (urllib.error.URLError, OSError):
                time.sleep(0.5)
        raise RuntimeError(f"JupyterLab did not answer within {timeout:.0f} s:\n{_tail(self.log)}")

    def stop(self) -> None:
        """Shut the server down (it shuts its kernels down), then make sure it is gone."""
        if self.proc.poll() is None:
            try:
                _api(self.base, self.token, "/api/shutdown", method="POST")
            except (urllib.error.URLError, OSError):
                pass
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)  # its own session: only what it started
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                continue


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    _need_browser()
    server = Lab(tmp_path_factory.mktemp("lab"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def page(lab, tmp_path_factory):
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh --user-data-dir
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 1800},  # tall: a whole widget fits in a screenshot
        )
        try:
            context.set_default_timeout(30 * SECOND)
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


class Notebook:
    """The notebook open in the browser, with what the tests do to it and ask of it."""

    def __init__(self, page, lab: Lab) -> None:
        self.page, self.lab = page, lab
        self.console: list[str] = []  # the browser's console errors, for failure messages
        page.on("console", lambda msg: self.console.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: self.console.append(str(exc)))

    def run_all(self, notebook: str = NOTEBOOK.name, last: int = STATE,
                drawn: tuple[int, ...] = (HEATMAP, PROJECTOR, SEARCH, DASHBOARD)) -> None:
        """Open the notebook, wait for the kernel, Run > Run All Cells, wait for the ``last`` cell
        and for the figures of the ``drawn`` cells."""
        page = self.page
        page.goto(self.lab.url_of(notebook), timeout=90 * SECOND)
        self.cell(last).wait_for(timeout=90 * SECOND)
        # The kernel is up when the status bar says so (cells run earlier would wait for it anyway).
        idle = page.locator(".jp-StatusBar-Widget", has_text=re.compile(r"\|\s*Idle")).first
        idle.wait_for(timeout=90 * SECOND)
        page.locator("#jp-MainMenu").get_by_text("Run", exact=True).click()
        page.locator(".lm-Menu-content .lm-Menu-item", has_text="Run All Cells").first.click()
        deadline = time.monotonic() + RUN_ALL_S
        while True:
            run = page.evaluate(JS_RUN_STATE)
            if run["raised"]:
                self.fail("a cell raised:\n" + run["raised"][0][-3000:])
            if len(run["prompts"]) == last + 1 and all(re.fullmatch(r"\[\d+\]:", p) for p in run["prompts"]):
                break
            if time.monotonic() > deadline:
                self.fail(f"the cells did not finish within {RUN_ALL_S} s: prompts {run['prompts']}")
            time.sleep(1)
        # The figures are drawn asynchronously, once the widget views exist.
        for cell in drawn:
            self.wait(
                f"i => ({JS_PLOTS})(i).length > 0 && ({JS_PLOTS})(i).every(gd => gd.data && gd._fullLayout)",
                cell,
                60,
                "the figures to be drawn",
                cell,
            )

    def fail(self, message: str, cell: int | None = None) -> None:
        """Fail with ``message`` and the cell's output, leaving a picture of the page beside the log."""
        if cell is not None:
            try:
                message += (
                    "\n--- the cell's output:\n"
                    + self.cell(cell).locator(".jp-Cell-outputArea").inner_text(timeout=5 * SECOND)[-3000:]
                )
            except Exception:  # noqa: BLE001 - the message matters more than the details
                pass
        if self.console:
            message += "\n--- browser console errors:\n" + "\n".join(self.console[-10:])
        shot = self.lab.log.parent / "page.png"
        try:
            self.page.screenshot(path=str(shot), full_page=True, timeout=20 * SECOND)
        except Exception:  # noqa: BLE001
            shot = None
        pytest.fail(f"{message}\n(page: {shot}; JupyterLab log: {self.lab.log})")

    def wait(self, js: str, arg, timeout_s: float, what: str, cell: int | None = None) -> None:
        """Wait until ``js(arg)`` is true in the page; on timeout fail, saying what did not happen."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            self.page.wait_for_function(js, arg=arg, timeout=timeout_s * SECOND, polling=250)
        except PlaywrightTimeout:
            self.fail(f"waited {timeout_s:.0f} s for {what}", cell)

    def cell(self, i: int):
        return self.page.locator(".jp-Notebook .jp-CodeCell").nth(i)

    def describe(self, cell: int, k: int = 0) -> dict:
        return self.page.evaluate(JS_DESCRIBE, [cell, k])

    def fingerprint(self, cell: int, k: int = 0) -> str:
        return self.page.evaluate(JS_FINGERPRINT, [cell, k])

    def wait_redrawn(self, cell: int, before: str, timeout_s: float, k: int = 0) -> None:
        js = f"([i, k, before]) => ({JS_FINGERPRINT})([i, k]) !== before"
        self.wait(js, [cell, k, before], timeout_s, "the figure to change", cell)

    def state(self, cell: int = STATE) -> dict:
        """What the kernel printed as a ``STATE {...}`` line in ``cell`` (when it last ran)."""
        text = self.cell(cell).locator(".jp-Cell-outputArea").inner_text()
        match = re.search(r"STATE (\{.*\})", text)
        assert match, f"no STATE line in the output of cell {cell}: {text!r}"
        return json.loads(match.group(1))

    def no_errors_shown(self, cell: int) -> None:
        text = self.cell(cell).locator(".jp-Cell-outputArea").inner_text()
        for bad in ("Traceback", "Error displaying widget", "Failed to load model class"):
            assert bad not in text, f"cell {cell} shows {bad!r}:\n{text[-3000:]}"

    def screenshot(self, cell: int, name: str) -> Path:
        """A picture of the cell's output in docs/screenshots (or WORKBENCH_SCREENSHOTS)."""
        folder = Path(os.environ.get("WORKBENCH_SCREENSHOTS") or REPO / "docs" / "screenshots")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        output = self.cell(cell).locator(".jp-Cell-outputArea")
        output.scroll_into_view_if_needed()
        self.page.mouse.move(0, 0)  # no hover label in the picture
        output.screenshot(path=str(path), animations="disabled")
        assert path.stat().st_size > 5000, f"{path} is suspiciously small"
        return path

    def drag_slider(self, slider, fraction: float) -> None:
        """Drag a slider's handle with the mouse to ``fraction`` of its track, and let go."""
        page = self.page
        track = slider.locator(".noUi-target").first
        handle = slider.locator(".noUi-handle").first
        handle.scroll_into_view_if_needed()
        box_t, box_h = track.bounding_box(), handle.bounding_box()
        assert box_t and box_h, "the slider is not visible"
        y = box_h["y"] + box_h["height"] / 2
        page.mouse.move(box_h["x"] + box_h["width"] / 2, y)
        page.mouse.down()
        target = box_t["x"] + fraction * box_t["width"]
        for step in range(1, 6):  # a few moves, as a hand would make
            page.mouse.move(box_h["x"] + (target - box_h["x"]) * step / 5, y)
        page.mouse.up()


@pytest.fixture(scope="module")
def nb(page, lab) -> Notebook:
    """The notebook open in the browser with all its cells run."""
    notebook = Notebook(page, lab)
    notebook.run_all()
    return notebook


# ----- the tests --------------------------------------------------------------------------------
def test_every_widget_is_drawn_as_the_kernel_holds_it(nb):
    state = nb.state()
    assert state["errors"] == [0, 0, 0, 0], f"widget callbacks raised: {state}"
    for cell in (HEATMAP, PROJECTOR, SEARCH, DASHBOARD):
        nb.no_errors_shown(cell)

    heat = nb.describe(HEATMAP)
    n_traces, rows, cols = state["heatmap"]
    assert [t["type"] for t in heat["data"]] == ["heatmap"] * n_traces
    assert heat["heatmaps"] == n_traces == 1 and heat["data"][0]["n"] == rows == cols
    assert "cosine similarity" in heat["title"]

    proj = nb.describe(PROJECTOR)
    assert [t["n"] for t in proj["data"]] == state["projector"], "browser and kernel disagree on the points"
    assert state["projector_shown"] == "umap"
    drawn = [n for n in state["projector"] if n]  # plotly draws no group for an empty trace
    assert proj["scatter"] == drawn, f"SVG points per trace {proj['scatter']} != {state['projector']}"
    assert proj["data"][-2]["name"].startswith("matches") and proj["data"][-1]["name"] == "selected"

    search = nb.describe(SEARCH)
    n_bar_traces, n_results = state["search"]
    assert len(search["bars"]) == n_bar_traces == 1 and search["bars"][0] == n_results == 5
    assert sorted(t.split(".")[0] for t in search["yticks"]) == ["1", "2", "3", "4", "5"]  # ranks

    curves = nb.describe(DASHBOARD, 0)
    assert len(curves["data"]) == state["curves"] == 2 and sum(curves["scatter"]) == 0  # nothing trained yet
    sliders = nb.page.locator(".jp-Notebook .widget-slider")
    # projector: n_neighbors, min_dist; search: k; dashboard: lr, warmup, steps, scale
    assert sliders.count() >= 7, f"only {sliders.count()} sliders on the page"

    nb.screenshot(HEATMAP, "heatmap.png")
    nb.screenshot(PROJECTOR, "projector.png")
    nb.screenshot(SEARCH, "search.png")


def test_heatmap_redraws_when_the_similarity_function_changes(nb):
    before = nb.fingerprint(HEATMAP)
    nb.cell(HEATMAP).locator(".widget-dropdown select").first.select_option("euclidean")
    nb.wait_redrawn(HEATMAP, before, timeout_s=30)
    nb.wait(
        f"i => ({JS_PLOTS})(i)[0].querySelector('.gtitle').textContent.includes('euclidean')",
        HEATMAP,
        30,
        "the title to say euclidean",
        HEATMAP,
    )
    heat = nb.describe(HEATMAP)
    assert heat["heatmaps"] == 1 and "euclidean similarity" in heat["title"]
    nb.no_errors_shown(HEATMAP)


def test_projector_moves_the_points_when_min_dist_is_dragged(nb):
    cell = nb.cell(PROJECTOR)
    slider = cell.locator(".widget-slider", has_text="min_dist").first
    readout = slider.locator(".widget-readout")
    old_value = float(readout.inner_text())
    before = nb.fingerprint(PROJECTOR)
    nb.drag_slider(slider, 0.8)
    nb.wait(
        "([el, old]) => parseFloat(el.textContent) !== old",
        [readout.element_handle(), old_value],
        10,
        "the slider's readout to change",
        PROJECTOR,
    )
    new_value = float(readout.inner_text())
    assert new_value > old_value + 0.2, f"min_dist went from {old_value} to {new_value} only"
    # The kernel re-runs UMAP (half the epochs, from the layout on screen) and moves the points.
    nb.wait_redrawn(PROJECTOR, before, timeout_s=90)
    status = cell.locator(".widget-html", has_text="UMAP").first
    nb.wait(
        "([el, v]) => el.textContent.includes('min_dist=' + v)",
        [status.element_handle(), f"{new_value:g}"],
        90,
        f"the status to say min_dist={new_value:g}",
        PROJECTOR,
    )
    proj = nb.describe(PROJECTOR)
    assert sum(proj["scatter"]) == sum(nb.state()["projector"]), "points were lost on the way"
    nb.no_errors_shown(PROJECTOR)
    nb.screenshot(PROJECTOR, "projector-min-dist.png")


def test_search_answers_a_typed_query_and_the_k_slider(nb):
    cell = nb.cell(SEARCH)
    query = "Someone is playing music on a stage."
    before = nb.fingerprint(SEARCH)
    box = cell.locator("input[type=text]").first
    box.fill(query)
    box.press("Enter")
    nb.wait_redrawn(SEARCH, before, timeout_s=30)
    cell.locator("caption", has_text=f"top 5 for: {query}").wait_for()
    assert query in nb.describe(SEARCH)["title"]
    # k: one step to the right with the keyboard, one bar more.
    before = nb.fingerprint(SEARCH)
    handle = cell.locator(".widget-slider", has_text="k").locator(".noUi-handle").first
    handle.focus()
    handle.press("ArrowRight")
    nb.wait_redrawn(SEARCH, before, timeout_s=30)
    nb.wait(
        f"i => ({JS_PLOTS})(i)[0].querySelectorAll('.barlayer .point').length === 6",
        SEARCH,
        30,
        "six bars",
        SEARCH,
    )
    nb.no_errors_shown(SEARCH)


def _train(nb) -> None:
    """Press the dashboard's Start (once per page) and wait for the 10-step run to end."""
    cell = nb.cell(DASHBOARD)
    if cell.locator("td", has_text="completed").count():
        return
    start = cell.get_by_role("button", name="Start")
    stop = cell.get_by_role("button", name="Stop")
    assert start.is_enabled() and stop.is_disabled()
    start.click()
    # A background thread trains and the curves grow; Start is back when the run has ended.
    nb.wait(
        f"""i => {{
          const gd = ({JS_PLOTS})(i)[0];
          const start = Array.from(({JS_CELL})(i).querySelectorAll('button'))
            .find(b => b.textContent.trim() === 'Start');
          return gd && gd.data && gd.data.length === 2 && (gd.data[0].x || []).length === 10
            && (gd.data[1].x || []).length === 3 && start && !start.disabled;
        }}""",
        DASHBOARD,
        TRAIN_S,
        "the 10-step run to finish and its curves to be drawn",
        DASHBOARD,
    )
    cell.locator("td", has_text="completed").first.wait_for()


def test_dashboard_start_trains_and_the_curves_grow(nb):
    _train(nb)
    curves = nb.describe(DASHBOARD, 0)
    assert curves["scatter"] == [10, 3], (
        f"points drawn: {curves['scatter']}"
    )  # loss per step; STS at 0, 5, 10
    assert "done (completed) after 10 steps" in nb.cell(DASHBOARD).locator(".jp-Cell-outputArea").inner_text()
    nb.no_errors_shown(DASHBOARD)
    nb.screenshot(DASHBOARD, "dashboard.png")


def test_dashboard_compares_the_finished_run(nb):
    _train(nb)
    # The run read back from its folder: the comparison figure gets its two curves.
    nb.wait(
        f"""i => {{
          const gd = ({JS_PLOTS})(i)[1];
          return gd && gd.data && gd.data.map(t => (t.x || []).length).join() === '10,3';
        }}""",
        DASHBOARD,
        30,
        "the earlier-runs figure to show the finished run (10 loss points, 3 STS points)",
        DASHBOARD,
    )
    drawn = nb.describe(DASHBOARD, 1)
    assert len(drawn["scatter"]) == 2 and drawn["scatter"][1] == 3  # loss as a line; STS with markers


def test_speed_quality_map_draws_every_encoder_and_the_pareto_front(nb):
    nb.wait(
        f"i => ({JS_PLOTS})(i).length > 0 && ({JS_PLOTS})(i).every(gd => gd.data && gd._fullLayout)",
        SPEEDMAP, 60, "the speed/quality map to be drawn", SPEEDMAP,
    )  # fmt: skip
    kernel = nb.state()["speedmap"]
    assert kernel["errors"] == 0 and len(kernel["points"]) >= 4
    drawn = nb.page.evaluate(
        f"""i => {{
          const gd = ({JS_PLOTS})(i)[0];
          return {{
            traces: gd.data.map(t => ({{name: t.name, text: Array.from(t.text || []), n: (t.x || []).length}})),
            points: Array.from(gd.querySelectorAll('.scatterlayer .trace')).map(g => g.querySelectorAll('path.point').length),
            xtype: gd._fullLayout.xaxis.type,
            title: gd.querySelector('.gtitle') ? gd.querySelector('.gtitle').textContent : '',
          }};
        }}""",
        SPEEDMAP,
    )
    dots, front = drawn["traces"]
    assert dots["name"].startswith("encoders") and sorted(dots["text"]) == sorted(kernel["points"]) and dots["n"] >= 4
    assert front["name"] == "Pareto front" and front["text"] == kernel["pareto"] and front["n"] >= 1
    # SVG: a marker per encoder, one per point on the front.
    assert drawn["points"] == [len(kernel["points"]), len(kernel["pareto"])], drawn["points"]
    assert drawn["xtype"] == "log" and "speed vs quality on" in drawn["title"]
    table = nb.cell(SPEEDMAP).locator("table").first.inner_text()
    for name in kernel["points"]:
        assert name in table, f"{name} is not in the table"
    assert table.count("★ yes") == len(kernel["pareto"])
    nb.no_errors_shown(SPEEDMAP)
    nb.screenshot(SPEEDMAP, "speed_quality_map.png")


def test_nothing_on_the_page_shows_an_error(nb):
    text = nb.page.locator(".jp-Notebook").inner_text()
    for bad in ("Traceback", "Error displaying widget"):
        assert bad not in text, f"the page shows {bad!r}"


# ----- the sweep board: a notebook of its own -----------------------------------------------------
SWEEP_NOTEBOOK = "sweep.ipynb"
SWEEP_CELL = """\
from workbench.recipes import load_recipe
from workbench.sweep import Param, Sweep
from workbench.widgets import SweepBoard

# tiny-sweep.toml: a fresh 1-layer model, 6 steps, STS-B dev (40 pairs) every 2 steps
sweep = Sweep(load_recipe("tiny-sweep.toml"), [Param.grid("train.lr=1e-4,1e-3"), Param.grid("loss.scale=10,20")],
              out="sweep", evaluate_test=False)
board = SweepBoard(sweep)
board"""
# Each poll, what the board shows: whether the sweep has ended, and the points drawn per dev curve.
JS_SWEEP_LOOK = f"""i => {{
  const gd = ({JS_PLOTS})(i)[1];
  const done = ({JS_CELL})(i).innerText.includes('sweep completed');
  const drawn = gd ? Array.from(gd.querySelectorAll('.scatterlayer .trace')).map(
    g => g.querySelectorAll('path.point').length) : [];
  (window.sweepLooks = window.sweepLooks || []).push({{done, drawn}});
  return done;
}}"""


def _write_notebook(path: Path, *cells: str) -> None:
    path.write_text(json.dumps({
        "cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": c}
                  for c in cells],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4, "nbformat_minor": 4,
    }), encoding="utf-8")


def test_sweep_board_draws_trials_live_and_their_parallel_coordinates(lab, page, minilm_path):
    _write_recipe(lab.root, minilm_path, steps=6)  # tiny-sweep.toml and its pairs, beside the notebook
    _write_notebook(lab.root / SWEEP_NOTEBOOK, SWEEP_CELL)
    tab = page.context.new_page()  # a tab of its own: the widgets notebook's tab stays as it is
    try:
        nb = Notebook(tab, lab)
        nb.run_all(SWEEP_NOTEBOOK, last=0, drawn=(0,))
        cell = nb.cell(0)
        parcoords = f"i => ({JS_PLOTS})(i)[0]"
        assert nb.page.evaluate(f"i => ({JS_PLOTS})(i).length", 0) == 2, "a parallel-coordinates plot and the curves"
        start = cell.get_by_role("button", name="Start")
        assert start.is_enabled()
        start.click()
        nb.wait(JS_SWEEP_LOOK, 0, SWEEP_S, "the sweep to complete", 0)
        looks = nb.page.evaluate("() => window.sweepLooks")
        running = [look["drawn"] for look in looks if not look["done"]]
        grew = any(0 < a[k] < b[k] for i, a in enumerate(running) for b in running[i + 1:]
                   for k in range(min(len(a), len(b))))
        assert grew, f"no curve gained points while the sweep ran (points drawn per poll: {running})"
        # Every trial's dev curve, evaluated at steps 0, 2, 4, 6; the best one drawn thickest.
        nb.wait(f"""i => {{
          const gd = ({JS_PLOTS})(i)[1];
          return Array.from(gd.querySelectorAll('.scatterlayer .trace')).map(
            g => g.querySelectorAll('path.point').length).join() === '4,4,4,4';
        }}""", 0, 30, "four curves of four points", 0)
        curves = nb.page.evaluate(f"""i => ({JS_PLOTS})(i)[1].data.map(
          t => ({{name: t.name, width: t.line.width}}))""", 0)
        best = [c for c in curves if c["name"].endswith("(best)")]
        assert len(best) == 1 and best[0]["width"] == max(c["width"] for c in curves), curves
        assert all(re.fullmatch(r"lr=1e-[34] scale=(10|20)( \(best\))?", c["name"]) for c in curves), curves
        # The parallel coordinates: an SVG axis per setting and the objective, a line per trial.
        nb.wait(f"""i => {{
          const gd = ({parcoords})(i);
          return gd.querySelectorAll('.parcoords .y-axis').length === 3
            && gd.data[0].dimensions.every(d => (d.values || []).length === 4);
        }}""", 0, 30, "the parallel-coordinates plot to show 4 trials on 3 axes", 0)
        drawn = nb.page.evaluate(f"""i => {{
          const gd = ({parcoords})(i);
          return {{
            titles: Array.from(gd.querySelectorAll('.parcoords .axis-title')).map(t => t.textContent),
            canvases: gd.querySelectorAll('canvas').length,
          }};
        }}""", 0)
        assert drawn["titles"] == ["train.lr", "loss.scale", "sts-dev_spearman_cosine"], drawn
        assert drawn["canvases"] > 0, "no canvas for the parallel-coordinates lines (WebGL)"
        assert cell.locator("td", has_text="completed").count() == 4
        nb.no_errors_shown(0)
        nb.screenshot(0, "sweep_board.png")
    finally:
        tab.close()


# ----- the workshop's widgets (issue 15): before/after heatmaps, Start twice, Stop, the overlay ---------
WORKSHOP_NOTEBOOK = "workshop.ipynb"
WORKSHOP_CELLS = (
    """\
import json, os, time
from workbench import load_model
from workbench.distill import make_student
from workbench.recipes import load_recipe, run_recipe
from workbench.widgets import CompareHeatmaps, TrainingDashboard

teacher = load_model("all-MiniLM-L6-v2")
recipe = load_recipe("tiny-sweep.toml").with_(train={"max_steps": 3000, "eval_every": 500})
# Yesterday's rehearsal, a run of another recipe, and one of this session with another scale.
run_recipe(recipe.with_(train={"max_steps": 4}), run_dir="runs/rehearsal")
old = time.time() - 86400
os.utime("runs/rehearsal/config.json", (old, old))
run_recipe(recipe.with_(train={"max_steps": 4}, loss={"scale": 5.0}), run_dir="runs/scale-5")
"fine\"""",
    """CompareHeatmaps(teacher, make_student(teacher, keep_layers=[0]), labels=("teacher", "student [0], before"))""",
    """CompareHeatmaps(teacher, make_student(teacher, keep_layers=[0, 1, 2, 3, 5]),
                labels=("teacher", "student [0, 1, 2, 3, 5], after"))""",
    """dash = TrainingDashboard(recipe, runs_root="runs")
dash""",
)
WS_SETUP, WS_BEFORE, WS_AFTER, WS_DASH = range(4)
# Plotly's layout of a figure: its size, the panel titles' and the main title's boxes, the legend's.
JS_GEOMETRY = f"""([i, k]) => {{
  const gd = ({JS_PLOTS})(i)[k];
  const box = el => {{ if (!el) return null; const r = el.getBoundingClientRect();
                       return {{x: r.left, y: r.top, w: r.width, h: r.height}}; }};
  const out = ({JS_CELL})(i).querySelector('.jp-OutputArea-output');
  return {{
    width: gd._fullLayout.width, outputWidth: out.getBoundingClientRect().width, figure: box(gd),
    title: box(gd.querySelector('.gtitle')),
    panelTitles: Array.from(gd.querySelectorAll('.infolayer .annotation')).map(box),
    legend: box(gd.querySelector('.legend')),
    axisTitles: Array.from(gd.querySelectorAll('.xtitle, .ytitle')).map(box),
    diff: gd.data.length > 2 ? [gd.data[2].zmin, gd.data[2].zmax] : null,
    colors: gd.data.map(t => t.line ? t.line.color : null),
    legendItems: gd.querySelectorAll('.legend .traces').length,
    points: Array.from(gd.querySelectorAll('.scatterlayer .trace')).map(g => g.querySelectorAll('path.point').length),
    lines: Array.from(gd.querySelectorAll('.scatterlayer .trace')).map(
      g => Array.from(g.querySelectorAll('path.js-line')).some(l => (l.getAttribute('d') || '').length > 2)),
  }};
}}"""


# Records each text the live status line shows (a MutationObserver on the cell), from the click on.
JS_WATCH_STATUS = f"""i => {{
  const cell = ({JS_CELL})(i);
  const status = () => {{ const el = cell.querySelector('span[style*="overflow-wrap"]'); return el ? el.textContent : ''; }};
  const t0 = performance.now();
  window.statusSeen = [[0, status()]];
  new MutationObserver(() => {{
    const now = status();
    if (now !== window.statusSeen[window.statusSeen.length - 1][1]) window.statusSeen.push([performance.now() - t0, now]);
  }}).observe(cell, {{subtree: true, childList: true, characterData: true}});
}}"""
STOP_SEEN_MS = 8000  # click on Stop to "stopping…" on the page: 1-3.4 s seen with the tiny model on 2 busy cores


def _overlap(a, b) -> bool:
    return bool(a and b) and a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and a["y"] < b["y"] + b["h"] \
        and b["y"] < a["y"] + a["h"]


def _inside(a, outer) -> bool:
    return a["x"] >= outer["x"] - 1 and a["y"] >= outer["y"] - 1 and a["x"] + a["w"] <= outer["x"] + outer["w"] + 1 \
        and a["y"] + a["h"] <= outer["y"] + outer["h"] + 1


def test_workshop_widgets_as_a_teacher_uses_them(lab, page, minilm_path):
    _write_recipe(lab.root, minilm_path, steps=4)
    _write_notebook(lab.root / WORKSHOP_NOTEBOOK, *WORKSHOP_CELLS)
    tab = page.context.new_page()
    try:
        nb = Notebook(tab, lab)
        nb.run_all(WORKSHOP_NOTEBOOK, last=WS_DASH, drawn=(WS_BEFORE, WS_AFTER, WS_DASH))
        # 1. Before/after heatmaps: one fixed difference scale, titles apart and inside, full width.
        shapes = [nb.page.evaluate(JS_GEOMETRY, [cell, 0]) for cell in (WS_BEFORE, WS_AFTER)]
        for g in shapes:
            assert g["diff"] == [-0.25, 0.25], g["diff"]
            titles = g["panelTitles"]
            assert len(titles) == 3 and all(_inside(t, g["figure"]) for t in titles), titles
            assert not any(_overlap(a, b) for i, a in enumerate(titles) for b in titles[i + 1:]), titles
            assert not any(_overlap(g["title"], t) for t in titles), (g["title"], titles)
            assert g["width"] >= 0.9 * g["outputWidth"], (g["width"], g["outputWidth"])
        for cell in (WS_BEFORE, WS_AFTER):
            text = nb.cell(cell).locator(".jp-Cell-outputArea").inner_text()
            assert "difference colours fixed at ±0.25" in text, text[-2000:]
        nb.no_errors_shown(WS_BEFORE)
        nb.screenshot(WS_BEFORE, "compare_heatmaps.png")
        # 3. Start clicked twice, 0.3 s apart: greyed at once, one run, no traceback.
        cell = nb.cell(WS_DASH)
        start, stop = cell.get_by_role("button", name="Start"), cell.get_by_role("button", name="Stop")
        start.click()
        nb.wait(f"i => Array.from(({JS_CELL})(i).querySelectorAll('button')).find(b => b.textContent.trim() === 'Start').disabled",
                WS_DASH, 1, "Start to be disabled within a second of the click", WS_DASH)
        start.click(force=True)  # a second click on the greyed button: nothing happens
        # 4. Stop: "stopping…" at once, then done (stopped); no estimate in between.
        nb.wait(f"i => /step \\d+\\/3000/.test(({JS_CELL})(i).innerText)", WS_DASH, 120, "the first steps", WS_DASH)
        nb.page.evaluate(JS_WATCH_STATUS, WS_DASH)  # every status the page shows from now on
        stop.click()
        nb.wait(f"i => ({JS_CELL})(i).innerText.includes('done (stopped)')", WS_DASH, 120, "the run to stop", WS_DASH)
        seen = nb.page.evaluate("() => window.statusSeen")  # [[ms after the click, text], ...]
        texts = [text for _, text in seen]
        stopping = next((k for k, text in enumerate(texts) if text.startswith("stopping…")), None)
        done = next(k for k, text in enumerate(texts) if text.startswith("done (stopped)"))
        assert stopping is not None and stopping < done, texts  # a "stopping…" state before the end
        assert all(text.startswith("stopping…") for text in texts[stopping:done]), texts  # no estimate after it
        assert seen[stopping][0] < STOP_SEEN_MS, (f"'stopping…' shown {seen[stopping][0]:.0f} ms after the click", texts)
        assert "Traceback" not in cell.inner_text() and "already going" not in cell.inner_text()
        # 2. The overlay (the dashboard refreshes it when a run ends): this session's two runs.
        nb.wait(f"i => ({JS_PLOTS})(i)[1].data.length === 4", WS_DASH, 30, "two runs in the overlay", WS_DASH)
        g = nb.page.evaluate(JS_GEOMETRY, [WS_DASH, 1])
        names = nb.page.evaluate(f"i => ({JS_PLOTS})(i)[1].data.map(t => t.name)", WS_DASH)
        assert names[1::2] == ["scale 5 · steps 4", "the recipe's settings"], names
        assert g["legendItems"] == 2 and g["colors"][0] == g["colors"][1] != g["colors"][2] == g["colors"][3], g
        # Every run is drawn: the short ones with their points, the long one as a line.
        assert all(n > 0 or line for n, line in zip(g["points"], g["lines"], strict=True)), g
        assert g["points"][0] == 4, g  # the 4-step run of scale 5: its loss points, not an invisible line
        assert not any(_overlap(g["legend"], t) for t in g["axisTitles"]), (g["legend"], g["axisTitles"])
        table = cell.locator("table").first.inner_text()
        assert "rehearsal" not in table and "scale-5" in table and "2 runs of tiny-sweep in this session" in table
        ended = int(re.search(r"done \(stopped\) after (\d+) steps", cell.inner_text()).group(1))
        last = [row.split("\t")[-1].strip() for row in table.splitlines() if "stopped" in row]
        assert last == [str(ended)], (last, ended)
        live = nb.page.evaluate(JS_GEOMETRY, [WS_DASH, 0])
        assert live["width"] >= 0.9 * live["outputWidth"], (live["width"], live["outputWidth"])
        nb.no_errors_shown(WS_DASH)
        nb.screenshot(WS_DASH, "exercise3_overlay.png")
    finally:
        tab.close()


# ----- the map of a large corpus: 100,000 points in WebGL, pan and zoom, cluster names, a box selection -----
MAP_NOTEBOOK = "map.ipynb"
MAP_CELL = """\
import numpy as np, pandas as pd
from workbench.widgets import Projector
rng = np.random.default_rng(0)
n = 100_000
topics = {"dogs": "a dog runs on the grass with a ball", "markets": "stock markets fell as shares dropped",
          "music": "a band plays guitar music on stage", "food": "a chef cooks pasta in the kitchen",
          "space": "the rocket launched into orbit around the moon"}
names = list(topics)
which = rng.integers(0, len(names), n)
centres = rng.normal(size=(len(names), 64)) * 4
emb = (centres[which] + rng.normal(size=(n, 64))).astype(np.float32)
df = pd.DataFrame({"text": [f"{topics[names[w]]} ({i})" for i, w in enumerate(which)], "topic": [names[w] for w in which]})
corpus_map = Projector(None, df, embeddings=emb, clusters=True, seed=None, title="100,000 synthetic sentences")
corpus_map"""
# What the kernel holds, printed as one JSON line (the cell is run again to read it later).
MAP_STATE_CELL = """\
import json
print("STATE " + json.dumps({
    "done": corpus_map.wait(0),
    "shown": corpus_map.shown,
    "status": corpus_map.status.value,
    "dragmode": corpus_map.fig.layout.dragmode,
    "traces": [{"type": t.type, "name": t.name, "n": 0 if t.x is None else len(t.x)} for t in corpus_map.fig.data],
    "clusters": None if corpus_map.clusters is None else [corpus_map.clusters.names[c] for c in sorted(corpus_map.clusters.names)],
    "annotations": [a.text for a in corpus_map.fig.layout.annotations],
    "selection": len(corpus_map.selection),
    "selected_rows": len(corpus_map.selected_rows()),
    "errors": [repr(e) for e in corpus_map.errors],
}))"""
MAP, MAP_STATE = range(2)
MAP_POINTS = 100_000
MAP_UMAP_S = 300  # kNN graph (faiss), UMAP of 100,000 points (60-90 s on 2 cores) and HDBSCAN
MAP_SELECTION_WAIT_S = 120  # for the selection table to show at all
MAP_SELECTION_SHOWN_S = 10  # mouse released to table shown: the kernel has the selection after ~2 s on 2 cores
# The map's figure as plotly.js holds and drew it.
JS_MAP = f"""i => {{
  const gd = ({JS_PLOTS})(i)[0];
  if (!gd || !gd.data || !gd._fullLayout) return null;
  const overlay = t => (t.name || '').startsWith('matches') || t.name === 'selected';
  return {{
    traces: gd.data.map(t => ({{type: t.type, name: t.name || '', n: (t.x || []).length}})),
    groups: gd.data.filter(t => !overlay(t)).map(t => ({{type: t.type, n: (t.x || []).length}})),
    canvases: gd.querySelectorAll('canvas').length,
    svgPoints: gd.querySelectorAll('path.point').length,
    noWebgl: gd.textContent.includes('WebGL is not supported'),
    dragmode: gd._fullLayout.dragmode,
    xrange: gd._fullLayout.xaxis.range.slice(), yrange: gd._fullLayout.yaxis.range.slice(),
    annotations: (gd.layout.annotations || []).map(a => a.text),
    svgAnnotations: Array.from(gd.querySelectorAll('.annotation-text')).map(t => t.textContent),
  }};
}}"""
# The UMAP layout and its clusters are on screen: the status line says so and the names are drawn.
JS_MAP_DONE = f"""i => {{
  const gd = ({JS_PLOTS})(i)[0];
  const text = ({JS_CELL})(i).innerText;
  return /UMAP \\(n_neighbors=\\d+, min_dist=[\\d.]+\\) · 100,000 points · \\d+ clusters/.test(text)
    && gd && gd.layout && (gd.layout.annotations || []).length > 0
    && gd.querySelectorAll('.annotation-text').length === gd.layout.annotations.length;
}}"""
# The share of strongly coloured pixels in a PNG (the points; axes, grid and names are grey or black).
JS_COLOURED = """async b64 => {
  const img = new Image();
  img.src = 'data:image/png;base64,' + b64;
  await img.decode();
  const c = document.createElement('canvas');
  c.width = img.width;
  c.height = img.height;
  const ctx = c.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const d = ctx.getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let k = 0; k < d.length; k += 4) {
    if (Math.max(d[k], d[k + 1], d[k + 2]) - Math.min(d[k], d[k + 1], d[k + 2]) > 60) n++;
  }
  return n / (c.width * c.height);
}"""


def _run_cell(nb: Notebook, i: int, timeout_s: float = 60) -> None:
    """Run cell ``i`` again (click into it, Ctrl+Enter) and wait for its new execution count."""
    before = nb.cell(i).locator(".jp-InputPrompt").inner_text().strip()
    nb.cell(i).locator(".jp-InputArea-editor").click()
    nb.page.keyboard.press("Control+Enter")
    nb.wait(
        f"""([i, before]) => {{
          const p = ({JS_CELL})(i).querySelector('.jp-InputPrompt').textContent.trim();
          return /^\\[\\d+\\]:$/.test(p) && p !== before;
        }}""",
        [i, before], timeout_s, f"cell {i} to run again", i,
    )  # fmt: skip


def _map_look(nb: Notebook) -> dict:
    look = nb.page.evaluate(JS_MAP, MAP)
    assert look is not None, "the map's figure is not drawn"
    return look


def _plot_area(nb: Notebook) -> dict:
    """The plot area (plotly's drag layer) on the screen, in the page's pixels."""
    nb.cell(MAP).locator(".js-plotly-plot").first.scroll_into_view_if_needed()
    return nb.page.evaluate(
        f"""i => {{ const r = ({JS_PLOTS})(i)[0].querySelector('.nsewdrag').getBoundingClientRect();
                   return {{x: r.left, y: r.top, w: r.width, h: r.height}}; }}""",
        MAP,
    )


def _drag(page, x0: float, y0: float, x1: float, y1: float, steps: int = 10) -> None:
    """Press the mouse at (x0, y0), move it to (x1, y1) in a few steps, let go."""
    page.mouse.move(x0, y0)
    page.mouse.down()
    for s in range(1, steps + 1):
        page.mouse.move(x0 + (x1 - x0) * s / steps, y0 + (y1 - y0) * s / steps)
    page.mouse.up()


def _modebar(nb: Notebook, title: str) -> None:
    """Click a button of the map's modebar (shown when the mouse is over the plot)."""
    area = _plot_area(nb)
    nb.page.mouse.move(area["x"] + area["w"] / 2, area["y"] + area["h"] / 2)
    nb.cell(MAP).locator(f'.js-plotly-plot .modebar [data-title="{title}"]').first.click()


def _ranges_changed(nb: Notebook, before: dict, what: str) -> dict:
    nb.wait(
        f"""([i, x, y]) => {{
          const gd = ({JS_PLOTS})(i)[0], xr = gd._fullLayout.xaxis.range, yr = gd._fullLayout.yaxis.range;
          return xr[0] !== x[0] || xr[1] !== x[1] || yr[0] !== y[0] || yr[1] !== y[1];
        }}""",
        [MAP, before["xrange"], before["yrange"]], 10, what, MAP,
    )  # fmt: skip
    time.sleep(0.5)  # a drag may move the view a little more as it ends
    return _map_look(nb)


@pytest.fixture(scope="module")
def map_nb(lab, page):
    """``map.ipynb`` open in a tab of its own, run, with its UMAP layout and cluster names drawn."""
    _write_notebook(lab.root / MAP_NOTEBOOK, MAP_CELL, MAP_STATE_CELL)
    tab = page.context.new_page()
    tab.set_viewport_size({"width": 1280, "height": 2600})  # the map, its tables and 20 selected rows in one picture
    try:
        nb = Notebook(tab, lab)
        nb.run_all(MAP_NOTEBOOK, last=MAP_STATE, drawn=(MAP,))
        nb.first_state = nb.state(MAP_STATE)  # printed just after the map was shown: PCA, UMAP on its way
        start = time.monotonic()
        nb.wait(JS_MAP_DONE, MAP, MAP_UMAP_S, "the UMAP layout and its cluster names to be drawn", MAP)
        nb.umap_s = time.monotonic() - start
        _run_cell(nb, MAP_STATE)
        yield nb
    finally:
        tab.close()


def test_map_draws_100000_points_with_webgl(map_nb):
    import base64

    nb = map_nb
    first, state = nb.first_state, nb.state(MAP_STATE)
    # PCA at once: the cell returned with every point on the map while UMAP was still running.
    assert first["shown"] == "pca" and not first["done"], first["status"]
    assert sum(t["n"] for t in first["traces"]) == MAP_POINTS, first["traces"]
    assert state["done"] and state["shown"] == "umap" and state["errors"] == [], state
    assert "UMAP" in state["status"] and "clusters" in state["status"], state["status"]
    look = _map_look(nb)
    # Browser and kernel hold the same traces: five topics in WebGL, then "matches" and "selected".
    assert look["traces"] == [{"type": t["type"], "name": t["name"], "n": t["n"]} for t in state["traces"]]
    assert [t["type"] for t in look["groups"]] == ["scattergl"] * 5, look["groups"]
    assert sum(t["n"] for t in look["groups"]) == MAP_POINTS, look["groups"]
    assert look["canvases"] > 0 and look["svgPoints"] == 0 and not look["noWebgl"], look
    # The canvas really shows the points: coloured pixels fill a good part of the plot area.
    area = _plot_area(nb)
    nb.page.mouse.move(0, 0)
    png = nb.page.screenshot(clip={"x": area["x"], "y": area["y"], "width": area["w"], "height": area["h"]})
    coloured = nb.page.evaluate(JS_COLOURED, base64.b64encode(png).decode())
    assert coloured > 0.005, f"only {coloured:.1%} of the plot area is coloured: are the WebGL points drawn?"
    nb.no_errors_shown(MAP)
    nb.screenshot(MAP, "map_100k.png")


def test_map_names_the_clusters_the_kernel_found(map_nb):
    nb = map_nb
    state, look = nb.state(MAP_STATE), _map_look(nb)
    names = state["clusters"]
    assert names and len(names) >= 3, f"clusters found: {names}"
    assert look["annotations"] == state["annotations"], (look["annotations"], state["annotations"])
    assert sorted(look["svgAnnotations"]) == sorted(names), (look["svgAnnotations"], names)
    table = nb.cell(MAP).locator("table", has_text="clusters found by HDBSCAN").first.inner_text()
    assert f"{len(names)} clusters found by HDBSCAN" in table, table[:500]
    for name in names:
        assert name in table, f"{name!r} is not in the cluster table"
    nb.no_errors_shown(MAP)


def test_map_pans_and_zooms_with_the_mouse(map_nb):
    nb = map_nb
    start = _map_look(nb)
    assert start["dragmode"] == "pan", start["dragmode"]
    width = start["xrange"][1] - start["xrange"][0]
    height = start["yrange"][1] - start["yrange"][0]
    # Drag the map right and down: the view moves to smaller x and larger y, as big as before.
    area = _plot_area(nb)
    cx, cy = area["x"] + area["w"] / 2, area["y"] + area["h"] / 2
    _drag(nb.page, cx, cy, cx + area["w"] / 5, cy + area["h"] / 5)
    panned = _ranges_changed(nb, start, "the view to move when the map is dragged")
    assert panned["xrange"][0] < start["xrange"][0], (start["xrange"], panned["xrange"])
    assert panned["yrange"][0] > start["yrange"][0], (start["yrange"], panned["yrange"])
    assert panned["xrange"][1] - panned["xrange"][0] == pytest.approx(width, rel=1e-6)
    assert panned["xrange"][0] - start["xrange"][0] == pytest.approx(-width / 5, rel=0.1)
    # Zoom in (the modebar's +): half as wide and high.
    _modebar(nb, "Zoom in")
    zoomed = _ranges_changed(nb, panned, "the view to zoom in")
    assert zoomed["xrange"][1] - zoomed["xrange"][0] == pytest.approx(width / 2, rel=0.05), zoomed
    assert zoomed["yrange"][1] - zoomed["yrange"][0] == pytest.approx(height / 2, rel=0.05), zoomed
    # Autoscale: every point in view again, as at first.
    _modebar(nb, "Autoscale")
    back = _ranges_changed(nb, zoomed, "the view to autoscale")
    assert back["xrange"] == pytest.approx(start["xrange"], abs=width * 0.01), (start, back)
    assert back["yrange"] == pytest.approx(start["yrange"], abs=height * 0.01), (start, back)
    assert sum(t["n"] for t in back["groups"]) == MAP_POINTS
    nb.no_errors_shown(MAP)


def test_map_box_selection_reaches_the_kernel(map_nb):
    nb = map_nb
    page = nb.page
    # What plotly.js selects, counted in the browser as it tells the widget.
    page.evaluate(
        f"""i => ({JS_PLOTS})(i)[0].on('plotly_selected', e => {{
          if (e && e.points) window.mapSelected = e.points.length; }})""",
        MAP,
    )
    _modebar(nb, "Box Select")
    nb.wait(f"i => ({JS_PLOTS})(i)[0]._fullLayout.dragmode === 'select'", MAP, 10, "the box select tool", MAP)
    # A box around the name of a cluster (drawn at its centre), starting beside the name.
    area = _plot_area(nb)
    name = nb.page.evaluate(
        f"""i => {{ const r = ({JS_PLOTS})(i)[0].querySelector('.annotation').getBoundingClientRect();
                   return {{x: r.left, y: r.top, w: r.width, h: r.height}}; }}""",
        MAP,
    )
    x0, y0 = max(area["x"] + 2, name["x"] - 25), max(area["y"] + 2, name["y"] - 35)
    x1 = min(area["x"] + area["w"] - 2, name["x"] + name["w"] + 25)
    y1 = min(area["y"] + area["h"] - 2, name["y"] + name["h"] + 35)
    _drag(page, x0, y0, x1, y1, steps=5)
    released = time.monotonic()
    nb.wait("() => window.mapSelected > 0", None, 20, "plotly to select the points in the box", MAP)
    in_browser = page.evaluate("() => window.mapSelected")
    caption = nb.cell(MAP).locator("caption", has_text="points selected").first
    try:
        caption.wait_for(timeout=MAP_SELECTION_WAIT_S * SECOND)
    except Exception:  # noqa: BLE001 - the failure says what the page shows
        nb.fail(f"plotly selected {in_browser} points but after {MAP_SELECTION_WAIT_S} s the selection table "
                "shows none", MAP)  # fmt: skip
    shown_after = time.monotonic() - released
    shown = int(re.search(r"([\d,]+) points selected", caption.inner_text()).group(1).replace(",", ""))
    assert shown == in_browser, f"the table says {shown} points, plotly selected {in_browser}"
    _run_cell(nb, MAP_STATE)
    state = nb.state(MAP_STATE)
    assert state["selection"] == state["selected_rows"] == shown > 0, state
    assert state["errors"] == [], state["errors"]
    rows = nb.cell(MAP).locator("table", has_text="points selected").first.locator("tbody tr").count()
    assert rows == min(shown, 20), f"{rows} rows listed for {shown} points"
    nb.no_errors_shown(MAP)
    assert not nb.console, "browser console errors:\n" + "\n".join(nb.console[-10:])
    nb.screenshot(MAP, "map_100k_selection.png")
    # The table follows the box at once, not after a wait that looks like nothing happened.
    assert shown_after < MAP_SELECTION_SHOWN_S, (
        f"the selection table appeared {shown_after:.1f} s after the mouse was released "
        f"(at most {MAP_SELECTION_SHOWN_S} s expected)"
    )


# ----- issue 17: ExplainPair (token × token terms of a cosine) and CompressionExplorer -------------------
EXPLAIN_NOTEBOOK = "explain.ipynb"
EXPLAIN_CELLS = (
    """\
from workbench import load_model
from workbench.widgets import CompressionExplorer, ExplainPair

model = load_model("all-MiniLM-L6-v2", device="cpu")""",
    """\
pair = ExplainPair(model, "a dog bites a man", "a man bites a dog")
pair""",
    """\
explorer = CompressionExplorer(model, sts_limit=200, images=40)
explorer""",
    # What the kernel holds, printed as one JSON line (the cell is run again to read it later).
    """\
import dataclasses, json
r, z = pair.result, pair.fig.data[0].z
print("STATE " + json.dumps({
    "pair": {
        "text_a": pair.text_a.value, "text_b": pair.text_b.value, "hide_special": pair.hide_special.value,
        "cosine": float(r.cosine), "tokens_a": list(r.tokens_a), "tokens_b": list(r.tokens_b),
        "z": [len(z), len(z[0])], "matrix": [len(r.matrix), len(r.matrix[0])],
        "title": pair.fig.layout.title.text, "errors": [repr(e) for e in pair.errors],
    },
    "explorer": {
        "dim": explorer.dim.value, "precision": explorer.precision_buttons.value,
        "traces": [{"name": t.name, "mode": t.mode, "x": list(t.x), "y": [float(v) for v in t.y]} for t in explorer.fig.data],
        "points": {name: dataclasses.asdict(p) for name, p in explorer.points.items()},
        "baseline": {name: dataclasses.asdict(p) for name, p in explorer.baseline.items()},
        "title": explorer.fig.layout.title.text, "errors": [repr(e) for e in explorer.errors],
    },
}))""",
)
EX_SETUP, EX_PAIR, EX_COMPRESSION, EX_STATE = range(4)
EXPLAIN_RUN_S = 120  # from the widgets' cells run to a new text explained and drawn (0.5 s on a quiet machine)
# The token heatmap as plotly.js holds and drew it.
JS_TOKEN_HEATMAP = f"""i => {{
  const gd = ({JS_PLOTS})(i)[0];
  if (!gd || !gd._fullData || !gd._fullLayout) return null;
  const z = gd._fullData[0].z || [];
  const title = gd.querySelector('.gtitle');
  return {{
    type: gd._fullData[0].type,
    rows: z.length, cols: z.length ? z[0].length : 0,
    images: gd.querySelectorAll('.heatmaplayer .hm image').length,
    cellTexts: gd.querySelectorAll('.heatmaplayer text').length,
    xticks: Array.from(gd.querySelectorAll('.xaxislayer-above .xtick text')).map(t => t.textContent),
    yticks: Array.from(gd.querySelectorAll('.yaxislayer-above .ytick text')).map(t => t.textContent),
    title: title ? title.textContent : '',
  }};
}}"""
# The compression figure as plotly.js holds and drew it: per trace, its name, points and SVG markers.
JS_COMPRESSION = f"""i => {{
  const gd = ({JS_PLOTS})(i)[0];
  if (!gd || !gd._fullData || !gd._fullLayout) return null;
  const title = gd.querySelector('.gtitle');
  return {{
    traces: gd._fullData.map(t => ({{name: t.name, mode: t.mode, x: Array.from(t.x || []), y: Array.from(t.y || [])}})),
    markers: Array.from(gd.querySelectorAll('.scatterlayer .trace')).map(g => g.querySelectorAll('path.point').length),
    lines: Array.from(gd.querySelectorAll('.scatterlayer .trace')).map(
      g => Array.from(g.querySelectorAll('path.js-line')).some(l => (l.getAttribute('d') || '').length > 2)),
    legend: Array.from(gd.querySelectorAll('.legend .traces .legendtext')).map(t => t.textContent),
    title: title ? title.textContent : '',
  }};
}}"""


def _token_heatmap(nb: Notebook) -> dict:
    look = nb.page.evaluate(JS_TOKEN_HEATMAP, EX_PAIR)
    assert look is not None, "the token heatmap is not drawn"
    return look


def _compression_look(nb: Notebook) -> dict:
    look = nb.page.evaluate(JS_COMPRESSION, EX_COMPRESSION)
    assert look is not None, "the compression figure is not drawn"
    return look


def _table_rows(nb: Notebook, cell: int) -> list[list[str]]:
    """The body rows of the first HTML table in the cell's output, cell by cell, as the page shows them."""
    return nb.page.evaluate(
        f"""i => Array.from(({JS_CELL})(i).querySelectorAll('.jp-Cell-outputArea table tbody tr')).map(
          tr => Array.from(tr.querySelectorAll('td')).map(td => td.textContent.trim()))""",
        cell,
    )


@pytest.fixture(scope="module")
def explain_nb(lab, page):
    """``explain.ipynb`` (an ExplainPair, a CompressionExplorer, a state cell) open in a tab of its own, run."""
    _write_notebook(lab.root / EXPLAIN_NOTEBOOK, *EXPLAIN_CELLS)
    tab = page.context.new_page()
    try:
        nb = Notebook(tab, lab)
        nb.run_all(EXPLAIN_NOTEBOOK, last=EX_STATE, drawn=(EX_PAIR, EX_COMPRESSION))
        yield nb
    finally:
        tab.close()


def test_explain_pair_draws_the_token_terms_and_follows_typing_and_the_checkbox(explain_nb):
    nb = explain_nb
    state = nb.state(EX_STATE)["pair"]
    assert state["errors"] == [], state["errors"]
    n_a, n_b = len(state["tokens_a"]), len(state["tokens_b"])
    assert state["tokens_a"][0] == "[CLS]" and state["tokens_a"][-1] == "[SEP]", state["tokens_a"]
    assert state["z"] == state["matrix"] == [n_a, n_b], state
    # The browser draws the kernel's matrix: a row per token of a, a column per token of b, named by them.
    look = _token_heatmap(nb)
    assert look["type"] == "heatmap" and look["images"] == 1, look
    assert (look["rows"], look["cols"]) == (n_a, n_b), (look, state)
    assert look["yticks"] == state["tokens_a"] and look["xticks"] == state["tokens_b"], (look, state)
    assert look["cellTexts"] >= n_a * n_b, f"{look['cellTexts']} numbers drawn in {n_a} × {n_b} cells"
    assert look["title"] == state["title"], (look["title"], state["title"])
    summary = nb.cell(EX_PAIR).locator(".widget-html", has_text="cosine").first.inner_text()
    shown = re.search(r"cosine (-?\d\.\d{4})", summary)
    assert shown and shown.group(1) == f"{state['cosine']:.4f}", (summary, state["cosine"])
    assert "exact decomposition" in summary, summary
    # Type a new second sentence as a person would; Enter commits it (continuous_update=False).
    sentence = "The film was not good."
    box = nb.cell(EX_PAIR).locator(".widget-text input").nth(1)
    box.click()
    nb.page.keyboard.press("Control+A")
    nb.page.keyboard.type(sentence, delay=20)
    box.press("Enter")
    typed = time.monotonic()
    nb.wait(
        f"i => ({JS_TOKEN_HEATMAP})(i) && ({JS_TOKEN_HEATMAP})(i).xticks.includes('not')",
        EX_PAIR, EXPLAIN_RUN_S, "the heatmap to show the typed sentence's tokens", EX_PAIR,
    )  # fmt: skip
    redrawn_s = time.monotonic() - typed
    _run_cell(nb, EX_STATE)
    state = nb.state(EX_STATE)["pair"]
    assert state["text_b"] == sentence and state["text_a"] == "a dog bites a man", state
    assert state["errors"] == [], state["errors"]
    assert "not" in state["tokens_b"] and state["tokens_b"][-1] == "[SEP]", state["tokens_b"]
    n_a, n_b = len(state["tokens_a"]), len(state["tokens_b"])
    look = _token_heatmap(nb)
    assert (look["rows"], look["cols"]) == (n_a, n_b) == tuple(state["z"]), (look, state)
    assert look["xticks"] == state["tokens_b"] and look["yticks"] == state["tokens_a"], (look, state)
    summary = nb.cell(EX_PAIR).locator(".widget-html", has_text="cosine").first.inner_text()
    assert f"cosine {state['cosine']:.4f}" in summary, (summary, state["cosine"])
    # The checkbox: [CLS] and [SEP] leave both axes, and the summary says what share they held.
    checkbox = nb.cell(EX_PAIR).locator(".widget-checkbox", has_text="hide [CLS]/[SEP]").locator("input").first
    checkbox.click()
    nb.wait(
        f"""([i, rows, cols]) => {{ const h = ({JS_TOKEN_HEATMAP})(i);
          return h && h.rows === rows && h.cols === cols; }}""",
        [EX_PAIR, n_a - 2, n_b - 2], 60, "the heatmap to lose the [CLS] and [SEP] rows and columns", EX_PAIR,
    )  # fmt: skip
    _run_cell(nb, EX_STATE)
    hidden = nb.state(EX_STATE)["pair"]
    assert hidden["hide_special"] is True and hidden["errors"] == [], hidden
    assert hidden["tokens_a"] == state["tokens_a"][1:-1] and hidden["tokens_b"] == state["tokens_b"][1:-1], hidden
    look = _token_heatmap(nb)
    assert look["yticks"] == hidden["tokens_a"] and look["xticks"] == hidden["tokens_b"], (look, hidden)
    assert "[CLS]" not in look["xticks"] + look["yticks"] and "[SEP]" not in look["xticks"] + look["yticks"]
    summary = nb.cell(EX_PAIR).locator(".widget-html", has_text="cosine").first.inner_text()
    assert "special tokens hidden: they held" in summary and f"cosine {hidden['cosine']:.4f}" in summary, summary
    nb.no_errors_shown(EX_PAIR)
    assert not nb.console, "browser console errors:\n" + "\n".join(nb.console[-10:])
    nb.screenshot(EX_PAIR, "explain_pair.png")
    print(f"typed sentence drawn {redrawn_s:.1f} s after Enter")


def _kernel_row(point: dict, base: dict) -> list[str]:
    """The table row the explorer shows for a point, formatted as the widget formats it."""
    def share(value: float, full: float) -> str:
        return f"{100 * value / full:.1f}%" if full else "—"

    return [
        point["model"], str(point["dim"]), point["precision"],
        f"{point['sts_spearman']:.4f} ({share(point['sts_spearman'], base['sts_spearman'])})",
        f"{point['recall_at_10']:.4f} ({share(point['recall_at_10'], base['recall_at_10'])})",
        f"{point['bytes_per_vector']:,}", f"{point['bytes_per_vector']:,.0f} MB",
    ]


def _same_traces(look: dict, kernel: dict) -> None:
    """The browser holds the kernel's traces (names, points, values) and draws markers where the mode asks."""
    assert [t["name"] for t in look["traces"]] == [t["name"] for t in kernel["traces"]], (look, kernel)
    for drawn, held in zip(look["traces"], kernel["traces"], strict=True):
        assert drawn["x"] == held["x"], (drawn, held)
        assert drawn["y"] == pytest.approx(held["y"], abs=1e-9), (drawn, held)
    want = [len(t["x"]) if "markers" in t["mode"] else 0 for t in kernel["traces"]]
    assert look["markers"] == want, f"SVG markers per trace {look['markers']}, the kernel's modes ask for {want}"
    assert all(line for line, t in zip(look["lines"], kernel["traces"], strict=True) if "lines" in t["mode"]), look
    assert look["title"] == kernel["title"], (look["title"], kernel["title"])


def test_compression_explorer_draws_the_kernels_curves_and_follows_its_controls(explain_nb):
    nb = explain_nb
    cell = nb.cell(EX_COMPRESSION)
    state = nb.state(EX_STATE)["explorer"]
    assert state["errors"] == [], state["errors"]
    (name,) = state["points"]
    assert state["dim"] == 384 and state["precision"] == "float32", state
    # Per panel (STS, retrieval): the float32 curve, the chosen precision's curve, the chosen point.
    assert [t["name"] for t in state["traces"]] == [f"{name} · {s}" for s in ("float32", "float32", "chosen")] * 2
    _same_traces(_compression_look(nb), state)
    assert _table_rows(nb, EX_COMPRESSION) == [_kernel_row(state["points"][name], state["baseline"][name])]
    text = cell.locator(".jp-Cell-outputArea").inner_text()
    assert "STS-B" in text and "SAMPLE" not in text, text[:500]  # the real data, not the built-in sample
    # The "binary" button, pressed in the browser.
    before = nb.fingerprint(EX_COMPRESSION)
    cell.get_by_role("button", name="binary", exact=True).click()
    nb.wait_redrawn(EX_COMPRESSION, before, timeout_s=60)
    nb.wait(
        f"i => ({JS_COMPRESSION})(i).title.endsWith('· binary')", EX_COMPRESSION, 60,
        "the title to say binary", EX_COMPRESSION,
    )  # fmt: skip
    # The dim slider, dragged to the middle of its track (384, 256, 128, 64, 32: 128).
    slider = cell.locator(".widget-slider", has_text="dimensions").first
    readout = slider.locator(".widget-readout")
    assert readout.inner_text().strip() == "384"
    before = nb.fingerprint(EX_COMPRESSION)
    nb.drag_slider(slider, 0.5)
    nb.wait(
        "el => el.textContent.trim() !== '384'", readout.element_handle(), 10, "the slider's readout to change",
        EX_COMPRESSION,
    )  # fmt: skip
    dim = int(readout.inner_text().strip())
    assert dim in (256, 128, 64), f"dragged to the middle, the slider reads {dim}"
    nb.wait(
        f"([i, t]) => ({JS_COMPRESSION})(i).title === t", [EX_COMPRESSION, f"{dim} dimensions · binary"], 60,
        f"the title to say {dim} dimensions · binary", EX_COMPRESSION,
    )  # fmt: skip
    _run_cell(nb, EX_STATE)
    state = nb.state(EX_STATE)["explorer"]
    assert state["errors"] == [], state["errors"]
    assert state["dim"] == dim and state["precision"] == "binary", state
    point = state["points"][name]
    assert (point["dim"], point["precision"], point["bytes_per_vector"]) == (dim, "binary", dim // 8), point
    assert [t["name"] for t in state["traces"]] == [f"{name} · {s}" for s in ("float32", "binary", "chosen")] * 2
    look = _compression_look(nb)
    _same_traces(look, state)
    # The chosen point, ringed in each panel, is the kernel's measurement at that setting.
    chosen = [t for t in look["traces"] if t["name"].endswith("· chosen")]
    assert [t["x"] for t in chosen] == [[dim], [dim]], chosen
    assert chosen[0]["y"] == pytest.approx([point["sts_spearman"]]) and chosen[1]["y"] == pytest.approx(
        [point["recall_at_10"]]), (chosen, point)  # fmt: skip
    assert _table_rows(nb, EX_COMPRESSION) == [_kernel_row(point, state["baseline"][name])]
    nb.no_errors_shown(EX_COMPRESSION)
    assert not nb.console, "browser console errors:\n" + "\n".join(nb.console[-10:])
    nb.screenshot(EX_COMPRESSION, "compression_explorer.png")


def test_the_explain_notebook_shows_no_traceback(explain_nb):
    run = explain_nb.page.evaluate(JS_RUN_STATE)
    assert run["raised"] == [], run["raised"][0][-3000:] if run["raised"] else ""
    for cell in range(len(EXPLAIN_CELLS)):
        explain_nb.no_errors_shown(cell)
