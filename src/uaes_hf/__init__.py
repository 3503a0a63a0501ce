"""uaes-hf: measure whether AI models agree on beautiful things.

The top-level namespace re-exports the alignment metrics lazily, so ``import uaes_hf``
loads neither torch nor any Hugging Face library. The map of the sub-packages, their
dependency direction, data contracts and cache keys: ``docs/architecture.md``.

Example:
    >>> from uaes_hf import mutual_knn  # doctest: +SKIP
"""

from __future__ import annotations

from uaes_hf._lazy import lazy_exports

__version__ = "0.1.0"

_LAZY = {
    "mutual_knn": "uaes_hf.alignment",
    "mutual_knn_per_sample": "uaes_hf.alignment",
}


__getattr__ = lazy_exports("uaes_hf", _LAZY)


__all__ = ["__version__", *_LAZY]
