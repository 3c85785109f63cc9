"""No import cycle among workbench modules, counting imports made inside functions.

A cycle that only closes through a function-level import still couples the modules both ways
(and breaks as soon as someone moves the import to the top), so every ``import`` and
``from ... import`` anywhere in a module is an edge here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import workbench

PACKAGE_DIR = Path(workbench.__file__).parent


def _module_names() -> dict[str, Path]:
    """Dotted name -> file, for every module under workbench/ (packages by their __init__)."""
    names = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = ("workbench", *path.relative_to(PACKAGE_DIR).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _import_sites(name: str, path: Path, modules: set[str]) -> list[tuple[int, str]]:
    """(line, workbench module) for every module that importing ``name`` imports directly, anywhere in the file."""
    is_package = path.name == "__init__.py"
    own = set(_ancestors(name))
    sites = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative to the package (a package's __init__ is its own package)
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # from a.b import c: the module a.b.c if there is one, else a name defined in a.b.
            targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in modules else source for a in node.names]
        else:
            continue
        for target in targets:
            if target not in modules:
                continue  # outside the package
            # Importing a.b.c runs a and a.b first; our own ancestors are already being imported.
            for module in [*(a for a in _ancestors(target) if a not in own), target]:
                if module != name:
                    sites.append((node.lineno, module))
    return sites


def import_graph() -> dict[str, set[str]]:
    """Module -> the workbench modules it imports, for the whole package."""
    files = _module_names()
    return {name: {m for _, m in _import_sites(name, path, set(files))} for name, path in files.items()}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the strongly connected components, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _a_cycle(graph: dict[str, set[str]], comp: list[str]) -> list[str]:
    """One concrete cycle inside a component, as a path that returns to its start."""
    members = set(comp)
    start = comp[0]
    # Breadth-first from start's successors back to start, staying inside the component.
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & members):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if w not in parents:
                    parents[w] = v
                    nxt.append(w)
        frontier = nxt
    return comp


def _where(name: str, target: str) -> str:
    """``file:lines`` where ``name`` imports ``target``."""
    files = _module_names()
    lines = sorted({line for line, m in _import_sites(name, files[name], set(files)) if m == target})
    return f"{files[name].relative_to(PACKAGE_DIR.parent)}:{','.join(map(str, lines))}"


def test_the_graph_sees_function_level_and_relative_imports():
    graph = import_graph()
    assert "workbench.data.files" in graph["workbench.data"]  # from .files import ...
    assert "workbench.models.model" in graph["workbench.models"]
    # An import of a.b.c runs a.b: report imports workbench.training.events, so it imports workbench.training.
    assert {"workbench.training.events", "workbench.training"} <= graph["workbench.report"]
    # Function-level imports count (cli imports the quickstart inside a function).
    assert "workbench.quickstart" in graph["workbench.cli"]


def test_cycle_detection_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    comps = [c for c in strongly_connected(graph) if len(c) > 1]
    assert comps == [["a", "b", "c"]]
    assert _a_cycle(graph, comps[0]) == ["a", "b", "c", "a"]


def test_no_import_cycle_among_workbench_modules():
    graph = import_graph()
    cycles = [c for c in strongly_connected(graph) if len(c) > 1]
    lines = []
    for comp in cycles:
        path = _a_cycle(graph, comp)
        hops = " -> ".join(path)
        where = "; ".join(_where(a, b) for a, b in zip(path[:-1], path[1:], strict=True))
        lines.append(f"cycle among {len(comp)} modules {comp}: {hops}  (imports at {where})")
    assert not cycles, "import cycles:\n" + "\n".join(lines)
