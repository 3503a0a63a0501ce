"""Kernel pieces shared by the CKA metrics: one representation's HSIC terms, permutable.

Rows are L2-normalised first (as the Platonic Representation Hypothesis pipeline does).
Kernels: ``"linear"`` ``K = X X^T`` and ``"rbf"`` ``K_ij = exp(-|x_i - x_j|^2 / (2 sigma^2))``.
Estimators (Gretton et al. 2005; Song et al. 2012):

- biased ``HSIC_b(K, L) = tr(K H L H)`` (``H`` the centering matrix, no ``1/(n-1)^2``: it
  cancels in CKA);
- unbiased ``HSIC_u(K, L) = [tr(K~ L~) + 1'K~1 1'L~1 / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1] /
  (n(n-3))`` with ``K~`` the kernel with a zeroed diagonal.

A linear kernel never needs an N x N matrix: ``sum(K∘L) = ||X^T Y||_F^2`` is computed in
whichever of feature space or sample space is smaller. An N x N Gram matrix is built for
the RBF kernel, and for permutation nulls when N <= :data:`MAX_GRAM_SAMPLES` (each
permutation then costs O(N^2) instead of a new product). Arithmetic is float64 on the CPU.

Example:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(20, 3))
    >>> space = KernelSpace.build(x / np.linalg.norm(x, axis=1, keepdims=True))
    >>> round(space.cka(space), 6)
    1.0
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

# Largest N for which an N x N float64 Gram matrix is held (512 MiB each).
MAX_GRAM_SAMPLES = 8192
KERNELS = ("linear", "rbf")
_BLOCK_COLUMNS = 512


def check_kernel(kernel: Any, rbf_sigma: Any) -> tuple[str, float]:
    """Validated ``(kernel, rbf_sigma)``."""
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; choose one of {', '.join(KERNELS)}")
    if (
        isinstance(rbf_sigma, bool)
        or not isinstance(rbf_sigma, numbers.Real)
        or not math.isfinite(rbf_sigma)
        or rbf_sigma <= 0
    ):
        raise ValueError(f"rbf_sigma must be a positive number, got {rbf_sigma!r}")
    return str(kernel), float(rbf_sigma)


def cross_frobenius_sq(x: np.ndarray, y: np.ndarray) -> float:
    """``||x^T y||_F^2`` (= sum(K∘L) for K = x x^T, L = y y^T), by the cheaper route."""
    n, d_x = x.shape
    d_y = y.shape[1]
    if n * (d_x + d_y) < d_x * d_y:
        return float(np.sum((x @ x.T) * (y @ y.T)))
    total = 0.0
    for start in range(0, d_x, _BLOCK_COLUMNS):
        total += float(np.sum(np.square(x[:, start : start + _BLOCK_COLUMNS].T @ y)))
    return total


def rbf_gram(x: np.ndarray, sigma: float) -> np.ndarray:
    """``exp(-|x_i - x_j|^2 / (2 sigma^2))`` for all row pairs (squared distances >= 0)."""
    sq = np.einsum("ij,ij->i", x, x)
    dist = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0)
    np.fill_diagonal(dist, 0.0)
    return np.exp(-dist / (2.0 * sigma * sigma))


def ratio(cross: float, self_a: float, self_b: float) -> float:
    """``cross / sqrt(self_a * self_b)``; ``nan`` when the denominator is not positive."""
    denominator = self_a * self_b
    return float(cross / np.sqrt(denominator)) if denominator > 0 else float("nan")


class KernelSpace:
    """One representation's terms for ``HSIC(K, ·)`` (biased or unbiased), permutable.

    Build with :meth:`build`; :meth:`hsic` pairs two spaces of the same estimator,
    :meth:`permuted` gives the space of ``X[perm]`` without a new product.
    """

    def __init__(
        self,
        *,
        unbiased: bool,
        features: np.ndarray | None,
        gram: np.ndarray | None,
        diag: np.ndarray | None,
        row_sums: np.ndarray | None,
        total: float,
        trace: float,
    ):
        self.unbiased = unbiased
        self.n = int((features if features is not None else gram).shape[0])
        self.features = features  # centred rows (biased) or rows (unbiased); linear only
        self.gram = gram  # centred K (biased) or zero-diagonal K (unbiased)
        self.diag = diag
        self.row_sums = row_sums
        self.total = total
        self.trace = trace  # tr(HKH): gives the biased null mean in closed form
        self.self_hsic = float("nan")

    @classmethod
    def build(
        cls,
        x: np.ndarray,
        *,
        kernel: str = "linear",
        rbf_sigma: float = 1.0,
        unbiased: bool = False,
        gram: bool = False,
    ) -> KernelSpace:
        """Terms of normalised rows ``x``; ``gram=True`` holds the N x N matrix."""
        n = x.shape[0]
        if kernel == "rbf" or gram:
            if n > MAX_GRAM_SAMPLES:
                what = "the rbf kernel" if kernel == "rbf" else "a Gram-matrix null"
                raise ValueError(
                    f"{what} holds N x N matrices; N={n} is above {MAX_GRAM_SAMPLES}. Use "
                    f"kernel='linear' or a neighbour metric such as mutual_knn"
                )
            k = rbf_gram(x, rbf_sigma) if kernel == "rbf" else x @ x.T
            return cls._from_gram(k, unbiased)
        if unbiased:
            diag = np.einsum("ij,ij->i", x, x)
            row_sums = x @ x.sum(axis=0) - diag
            space = cls(
                unbiased=True,
                features=x,
                gram=None,
                diag=diag,
                row_sums=row_sums,
                total=float(row_sums.sum()),
                trace=float("nan"),
            )
        else:
            centred = x - x.mean(axis=0)
            space = cls(
                unbiased=False,
                features=centred,
                gram=None,
                diag=None,
                row_sums=None,
                total=0.0,
                trace=float(np.sum(centred * centred)),
            )
        space.self_hsic = space.hsic(space)
        return space

    @classmethod
    def _from_gram(cls, k: np.ndarray, unbiased: bool) -> KernelSpace:
        if unbiased:
            np.fill_diagonal(k, 0.0)
            row_sums = k.sum(axis=1)
            space = cls(
                unbiased=True,
                features=None,
                gram=k,
                diag=None,
                row_sums=row_sums,
                total=float(row_sums.sum()),
                trace=float("nan"),
            )
        else:
            k = k - k.mean(axis=0, keepdims=True)
            k -= k.mean(axis=1, keepdims=True)
            space = cls(
                unbiased=False,
                features=None,
                gram=k,
                diag=None,
                row_sums=None,
                total=0.0,
                trace=float(np.trace(k)),
            )
        space.self_hsic = space.hsic(space)
        return space

    def with_gram(self) -> KernelSpace:
        """The same space holding its N x N matrix (for fast permutation nulls)."""
        if self.gram is not None:
            return self
        x = self.features
        space = KernelSpace._from_gram(x @ x.T, self.unbiased)
        space.self_hsic = self.self_hsic  # identical up to rounding; keep one value
        return space

    def _trace_term(self, other: KernelSpace) -> float:
        both_features = self.features is not None and other.features is not None
        if both_features and (self.gram is None or other.gram is None):
            cross = cross_frobenius_sq(self.features, other.features)
            return cross - float(self.diag @ other.diag) if self.unbiased else cross
        return float(np.sum(self.with_gram().gram * other.with_gram().gram))

    def hsic(self, other: KernelSpace) -> float:
        """``HSIC(K, L)`` of this space's kernel K and ``other``'s L (same estimator)."""
        trace = self._trace_term(other)
        if not self.unbiased:
            return trace
        n = self.n
        return (
            trace
            + self.total * other.total / ((n - 1) * (n - 2))
            - 2.0 * float(self.row_sums @ other.row_sums) / (n - 2)
        ) / (n * (n - 3))

    def cka(self, other: KernelSpace) -> float:
        """``HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))``."""
        return ratio(self.hsic(other), self.self_hsic, other.self_hsic)

    def permuted(self, perm: np.ndarray) -> KernelSpace:
        """The space of ``X[perm]`` (rows and columns of K permuted)."""
        space = KernelSpace(
            unbiased=self.unbiased,
            features=None if self.features is None else self.features[perm],
            gram=None if self.gram is None else self.gram[np.ix_(perm, perm)],
            diag=None if self.diag is None else self.diag[perm],
            row_sums=None if self.row_sums is None else self.row_sums[perm],
            total=self.total,
            trace=self.trace,
        )
        space.self_hsic = self.self_hsic
        return space
