"""CKNNA: CKA restricted to mutual k-nearest-neighbour pairs (Huh et al., 2024).

``HSIC_u(M∘K, M∘L) / sqrt(HSIC_u(M_K∘K, M_K∘K) HSIC_u(M_L∘L, M_L∘L))`` with linear kernels
on L2-normalised rows, ``M`` the mask of pairs (i, j) where j is among the k neighbours of
i in both spaces, and ``M_K``, ``M_L`` each space's own neighbour mask (platonic-rep's
``cknna``, unbiased variant). It works on the N*k neighbour pairs only, never an N x N
matrix; the kernel values are the cosines stored in the
:class:`~uaes_hf.alignment.NeighborIndex`. ``k=None`` in :func:`cknna` means all pairs, which
is exactly :func:`~uaes_hf.alignment.unbiased_cka` (the reference code crashes there).
Unlike the reference, no ``1e-6`` is added to the denominator. Range: about [-1, 1]; it
needs k >= 2 and N >= 4.

Chance level: no closed form (the mask changes with the permutation);
:func:`uaes_hf.alignment.compare` reports the permutation null's mean, near 0.

Cost: O(N k^2) per pair after the neighbour searches.

Example:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(80, 6))
    >>> round(cknna(x, x, k=5), 6), round(cknna(x, x, k=None), 6)
    (1.0, 1.0)
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from uaes_hf.alignment.base import NeighborMetric, relabel
from uaes_hf.alignment.kernels import ratio
from uaes_hf.alignment.neighbors import NeighborIndex


def _edge_hsic(n: int, rows: np.ndarray, cols: np.ndarray, p: np.ndarray, q: np.ndarray) -> float:
    """Unbiased HSIC of two N x N matrices P, Q that are zero off the edges (rows, cols).

    Mirrors the unbiased HSIC formula (which uses sum(P * Q^T)) without densifying: edges
    are distinct and off-diagonal.
    """
    keys = rows * n + cols
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    reverse = cols * n + rows
    pos = np.minimum(np.searchsorted(sorted_keys, reverse), max(sorted_keys.size - 1, 0))
    found = sorted_keys[pos] == reverse if sorted_keys.size else np.zeros(0, dtype=bool)
    q_transposed = np.where(found, q[order[pos]], 0.0)  # Q[j, i] for each edge (i, j)
    trace = float(p @ q_transposed)
    col_sums_p = np.bincount(cols, weights=p, minlength=n)
    row_sums_q = np.bincount(rows, weights=q, minlength=n)
    return (
        trace
        + float(p.sum()) * float(q.sum()) / ((n - 1) * (n - 2))
        - 2.0 * float(col_sums_p @ row_sums_q) / (n - 2)
    ) / (n * (n - 3))


def _self_edge_hsic(index: NeighborIndex) -> float:
    n, k = index.indices.shape
    rows = np.repeat(np.arange(n), k)
    sims = index.similarities.astype(np.float64).ravel()
    return _edge_hsic(n, rows, index.indices.ravel(), sims, sims)


def _cross_edge_hsic(index_a: NeighborIndex, index_b: NeighborIndex) -> float:
    n, k = index_a.indices.shape
    match = index_a.indices[:, :, None] == index_b.indices[:, None, :]
    in_b = match.any(axis=2)  # is A's p-th neighbour of i also a neighbour in B?
    pos_b = match.argmax(axis=2)
    rows = np.repeat(np.arange(n), k).reshape(n, k)[in_b]
    p = index_a.similarities.astype(np.float64)[in_b]
    q = np.take_along_axis(index_b.similarities.astype(np.float64), pos_b, axis=1)[in_b]
    return _edge_hsic(n, rows, index_a.indices[in_b], p, q)


@dataclass(frozen=True)
class CknnaState:
    """A neighbour index with its own-mask HSIC (invariant under row permutations)."""

    index: NeighborIndex
    self_hsic: float


def cknna_from_indices(index_a: NeighborIndex, index_b: NeighborIndex) -> float:
    """CKNNA from two neighbour indices (their similarities carry the kernel values)."""
    return ratio(
        _cross_edge_hsic(index_a, index_b), _self_edge_hsic(index_a), _self_edge_hsic(index_b)
    )


class CKNNA(NeighborMetric):
    """CKNNA as a :class:`~uaes_hf.alignment.base.Metric` (no per-sample score)."""

    name: ClassVar[str] = "cknna"
    has_per_sample: ClassVar[bool] = False
    min_k: ClassVar[int] = 2
    min_samples: ClassVar[int] = 4

    def __init__(self, k: int = 10):
        if isinstance(k, numbers.Integral) and not isinstance(k, bool) and k < 2:
            raise ValueError(f"CKNNA needs k >= 2, got k={int(k)}")
        super().__init__(k)

    def check_samples(self, n: int) -> int:
        if 0 < n < self.min_samples:
            raise ValueError(f"CKNNA needs at least N={self.min_samples} samples, got N={n}")
        return super().check_samples(n)

    def prepare(self, features: Any, *, name: str = "features", **search: Any) -> CknnaState:
        index = super().prepare(features, name=name, **search)
        return CknnaState(index, _self_edge_hsic(index))

    def permute(self, state: CknnaState, perm: np.ndarray) -> CknnaState:
        return CknnaState(relabel(state.index, perm), state.self_hsic)

    def score_states(self, a: CknnaState, b: CknnaState) -> float:
        return ratio(_cross_edge_hsic(a.index, b.index), a.self_hsic, b.self_hsic)


def cknna(
    features_a: Any,
    features_b: Any,
    k: int | None = 10,
    *,
    device: Any = None,
    dtype: Any = "float32",
    chunk_size: int | None = None,
) -> float:
    """CKNNA: CKA over mutual k-nearest-neighbour pairs (unbiased HSIC).

    Args:
        features_a, features_b: ``N x D`` matrices, or NeighborIndex objects.
        k: neighbours (``2 <= k < N``); ``None`` uses all pairs (= unbiased CKA).
        device, dtype, chunk_size: neighbour search settings.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(1)
        >>> a = rng.normal(size=(200, 8))
        >>> cknna(a, rng.normal(size=(200, 8)), k=10) < 0.2 < cknna(a, 2 * a + 0.1, k=10)
        True
    """
    if k is None:
        from uaes_hf.alignment.unbiased_cka import unbiased_cka

        return unbiased_cka(features_a, features_b)
    search = {"device": device, "dtype": dtype, "chunk_size": chunk_size}
    return CKNNA(k).score(features_a, features_b, **search)
