"""The alignment package depends on nothing else in uaes_hf and has no import cycle.

The import graph is read from the source (every ``import``, also inside functions and
``TYPE_CHECKING`` blocks), so a lazy import that closes a cycle is caught too.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "uaes_hf" / "alignment"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Modules a file imports (``from pkg import submodule`` counts as the submodule)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            submodules = {name for name in names if _is_module(name)}
            found.update(submodules or {node.module})
    return {name for name in found if name.startswith("uaes_hf")}


def _is_module(dotted: str) -> bool:
    relative = Path(*dotted.split("."))
    return (SRC / relative).with_suffix(".py").is_file() or (
        SRC / relative / "__init__.py"
    ).is_file()


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges = {}
    for name, path in modules.items():
        edges[name] = {target for target in imports_of(path) if target in modules}
        outside = {
            target
            for target in imports_of(path)
            if not target.startswith("uaes_hf.alignment") and target != "uaes_hf"
        }
        assert not outside, f"{name} imports {sorted(outside)} from outside uaes_hf.alignment"
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_alignment_has_no_import_cycle_and_no_outside_dependency():
    edges = graph()
    # the package __init__ re-exports its modules; a module importing the package itself
    # would close a cycle through it
    assert find_cycle(edges) is None, " -> ".join(find_cycle(edges))
    assert len(edges) >= 15


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_alignment_or_hub_source_file_is_over_600_lines():
    files = [*PACKAGE.rglob("*.py"), *(SRC / "uaes_hf" / "hub").rglob("*.py")]
    files += [SRC / "uaes_hf" / "commands" / name for name in ("align.py", "publish.py")]
    long = {
        str(p.relative_to(SRC)): n for p in files if (n := len(p.read_text().splitlines())) > 600
    }
    assert not long
