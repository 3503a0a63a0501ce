"""A fingerprint of the code that computes a result, for cache keys that cannot go stale.

A stage's key holds :func:`code_fingerprint` of the stage's module: the sha256 of the source
of every ``uaes_hf`` module it imports, transitively (imports anywhere in a module count:
top level, inside functions, under ``TYPE_CHECKING``), and of the package data files (YAML,
CSV, templates) in those modules' folders. Editing the report code then changes the report
stage's key but not the extract stage's. The import graph is read with :mod:`ast` from the
source files, never by importing them.

What is not covered: a package ``__init__`` enters only when a module imports from it (its
lazy re-export table then points at the module that defines the name); imports made with
computed names (``import_module(f"...{x}")``); third-party code (the extraction keys add the
versions of the libraries that compute features, :func:`library_versions`).

The graph and the file hashes are cached per process, keyed by every file's path, size and
modification time, so an edited file is seen at the next call.

Example:
    >>> extract = code_fingerprint(["uaes_hf.experiments.stages.extract"])
    >>> report = code_fingerprint(["uaes_hf.experiments.stages.report"])
    >>> len(extract), extract != report
    (64, True)
    >>> "uaes_hf.extract.text" in import_closure(["uaes_hf.experiments.stages.extract"])
    True
    >>> "uaes_hf.experiments.report.html" in import_closure(["uaes_hf.experiments.stages.extract"])
    False
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path

PACKAGE = "uaes_hf"
# The libraries whose code computes feature numbers (their versions key extraction results).
EXTRACTION_LIBRARIES: tuple[str, ...] = (
    "torch",
    "transformers",
    "tokenizers",
    "sentence-transformers",
    "timm",
    "onnxruntime",
    "numpy",
    "safetensors",
)


def package_root() -> Path:
    """The folder of the ``uaes_hf`` package in use (the one this module belongs to)."""
    return Path(__file__).resolve().parents[1]


def _signature(root: Path) -> tuple[tuple[str, int, int], ...]:
    """Every file under ``root`` with its size and mtime: the cache key of its graph."""
    found = []
    for path in sorted(root.rglob("*")):
        if "__pycache__" in path.parts or path.suffix == ".pyc" or not path.is_file():
            continue
        stat = path.stat()
        found.append((path.relative_to(root).as_posix(), stat.st_size, stat.st_mtime_ns))
    return tuple(found)


def _module_files(root: Path) -> dict[str, Path]:
    """Dotted module name -> source file (a package is its ``__init__.py``)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = [PACKAGE, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _lazy_tables(tree: ast.Module, modules: Mapping[str, Path]) -> dict[str, str]:
    """``name -> module`` from a module's top-level ``{"Name": "uaes_hf.x.y", ...}`` dicts."""
    table: dict[str, str] = {}
    for node in tree.body:
        if not isinstance(node, ast.Assign) or not isinstance(node.value, ast.Dict):
            continue
        pairs = list(zip(node.value.keys, node.value.values, strict=True))
        if pairs and all(
            isinstance(k, ast.Constant)
            and isinstance(k.value, str)
            and isinstance(v, ast.Constant)
            and v.value in modules
            for k, v in pairs
        ):
            table.update({k.value: v.value for k, v in pairs})  # type: ignore[union-attr]
    return table


def _owner(target: str, modules: Mapping[str, Path]) -> str:
    while target and target not in modules:
        target = target.rpartition(".")[0]
    return target


def _edges(
    name: str, path: Path, modules: Mapping[str, Path], lazy: Mapping[str, dict[str, str]]
) -> set[str]:
    """The package modules ``name`` imports (see the module docstring for the rules)."""
    base = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _owner(alias.name, modules)
                found.add(target)
                if target == alias.name:  # ``import pkg``: any lazy name may be used
                    found.update(lazy.get(target, {}).values())
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base.split(".")[: len(base.split(".")) - (node.level - 1)]
                module = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            for alias in node.names:
                full = f"{module}.{alias.name}"
                if full in modules:
                    found.add(full)
                    continue
                found.add(_owner(module, modules))
                if alias.name in lazy.get(module, {}):
                    found.add(lazy[module][alias.name])
                elif alias.name == "*":
                    found.update(lazy.get(module, {}).values())
    found.discard("")
    found.discard(name)
    return found


@functools.lru_cache(maxsize=8)
def _graph(root: Path, signature: tuple[tuple[str, int, int], ...]) -> dict[str, frozenset[str]]:
    del signature  # part of the cache key only
    modules = _module_files(root)
    trees = {name: ast.parse(path.read_text("utf-8"), str(path)) for name, path in modules.items()}
    lazy = {name: _lazy_tables(tree, modules) for name, tree in trees.items()}
    return {name: frozenset(_edges(name, path, modules, lazy)) for name, path in modules.items()}


@functools.lru_cache(maxsize=4096)
def _file_hash(path: Path, size: int, mtime_ns: int) -> str:
    del size, mtime_ns  # part of the cache key only
    return hashlib.sha256(path.read_bytes()).hexdigest()


def import_closure(modules: Iterable[str], root: Path | None = None) -> set[str]:
    """``modules`` and every ``uaes_hf`` module they import, transitively.

    Raises:
        ValueError: a name that is not a module of the package under ``root``.
    """
    root = Path(root) if root is not None else package_root()
    graph = _graph(root, _signature(root))
    todo = list(modules)
    unknown = [name for name in todo if name not in graph]
    if unknown:
        raise ValueError(f"not modules of {PACKAGE} under {root}: {unknown}")
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph[name] - seen)
    return seen


def code_files(modules: Iterable[str], root: Path | None = None) -> list[Path]:
    """The source files of :func:`import_closure` and the data files in their folders."""
    root = Path(root) if root is not None else package_root()
    sources = _module_files(root)
    files = {sources[name] for name in import_closure(modules, root)}
    for folder in {path.parent for path in files}:
        files.update(_data_files(folder))
    return sorted(files)


def _data_files(folder: Path) -> list[Path]:
    """Non-Python files of ``folder`` and its plain (non-package) subfolders; hidden ones left out."""
    found = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder).parts
        if not path.is_file() or path.suffix in (".py", ".pyc"):
            continue
        if any(part.startswith(".") or part == "__pycache__" for part in rel):
            continue
        inner = [folder.joinpath(*rel[: i + 1]) for i in range(len(rel) - 1)]
        if not any((d / "__init__.py").is_file() for d in inner):
            found.append(path)
    return found


def code_fingerprint(modules: Iterable[str], root: Path | None = None) -> str:
    """sha256 over the relative paths and contents of :func:`code_files` of ``modules``."""
    root = Path(root) if root is not None else package_root()
    digest = hashlib.sha256()
    for path in code_files(modules, root):
        stat = path.stat()
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(_file_hash(path, stat.st_size, stat.st_mtime_ns).encode() + b"\0")
    return digest.hexdigest()


def library_versions(names: Iterable[str] = EXTRACTION_LIBRARIES) -> dict[str, str]:
    """Installed versions of ``names`` (``"absent"`` when not installed); imports nothing.

    Example:
        >>> library_versions(["numpy", "no-such-package-xyz"])["no-such-package-xyz"]
        'absent'
    """
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "absent"
    return found


def extraction_code_fingerprint(root: Path | None = None) -> str:
    """The code and libraries that compute features: ``uaes_hf.extract`` and
    ``uaes_hf.features`` (every module of both, and what they import), and the versions of
    :data:`EXTRACTION_LIBRARIES`. Part of every per-model checkpoint key.
    """
    root = Path(root) if root is not None else package_root()
    graph = _graph(root, _signature(root))
    ours = [n for n in graph if n.startswith((f"{PACKAGE}.extract", f"{PACKAGE}.features"))]
    payload = {"code": code_fingerprint(ours, root), "libraries": library_versions()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
