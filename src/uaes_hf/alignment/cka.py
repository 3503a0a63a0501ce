"""Centered kernel alignment (CKA) with the biased HSIC, linear or RBF kernel.

``cka = HSIC_b(K, L) / sqrt(HSIC_b(K, K) HSIC_b(L, L))`` (Kornblith et al., 2019) on
L2-normalised rows, as platonic-rep's ``cka(kernel_metric="ip"|"rbf")``; the estimators
and kernels are in :mod:`uaes_hf.alignment.kernels`. Range [0, 1] (1 for representations
equal up to rotation and isotropic scaling with the linear kernel). Unlike the reference,
no ``1e-6`` is added to the denominator; a degenerate denominator gives ``nan``.

Chance level (exact under the permutation null of B's rows): ``tr(K̃) tr(L̃) / ((N - 1)
sqrt(HSIC_b(K, K) HSIC_b(L, L)))`` with ``K̃ = HKH``; it is not small when both spaces are
dominated by a few directions (N = 1000 unrelated 10-d Gaussians score about 0.01, 2-d ones
about 0.25 at N = 100), which is why CKA needs calibration.

Cost: linear O(N D_A D_B) or O(N^2 (D_A + D_B)), whichever is smaller, no N x N matrix;
RBF O(N^2 D) time and N x N memory (N <= 8192).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(100, 10))
    >>> q, _ = np.linalg.qr(rng.normal(size=(10, 10)))
    >>> round(cka(x, x @ q), 6), round(cka(x, x @ q, kernel="rbf", rbf_sigma=0.5), 6)
    (1.0, 1.0)
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from uaes_hf.alignment.base import Metric, as_float_matrix
from uaes_hf.alignment.kernels import MAX_GRAM_SAMPLES, KernelSpace, check_kernel


class CKA(Metric):
    """CKA as a :class:`~uaes_hf.alignment.base.Metric` (biased HSIC)."""

    name: ClassVar[str] = "cka"
    unbiased: ClassVar[bool] = False

    def __init__(self, kernel: str = "linear", rbf_sigma: float = 1.0):
        self.kernel, self.rbf_sigma = check_kernel(kernel, rbf_sigma)

    def options(self) -> dict[str, Any]:
        return {"kernel": self.kernel, "rbf_sigma": self.rbf_sigma}

    def prepare(self, features: Any, *, name: str = "features", **search: Any) -> KernelSpace:
        x = as_float_matrix(features, name)
        self.check_samples(x.shape[0])
        return KernelSpace.build(
            x, kernel=self.kernel, rbf_sigma=self.rbf_sigma, unbiased=self.unbiased
        )

    def score_states(self, a: KernelSpace, b: KernelSpace) -> float:
        return a.cka(b)

    def permute(self, state: KernelSpace, perm: np.ndarray) -> KernelSpace:
        return state.permuted(perm)

    def null_state(self, state: KernelSpace) -> KernelSpace:
        """The form a permutation null scores fastest.

        Per permutation the Gram route costs ~2 N^2 memory-bound operations, the feature
        route ``N D_A D_B`` BLAS flops (an order of magnitude faster each, measured on
        CPU): hold the Gram matrix only when ``N`` is small against ``D^2``.
        """
        if state.features is None or state.n > MAX_GRAM_SAMPLES:
            return state
        width = state.features.shape[1]
        return state.with_gram() if 20 * state.n <= width * width else state

    def chance_level(self, a: KernelSpace, b: KernelSpace) -> float | None:
        denominator = np.sqrt(a.self_hsic * b.self_hsic)
        if not denominator > 0:
            return None
        return float(a.trace * b.trace / ((a.n - 1) * denominator))


def cka(
    features_a: Any, features_b: Any, *, kernel: str = "linear", rbf_sigma: float = 1.0
) -> float:
    """CKA of two ``N x D`` representations (rows L2-normalised first).

    Args:
        features_a, features_b: ``N x D_a`` and ``N x D_b`` matrices (numpy, list, torch).
        kernel: ``"linear"`` (platonic-rep's ``"ip"``) or ``"rbf"``.
        rbf_sigma: bandwidth of the RBF kernel (on unit-norm rows, squared distances are
            in [0, 4]).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(1)
        >>> a = rng.normal(size=(200, 6))
        >>> cka(a, rng.normal(size=(200, 6))) < 0.1 < cka(a, a + 0.5 * rng.normal(size=a.shape))
        True
    """
    return CKA(kernel, rbf_sigma).score(features_a, features_b)


def linear_cka(features_a: Any, features_b: Any) -> float:
    """Linear CKA, ``cka(a, b, kernel="linear")``.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(50, 8))
        >>> round(linear_cka(x, 3 * x), 6)
        1.0
    """
    return cka(features_a, features_b, kernel="linear")
