"""The package imports one way and keeps its modules small.

Layers, bottom up: the model (``model``, ``errors``, ``protocols`` and small
helpers) <- the stages (``authn``, ``policy``, ``sanitize``, ``audit``,
``store``, ``classify``, ``ratelimit``, ``telemetry``) <- the core (``config``,
``assembly``, ``screening``, ``pipeline``, ``guard``) <- ``integrations`` <-
``portal`` and ``cli``. Every import counts, including those inside
functions; only ``if TYPE_CHECKING:`` blocks (never executed) are left out.
Importing a submodule also runs its package's ``__init__``; like other
import linters this test follows the imports a module writes, not that
implicit step.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "mcp_guard"
MAX_LINES = 600

#: Layer of each top-level part of the package; a module may import only its own layer or lower ones.
LAYERS = {
    "_toml": 0,
    "_wire": 0,
    "errors": 0,
    "model": 0,
    "events": 0,
    "protocols": 0,
    "limits": 0,
    "data": 0,
    "classify": 1,
    "withheld": 1,
    "upkeep": 1,
    "authn": 1,
    "policy": 1,
    "sanitize": 1,
    "audit": 1,
    "store": 1,
    "approvals": 1,
    "ratelimit": 1,
    "inflight": 1,
    "budgets": 1,
    "telemetry": 1,
    "config": 2,
    "assembly": 2,
    "screening": 2,
    "pipeline": 2,
    "guard": 2,
    "review": 2,
    "confirm": 2,
    "stepping": 2,
    "flowstate": 2,
    "integrations": 3,
    "portal": 4,
    "console": 4,
    "cli": 5,
    "__main__": 6,
    "__init__": 6,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _type_checking(child):
            for other in child.orelse:
                yield other
                yield from _walk(other)
            continue
        yield child
        yield from _walk(child)


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules ``name`` imports (module level and inside functions)."""
    is_package = path.name == "__init__.py"
    base = name.split(".") if is_package else name.split(".")[:-1]
    found: set[str] = set()
    for node in _walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                prefix = ".".join([*anchor, *(node.module.split(".") if node.module else [])])
            else:
                prefix = node.module or ""
            targets = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in known else prefix for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and target.startswith("mcp_guard"):
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports_of(name, path, known) for name, path in mods.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def layer(name: str) -> int:
    parts = name.split(".")
    return LAYERS["__init__"] if len(parts) == 1 else LAYERS[parts[1]]


def test_the_import_graph_has_no_cycles() -> None:
    assert cycles(graph()) == []


def test_imports_point_down_the_layers() -> None:
    wrong = sorted(
        f"{src} (layer {layer(src)}) imports {dst} (layer {layer(dst)})"
        for src, targets in graph().items()
        for dst in targets
        if layer(dst) > layer(src)
    )
    assert wrong == []


def test_the_core_does_not_import_the_sdk_server() -> None:
    """Below the integrations nothing imports ``mcp.server``: the core runs without the SDK's server."""
    offenders = []
    for name, path in modules().items():
        if layer(name) >= LAYERS["integrations"]:
            continue
        for node in _walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mcp.server"):
                offenders.append(f"{name}: from {node.module}")
            if isinstance(node, ast.Import) and any(a.name.startswith("mcp.server") for a in node.names):
                offenders.append(name)
    assert offenders == []


def test_no_module_over_600_lines() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in modules().items()}
    assert {n: s for n, s in sizes.items() if s > MAX_LINES} == {}


def test_the_checker_sees_a_cycle_and_a_function_level_import() -> None:
    """The walk above must be able to fail: a cycle through a function-level import is found."""
    source = "def f():\n    from .b import x\n"
    tree = ast.parse(source)
    assert any(isinstance(n, ast.ImportFrom) for n in _walk(tree))
    assert cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b"]]
    guarded = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import x\n")
    assert [n for n in _walk(guarded) if isinstance(n, ast.ImportFrom) and n.module == "b"] == []
