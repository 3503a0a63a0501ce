"""The import graph of src/uaes_hf, built from the source with ast: no cycles, and the
dependency direction of the architecture (features depends on nothing else in the package)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "uaes_hf"


def module_names(src: Path = SRC) -> dict[str, Path]:
    """Every module of the package: dotted name -> file (a package is its __init__)."""
    found = {}
    for path in sorted((src / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules ``name`` imports anywhere (top level, functions, TYPE_CHECKING)."""
    is_package = path.name == "__init__.py"
    base = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base.split(".")[: len(base.split(".")) - (node.level - 1)]
                module = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            # `from a.b import c` imports the module a.b.c when there is one, else a.b
            targets = [
                f"{module}.{alias.name}" if f"{module}.{alias.name}" in modules else module
                for alias in node.names
            ]
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    modules = module_names(src)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_cycle_finder_finds_a_planted_cycle(tmp_path):
    """The checker itself: a cycle through a function-level import is found."""
    pkg = tmp_path / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "a.py").write_text("from uaes_hf.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from . import c\n")
    (pkg / "sub" / "c.py").write_text("import uaes_hf.sub.a as a\n")
    (pkg / "d.py").write_text("from uaes_hf.sub.a import x\n")
    graph = import_graph(tmp_path)
    assert graph["uaes_hf.sub.b"] == {"uaes_hf.sub.c"}
    assert cycles(graph) == [frozenset({"uaes_hf.sub.a", "uaes_hf.sub.b", "uaes_hf.sub.c"})]


def test_no_import_cycles():
    graph = import_graph()
    assert "uaes_hf.experiments.stages.extract" in graph  # the graph covers the package
    found = [sorted(cycle) for cycle in cycles(graph)]
    assert found == [], f"import cycles: {found}"


def test_features_depend_on_nothing_else_in_the_package():
    graph = import_graph()
    for name, targets in graph.items():
        if name.startswith("uaes_hf.features"):
            outside = {
                t
                for t in targets
                if not t.startswith("uaes_hf.features") and t not in ("uaes_hf._lazy", "uaes_hf")
            }
            assert outside == set(), f"{name} imports {sorted(outside)}"


# The package-level dependency direction of docs/architecture.md ("Dependency direction"):
# each sub-package may import only the ones listed (and itself). "base" is the package root
# (its version), `_lazy`, `paths` and `typed_config`. Adding an edge is a design decision: change the table
# here and in the document together.
BASE = {"uaes_hf", "_lazy", "paths", "typed_config"}
ALLOWED_DEPENDENCIES: dict[str, set[str]] = {
    "alignment": set(),
    "features": {"_lazy"},
    "assets": {"paths"},
    "data": BASE,
    "annotate": BASE | {"assets"},
    "extract": BASE | {"assets", "features"},
    "feature_files": {"features"},
    "images": BASE | {"annotate", "assets", "data"},
    "hub": BASE | {"alignment", "feature_files"},
    "retrieval": BASE | {"alignment", "annotate", "assets", "data", "images"},
    "experiments": BASE | {"alignment", "annotate", "data", "extract", "features", "images"},
    "space": BASE | {"alignment", "annotate", "data", "experiments", "features", "retrieval"},
}


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "uaes_hf"


def package_edges(graph: dict[str, set[str]]) -> set[tuple[str, str, str, str]]:
    """(package, imported package, module, imported module) for every cross-package import."""
    return {
        (package_of(name), package_of(target), name, target)
        for name, targets in graph.items()
        for target in targets
        if package_of(name) != package_of(target)
    }


def test_layer_checker_finds_a_planted_upward_import(tmp_path):
    pkg = tmp_path / PACKAGE
    for sub in ("alignment", "experiments"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "alignment" / "core.py").write_text("from uaes_hf.experiments import x\n")
    edges = package_edges(import_graph(tmp_path))
    assert ("alignment", "experiments", "uaes_hf.alignment.core", "uaes_hf.experiments") in edges


def test_packages_import_only_the_layers_below_them():
    graph = import_graph()
    wrong = sorted(
        f"{module} imports {target}"
        for package, imported, module, target in package_edges(graph)
        if package in ALLOWED_DEPENDENCIES and imported not in ALLOWED_DEPENDENCIES[package]
    )
    assert wrong == [], "imports against the dependency direction:\n" + "\n".join(wrong)
    # every sub-package is in the table, so a new one must be placed in a layer
    packages = {package_of(name) for name in graph} - BASE - {"cli"}
    shells = {"commands"}
    assert packages - shells <= set(ALLOWED_DEPENDENCIES), (
        packages - shells - set(ALLOWED_DEPENDENCIES)
    )
