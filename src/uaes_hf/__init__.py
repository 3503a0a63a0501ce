"""uaes-hf: measure whether AI models agree on beautiful things.

The top-level namespace re-exports the alignment metrics lazily, so ``import uaes_hf``
loads neither torch nor any Hugging Face library.

Example:
    >>> from uaes_hf import mutual_knn  # doctest: +SKIP
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "mutual_knn": "uaes_hf.alignment",
    "mutual_knn_per_sample": "uaes_hf.alignment",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'uaes_hf' has no attribute {name!r}")


__all__ = ["__version__", *_LAZY]
