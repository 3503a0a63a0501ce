"""Lazy re-exports for package ``__init__`` modules (PEP 562).

A package lists ``name -> module`` and gets a ``__getattr__`` that imports the module on first
use, so importing a package never loads torch, datasets or a model.

Example:
    >>> __getattr__ = lazy_exports("uaes_hf", {"mutual_knn": "uaes_hf.alignment"})
    >>> __getattr__("mutual_knn").__name__
    'mutual_knn'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that resolves ``exports[name]`` from its module on demand."""

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
