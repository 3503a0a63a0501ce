"""CKA with the unbiased HSIC estimator (Song et al., 2012), linear or RBF kernel.

As :mod:`uaes_hf.alignment.cka` with ``HSIC_u`` in place of ``HSIC_b`` (platonic-rep's
``unbiased_cka``): the estimator's bias towards 1 for small N and high dimension is removed,
so unrelated spaces score about 0 at every N and D. Range: about [-1, 1] (negative values
are sampling noise). Needs N >= 4.

Chance level: exactly 0 under the permutation null (every term of the unbiased HSIC is
linear in one off-diagonal entry of L, whose expectation under a random permutation is the
same for all terms, and the terms cancel).

Cost: as linear/RBF CKA.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.normal(size=(300, 50)), rng.normal(size=(300, 50))
    >>> abs(unbiased_cka(a, b)) < 0.02, round(unbiased_cka(a, 2 * a), 6)
    (True, 1.0)
"""

from __future__ import annotations

from typing import Any, ClassVar

from uaes_hf.alignment.cka import CKA
from uaes_hf.alignment.kernels import KernelSpace


class UnbiasedCKA(CKA):
    """Unbiased CKA as a :class:`~uaes_hf.alignment.base.Metric`."""

    name: ClassVar[str] = "unbiased_cka"
    unbiased: ClassVar[bool] = True
    min_samples: ClassVar[int] = 4

    def chance_level(self, a: KernelSpace, b: KernelSpace) -> float:
        return 0.0


def unbiased_cka(
    features_a: Any, features_b: Any, *, kernel: str = "linear", rbf_sigma: float = 1.0
) -> float:
    """Unbiased CKA of two ``N x D`` representations (N >= 4; rows L2-normalised first).

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(60, 6))
        >>> round(unbiased_cka(x, 3 * x), 6)
        1.0
    """
    return UnbiasedCKA(kernel, rbf_sigma).score(features_a, features_b)
