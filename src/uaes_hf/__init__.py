"""uaes-hf: measure whether AI models agree on beautiful things.

The top-level namespace re-exports the alignment metrics lazily, so ``import uaes_hf``
loads neither torch nor any Hugging Face library. The map of the sub-packages, their
dependency direction, data contracts and cache keys: ``docs/architecture.md``.

Example:
    >>> import numpy as np
    >>> from uaes_hf import mutual_knn
    >>> x = np.random.default_rng(0).normal(size=(20, 4))
    >>> mutual_knn(x, 3 * x, k=5)
    1.0
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
