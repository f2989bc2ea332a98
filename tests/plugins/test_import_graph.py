"""The import graph of the bundle's own code (plugins/ and the Cloudflare provider), read with `ast`: every
import counts, at module level or inside a function, since a function-level import only hides a cycle
until the function runs. Asserted: no cycle anywhere, the provider stays generic (it imports
nothing of PRISM's and never names it), and every import left inside a function under plugins/ says
why in a comment."""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Each source root and the directory that is on sys.path for it.
SOURCE_ROOTS = {"plugins": ROOT / "plugins", "providers": ROOT / "providers" / "cloudflare"}
PROVIDER = ROOT / "providers"
PRISM_PACKAGES = ("prism", "prism_dashboard", "prism_dashboard_plugin")


def module_name(path: Path, base: Path) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def find_modules() -> dict[str, Path]:
    """Every module of the source roots by dotted name."""
    modules = {}
    for base in SOURCE_ROOTS.values():
        for path in sorted(base.rglob("*.py")):
            if "__pycache__" not in path.parts:
                modules[module_name(path, base)] = path
    return modules


MODULES = find_modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST):
    """Every Import/ImportFrom, at any depth, except those under `if TYPE_CHECKING:` (never run)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        children = list(ast.iter_child_nodes(node))
        if isinstance(node, ast.If) and _is_type_checking(node):
            children = node.orelse
        stack.extend(children)


def imported_names(name: str, path: Path) -> set[str]:
    """The dotted names a module imports (resolved when relative; `from x import y` gives x, and x.y too
    when y is a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names = set()
    for node in _import_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
            continue
        if node.level:
            base = package.split(".")
            base = base[: len(base) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module
        names.add(source)
        names.update(f"{source}.{alias.name}" for alias in node.names if f"{source}.{alias.name}" in MODULES)
    return names


def _with_packages(target: str, importer: str) -> set[str]:
    """An import runs the target and each package above it; the importer's own packages are already running."""
    parts = target.split(".")
    chain = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    own = importer.split(".")
    ancestors = {".".join(own[:i]) for i in range(1, len(own))}
    return {m for m in chain if m in MODULES and m not in ancestors and m != importer}


def build_graph() -> dict[str, set[str]]:
    graph = {}
    for name, path in MODULES.items():
        graph[name] = set()
        for target in imported_names(name, path):
            graph[name] |= _with_packages(target, name)
    return graph


GRAPH = build_graph()


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a -> ... -> a) for each strongly connected component that has one (Tarjan)."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

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
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_cycle_in(graph, component) for component in components]


def _cycle_in(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """The shortest path from the component's first module back to itself, within the component."""
    start = min(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v] & component):
            if w == start:
                return paths[v] + [start]
            if w not in paths:
                paths[w] = paths[v] + [w]
                queue.append(w)
    raise AssertionError(f"no cycle in {component}")  # a component of Tarjan's always has one


def test_the_graph_covers_both_roots_and_function_level_imports():
    assert "prism.alerts" in GRAPH and "airflow_provider_cloudflare.hooks.d1" in GRAPH
    # `from airflow_provider_cloudflare.hooks.d1 import D1Hook` inside a method of troubleshooting._Sources.
    assert "airflow_provider_cloudflare.hooks.d1" in GRAPH["prism.monitoring.troubleshooting"]


def test_the_cycle_finder_reports_the_path():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert sorted(find_cycles(graph)) == [["a", "b", "c", "a"], ["e", "e"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_relative_and_from_imports_resolve_to_modules(tmp_path):
    # `from . import troubleshooting` in prism.monitoring.x is prism.monitoring and prism.monitoring.troubleshooting.
    source = tmp_path / "x.py"
    source.write_text("from . import troubleshooting\nfrom ..alerts import alert\n")
    assert imported_names("prism.monitoring.x", source) == {
        "prism.monitoring",
        "prism.monitoring.troubleshooting",
        "prism.alerts",
    }


def test_no_import_cycles():
    cycles = find_cycles(GRAPH)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)


@pytest.mark.parametrize(
    "name", sorted(n for n in MODULES if n.split(".")[0] == "airflow_provider_cloudflare"), ids=str
)
def test_the_provider_imports_nothing_of_prism(name):
    prism = sorted(t for t in imported_names(name, MODULES[name]) if t.split(".")[0] in PRISM_PACKAGES)
    assert not prism, f"{name} imports {prism}"


def test_no_provider_file_names_prism():
    files = [p for p in PROVIDER.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert files
    naming = [str(p.relative_to(ROOT)) for p in files if b"prism" in p.read_bytes().lower()]
    assert not naming, f"files under providers/ that name PRISM: {naming}"


def _comment_lines(source: str) -> set[int]:
    """The numbers of the lines that carry a comment (tokens, so a # inside a string does not count)."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {tok.start[0] for tok in tokens if tok.type == tokenize.COMMENT}


def unexplained_lazy_imports(source: str) -> list[int]:
    """The line numbers of the imports inside a function body that no comment explains. A comment explains
    an import on its own lines or on the line above; a run of imports on consecutive lines shares the
    comment above its first."""
    comments = _comment_lines(source)
    lazy: list[ast.stmt] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if in_function and isinstance(child, (ast.Import, ast.ImportFrom)):
                lazy.append(child)
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(source), False)
    explained: set[int] = set()  # end lines of explained imports, for the runs
    missing = []
    for node in sorted(lazy, key=lambda n: n.lineno):
        own = set(range(node.lineno, node.end_lineno + 1))
        above = node.lineno - 1
        if own & comments or above in comments or above in explained:
            explained.add(node.end_lineno)
        else:
            missing.append(node.lineno)
    return missing


def test_the_lazy_import_check_wants_a_reason():
    source = (
        "import os\n"
        "def a():\n"
        "    import json\n"  # 3: no reason
        "def b():\n"
        "    # boto3 is slow to import\n"
        "    import boto3\n"
        "    import botocore\n"  # the run shares the comment above it
        "\n"
        "    import csv\n"  # 9: a blank line ends the run
        "def c():\n"
        "    x = '# not a comment'\n"
        "    import re\n"  # 12: the line above holds a string, not a comment
        "    from sys import path  # the reason on the line\n"
    )
    assert unexplained_lazy_imports(source) == [3, 9, 12]


def test_every_lazy_import_under_plugins_says_why():
    """An import inside a function is a choice (a heavy module kept out of DAG parsing or plugin load, an
    ORM kept out of task processes); any other import belongs at the top of its module."""
    missing = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in sorted(SOURCE_ROOTS["plugins"].rglob("*.py"))
        if "__pycache__" not in path.parts
        for line in unexplained_lazy_imports(path.read_text())
    ]
    assert not missing, "imports inside functions with no comment saying why (move them to the top):\n" + "\n".join(
        missing
    )
