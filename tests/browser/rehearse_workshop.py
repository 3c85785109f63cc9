"""Rehearse notebooks/04_workshop.ipynb in JupyterLab as a teacher would, timing each cell.

The class's step counts (the notebook's parameters as they are), real data (``WORKBENCH_DATA``),
cell by cell with Ctrl+Enter; exercise 3 on the dashboard (scale typed into the slider's box,
Start, wait; 5 then 50). Writes ``times.json`` and screenshots to ``WORKBENCH_REHEARSAL_OUT``
(default ``rehearsal/``). About 20 minutes on 2 idle cores; run it on a quiet machine::

    WORKBENCH_DATA=../shared/data .venv/bin/python -m pytest -s tests/browser/rehearse_workshop.py
"""
# ruff: noqa: E402, F811 - the fixtures come from test_browser, imported after its folder is on the path
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_browser import JS_CELL, SECOND, Notebook, lab, page  # noqa: F401 - the fixtures

REPO = Path(__file__).resolve().parents[2]
OUT = Path(os.environ.get("WORKBENCH_REHEARSAL_OUT", "rehearsal"))
JS_PROMPTS = "() => Array.from(document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')).map(p => p.textContent.trim())"


def _code_cell(cells: list[str], text: str) -> int:
    """The index of the first code cell whose source has ``text``."""
    return next(i for i, source in enumerate(cells) if text in source)


def test_rehearse(lab, page):
    OUT.mkdir(parents=True, exist_ok=True)
    cells = ["".join(c["source"]) for c in json.loads((REPO / "notebooks" / "04_workshop.ipynb").read_text())["cells"]
             if c["cell_type"] == "code"]
    projector, to_umap = _code_cell(cells, "Projector("), _code_cell(cells, 'method_control.value = "umap"')
    dashboard = _code_cell(cells, "TrainingDashboard(")
    before, after = _code_cell(cells, "before\")"), _code_cell(cells, "distilled\")")
    shutil.copy(REPO / "notebooks" / "04_workshop.ipynb", lab.root / "04_workshop.ipynb")
    tab = page.context.new_page()
    nb = Notebook(tab, lab)
    tab.goto(lab.url_of("04_workshop.ipynb"), timeout=90 * SECOND)
    tab.locator(".jp-StatusBar-Widget", has_text=re.compile(r"\|\s*Idle")).first.wait_for(timeout=120 * SECOND)
    n = len(tab.evaluate(JS_PROMPTS))
    times = []

    def run(k, note=""):
        cell = nb.cell(k)
        cell.scroll_into_view_if_needed()
        cell.locator(".jp-InputArea-editor").click()
        t0 = time.monotonic()
        tab.keyboard.press("Control+Enter")
        deadline = t0 + 1800
        while True:
            p = tab.evaluate(JS_PROMPTS)[k]
            if re.fullmatch(r"\[\d+\]:", p):
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"cell {k} still running")
            time.sleep(0.2)
        dt = time.monotonic() - t0
        src = tab.evaluate(f"i => ({JS_CELL})(i).querySelector('.jp-InputArea-editor').innerText", k)
        text = nb.cell(k).locator(".jp-Cell-outputArea").inner_text()
        bad = "Traceback" in text
        times.append({"cell": k, "seconds": round(dt, 1), "source": src.strip().splitlines()[0][:100], "note": note, "traceback": bad})
        print(f"cell {k}: {dt:.1f} s  {src.strip().splitlines()[0][:80]}", flush=True)
        (OUT / "times.json").write_text(json.dumps(times, indent=1))
        assert not bad, text[-3000:]
        return dt

    def wait_text(k, needle, timeout=1800):
        t0 = time.monotonic()
        while needle not in nb.cell(k).locator(".jp-Cell-outputArea").inner_text():
            if time.monotonic() - t0 > timeout:
                raise AssertionError(f"no {needle!r} in cell {k}")
            time.sleep(0.5)
        return time.monotonic() - t0

    t_start = time.monotonic()
    for k in range(0, dashboard + 1):
        run(k)
        if k == to_umap:  # UMAP in the background: until the projector shows it
            dt = wait_text(projector, "umap", 600)
            t0 = time.monotonic()
            while "computing UMAP" in nb.cell(projector).locator(".jp-Cell-outputArea").inner_text():
                if time.monotonic() - t0 > 600:
                    break
                time.sleep(0.3)
            times.append({"cell": projector, "seconds": round(time.monotonic() - t0, 1), "note": "UMAP layout shown after the switch"})
            print("umap shown", time.monotonic() - t0, flush=True)
    nb.screenshot(projector, str(OUT / "projector.png"))
    # Exercise 3 on the dashboard (cell 13): scale 5, Start; then 50, Start.
    dash = nb.cell(dashboard)
    for scale in ("5", "50"):
        readout = dash.locator(".widget-readout").nth(4)  # lr, warmup, steps, scale... find by value below
        readouts = dash.locator(".widget-readout")
        for i in range(readouts.count()):
            if readouts.nth(i).inner_text().strip() in ("20.00", "5.00", "50.00"):
                readout = readouts.nth(i)
        readout.click()
        tab.keyboard.press("Control+A")
        tab.keyboard.type(scale)
        tab.keyboard.press("Enter")
        time.sleep(1)
        t0 = time.monotonic()
        dash.get_by_role("button", name="Start").click()
        time.sleep(3)
        while "done (" not in dash.locator(".jp-Cell-outputArea").inner_text():
            if time.monotonic() - t0 > 1800:
                raise AssertionError("dashboard run did not end")
            time.sleep(1)
        dt = time.monotonic() - t0
        times.append({"cell": dashboard, "seconds": round(dt, 1), "note": f"exercise 3: Start with scale {scale} until done"})
        print(f"scale {scale}: {dt:.1f}", flush=True)
        (OUT / "times.json").write_text(json.dumps(times, indent=1))
        time.sleep(3)
    nb.screenshot(dashboard, str(OUT / "exercise3_overlay.png"))
    for k in range(dashboard + 1, n):
        run(k)
        if k in (before, after):
            nb.screenshot(k, str(OUT / ("compare_before.png" if k == before else "compare_after.png")))
    times.append({"total_seconds": round(time.monotonic() - t_start, 1)})
    (OUT / "times.json").write_text(json.dumps(times, indent=1))
    tab.screenshot(path=str(OUT / "page.png"), full_page=True)
