"""The notebooks: thin clients, papermill parameters, outputs stripped; and (slow) they run.

The fast checks read every notebook under ``notebooks/`` as JSON. The slow test executes each
one with papermill in smoke mode (``SMOKE = True`` injected after the ``parameters`` cell) on a
``python3`` kernel that runs this interpreter, in a scratch working folder (runs land there),
and fails on the first cell that raises.
"""

from __future__ import annotations

import ast
import json
import os
import sys
import time
from pathlib import Path

import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.rglob("*.ipynb"))
NOTEBOOKS = [p for p in NOTEBOOKS if ".ipynb_checkpoints" not in p.parts]
IDS = [str(p.relative_to(NOTEBOOKS_DIR)) for p in NOTEBOOKS]
EXPECTED = {"01_explore.ipynb", "02_train_contrastive.ipynb", "03_distill.ipynb", "04_workshop.ipynb",
            "solutions/04_workshop_solutions.ipynb"}


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _python(source: str) -> str:
    """Cell source with IPython-only lines (magics, shell escapes) blanked, so ``ast`` can parse it."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def logic_in(source: str) -> list[str]:
    """What makes a cell more than a thin client: definitions, and lambdas given a name."""
    problems = []
    for node in ast.walk(ast.parse(_python(source))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            problems.append(f"def {node.name}")
        elif isinstance(node, ast.ClassDef):
            problems.append(f"class {node.name}")
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.NamedExpr)) and isinstance(node.value, ast.Lambda):
            problems.append(f"lambda assigned on line {node.lineno}")
    return problems


def test_the_notebooks_are_all_there():
    assert EXPECTED <= set(IDS), f"missing: {EXPECTED - set(IDS)}"


def test_logic_in_finds_definitions_and_named_lambdas():
    assert logic_in("def f(x):\n    return x") == ["def f"]
    assert logic_in("class A:\n    pass") == ["class A"]
    assert logic_in("f = lambda x: x") == ["lambda assigned on line 1"]
    assert logic_in("%time x = 1\nsorted(xs, key=len)\n!ls") == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_cells_are_thin_clients(path):
    nb = _load(path)
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            problems = logic_in(_source(cell))
            assert not problems, f"{path.name} cell {i}: {problems}: move it into the workbench package"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_parameters_cell_with_smoke(path):
    nb = _load(path)
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: needs exactly one cell tagged 'parameters' (papermill)"
    cell = tagged[0]
    assert cell["cell_type"] == "code"
    names = {t.id for node in ast.parse(_source(cell)).body if isinstance(node, ast.Assign) for t in node.targets
             if isinstance(t, ast.Name)}
    assert "SMOKE" in names, f"{path.name}: the parameters cell must set SMOKE"
    assert "SMOKE = False" in _source(cell), "SMOKE defaults to False (CI sets True)"
    first_code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    assert first_code is cell, f"{path.name}: the parameters cell comes before any other code"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_outputs_are_stripped(path):
    nb = _load(path)
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path.name} cell {i} has outputs: clear them before committing"
            assert cell.get("execution_count") is None, f"{path.name} cell {i} has an execution count"
    assert "widgets" not in nb.get("metadata", {}), f"{path.name}: saved widget state in the metadata"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    ids = [cell.get("id") for cell in nb["cells"]]  # nbformat 4.5: every cell has a unique id (a warning now, an error later)
    assert all(ids) and len(set(ids)) == len(ids), f"{path.name}: cells {[i for i, c in enumerate(ids) if not c]} have no id"


def test_every_workshop_exercise_has_a_folded_solution():
    nb = _load(NOTEBOOKS_DIR / "04_workshop.ipynb")
    text = [_source(c) for c in nb["cells"]]
    exercises = [i for i, t in enumerate(text) if "### Exercise" in t]
    solutions = [i for i, c in enumerate(nb["cells"]) if "solution" in c.get("metadata", {}).get("tags", [])]
    assert len(exercises) >= 4 and len(solutions) == len(exercises)
    for i in solutions:
        assert nb["cells"][i]["cell_type"] == "markdown" and text[i].startswith("<details>"), "folded by <details>"
    for e, s in zip(exercises, solutions, strict=True):
        assert e < s, "each solution comes after its exercise"


# ----- executing them (slow) -------------------------------------------------------------------
@pytest.fixture(scope="module")
def this_python_kernel(tmp_path_factory) -> dict[str, str]:
    """Environment in which the ``python3`` kernel is this interpreter (not some other install's)."""
    pytest.importorskip("papermill")
    pytest.importorskip("ipykernel")
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (workbench tests)", "language": "python",
    }), encoding="utf-8")
    return {"JUPYTER_PATH": str(root)}


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs_in_smoke_mode(path, tmp_path, this_python_kernel, monkeypatch, capsys):
    import papermill

    for key, value in this_python_kernel.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))  # teacher embeddings of this run only
    monkeypatch.setenv("MPLBACKEND", "Agg")
    out = tmp_path / path.name
    start = time.perf_counter()
    papermill.execute_notebook(str(path), str(out), parameters={"SMOKE": True}, kernel_name="python3",
                               cwd=str(tmp_path), progress_bar=False, execution_timeout=600)
    seconds = time.perf_counter() - start
    with capsys.disabled():
        print(f"\n{path.relative_to(NOTEBOOKS_DIR)}: smoke run {seconds:.0f} s")
    executed = _load(out)
    errors = [o for c in executed["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    assert any("injected-parameters" in c.get("metadata", {}).get("tags", []) for c in executed["cells"])
    assert os.path.isdir(tmp_path)
