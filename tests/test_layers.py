"""Imports point one way: records/settings/errors/text at the bottom, then ingest and the index
store, then rag, then the command line, the browser app and the evaluation on top. No cycle
(counting imports inside functions too), no upward import, and no ``_private`` name imported
from another of our modules. Read from the source with ``ast``; nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("reportqa", "ingest", "rag", "ui", "evals")
# Lower number = lower layer; a module may import only from its own layer or below.
LAYERS = {"reportqa": 0, "ingest": 1, "rag": 2, "ui": 3, "evals": 3}


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for f in (ROOT / pkg).rglob("*.py"):
            parts = f.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = f
    return out


def _imports(path: Path, name: str) -> list[tuple[str, str, int]]:
    """(imported module, imported name or "", line) for every import of our packages."""
    is_pkg = path.name == "__init__.py"
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(a.name, "", node.lineno) for a in node.names
                    if a.name.split(".")[0] in PACKAGES]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                base = ".".join(pkg[: len(pkg) - node.level + 1] + ([base] if base else []))
            if base.split(".")[0] in PACKAGES:
                out += [(base, a.name, node.lineno) for a in node.names]
    return out


def _target(mods: dict[str, Path], module: str, imported: str) -> str:
    """The module an import refers to ("from rag import structured" -> rag.structured)."""
    sub = f"{module}.{imported}" if imported else ""
    return sub if sub in mods else module


def _graph() -> tuple[dict[str, set[str]], list[str], list[str]]:
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    private, upward = [], []
    for m, path in mods.items():
        for module, imported, line in _imports(path, m):
            t = _target(mods, module, imported)
            if t == m or t not in mods:
                continue
            graph[m].add(t)
            where = f"{path.relative_to(ROOT)}:{line}"
            if imported.startswith("_") and t == module:
                private.append(f"{where} imports {imported} from {module}")
            if LAYERS[t.split(".")[0]] > LAYERS[m.split(".")[0]]:
                upward.append(f"{where}: {m} (layer {LAYERS[m.split('.')[0]]}) imports {t}")
    return graph, private, upward


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (found := visit(m)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


def test_no_import_cycle() -> None:
    graph, _, _ = _graph()
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_no_private_name_crosses_modules() -> None:
    _, private, _ = _graph()
    assert not private, "\n".join(private)


def test_no_upward_import() -> None:
    _, _, upward = _graph()
    assert not upward, "\n".join(upward)


def test_the_checks_can_fail() -> None:
    """The checker sees a cycle, a private import and an upward import when they are there."""
    assert _cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
    mods = _modules()
    assert "rag.answer" in mods and "reportqa.records" in mods and "ui.cli" in mods
    graph, _, _ = _graph()
    assert "rag.structured" in graph["rag.answer"]  # "from rag import structured" is seen
