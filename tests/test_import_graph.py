"""The import graph of vgbench and its plugin packages, read with ``ast``: no cycles, and the core never imports
a plugin package. Imports inside functions count; imports under ``if TYPE_CHECKING:`` do not."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: source folder → the package name it is installed as (pyproject.toml's package-dir)
PACKAGES = {"vgbench": "vgbench", "tasks": "vgbench_tasks", "representations": "vgbench_representations",
            "leaderboard": "vgbench_leaderboard"}
PLUGIN_PACKAGES = ("vgbench_tasks", "vgbench_representations", "vgbench_leaderboard")


def module_files() -> dict[str, Path]:
    """Every module name → its file, for the four source folders."""
    modules = {}
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([package, *parts])] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST):
    """Import statements anywhere in the tree (functions included), skipping ``if TYPE_CHECKING:`` bodies."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def imported_names(module: str, path: Path) -> set[str]:
    """Full dotted names a module imports: ``from pkg import sub`` gives ``pkg.sub`` as well as ``pkg``."""
    is_package = path.name == "__init__.py"
    names = set()
    for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
            continue
        if node.level:
            base = module.split(".")
            base = base if is_package else base[:-1]
            base = base[: len(base) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module
        names.add(target)
        names.update(f"{target}.{alias.name}" for alias in node.names)
    return names


def import_graph() -> dict[str, set[str]]:
    """Module → the modules of the four packages it imports (a name resolves to its longest known module)."""
    modules = module_files()
    graph = {}
    for module, path in modules.items():
        edges = set()
        for name in imported_names(module, path):
            parts = name.split(".")
            while parts and ".".join(parts) not in modules:
                parts.pop()
            if parts and ".".join(parts) != module:
                edges.add(".".join(parts))
        graph[module] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One shortest cycle per strongly connected component of more than one module (its first module, sorted)."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []

    def strongconnect(v: str) -> None:  # Tarjan, iteratively (no recursion limit)
        work = [(v, iter(sorted(graph[v])))]
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.add(w)
                    if w == node:
                        break
                if len(component) > 1:
                    components.append(component)

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return [_shortest_cycle(graph, sorted(c)[0], c) for c in components]


def _shortest_cycle(graph: dict[str, set[str]], start: str, component: set[str]) -> list[str]:
    """A shortest path start → … → start inside ``component`` (breadth first)."""
    parents, frontier = {start: None}, [start]
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(graph[node] & component):
                if child == start:
                    path = [node]
                    while parents[path[-1]] is not None:
                        path.append(parents[path[-1]])
                    return [*reversed(path), start]
                if child not in parents:
                    parents[child] = node
                    nxt.append(child)
        frontier = nxt
    raise AssertionError(f"{start} is in a component without a cycle")


def knot_of(graph: dict[str, set[str]], module: str) -> set[str]:
    """The modules that ``module`` reaches and that reach it back (its strongly connected component)."""
    def reach(start: str, edges) -> set[str]:
        seen, todo = {start}, [start]
        while todo:
            for nxt in edges(todo.pop()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    reverse = {m: {n for n, targets in graph.items() if m in targets} for m in graph}
    return reach(module, lambda m: graph[m]) & reach(module, lambda m: reverse[m])


def test_the_helpers_find_cycles_and_submodule_imports(tmp_path):
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    assert knot_of(graph, "b") == {"a", "b", "c"}
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "mod.py").write_text("from typing import TYPE_CHECKING\nfrom . import sub\n"
                                "def f():\n    from .other import thing\n"
                                "if TYPE_CHECKING:\n    from . import hidden\n")
    names = imported_names("vgbench.mod", pkg / "mod.py")
    assert {"vgbench.sub", "vgbench.other", "vgbench.other.thing"} <= names
    assert "vgbench.hidden" not in names


def test_the_graph_sees_every_package():
    graph = import_graph()
    assert {"vgbench", "vgbench.cli.main", "vgbench_tasks.prompt_steering", "vgbench_representations.persona",
            "vgbench_leaderboard.site"} <= set(graph)
    assert "vgbench.registry" in graph["vgbench.value_sets"]  # a function-level `from . import registry`


def test_no_import_cycles():
    graph = import_graph()
    found = cycles(graph)
    knots = [sorted(knot_of(graph, c[0])) for c in found]
    assert not found, "import cycles:\n" + "\n".join(
        f"{' → '.join(c)}  (all modules of this knot: {', '.join(k)})" for c, k in zip(found, knots))


def test_core_never_imports_a_plugin_package():
    graph = import_graph()
    bad = sorted(f"{module} imports {target}" for module, targets in graph.items() if module.split(".")[0] == "vgbench"
                 for target in targets if target.split(".")[0] in PLUGIN_PACKAGES)
    assert not bad, "the core imports plugin packages:\n" + "\n".join(bad)


@pytest.mark.parametrize("package", PLUGIN_PACKAGES)
def test_plugin_packages_are_mapped(package):
    assert any(m.split(".")[0] == package for m in module_files())
