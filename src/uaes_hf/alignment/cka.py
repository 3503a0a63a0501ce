"""Kernel alignment metrics on the same input convention as mutual kNN.

Rows are L2-normalised first (as the Platonic Representation Hypothesis pipeline does), then:

- :func:`linear_cka`: HSIC_b(K, L) / sqrt(HSIC_b(K, K) HSIC_b(L, L)) with linear kernels
  K = A A^T, L = B B^T and the biased HSIC tr(K H L H).
- :func:`unbiased_cka`: the same with the unbiased HSIC estimator (Song et al., 2012).
- :func:`cknna`: CKA restricted to mutual k-nearest-neighbour pairs (Huh et al., 2024,
  unbiased variant): HSIC_u(M∘K, M∘L) with M the mask of pairs (i, j) where j is among the
  k neighbours of i in both spaces, normalised by the same quantity of each space with
  itself. ``k=None`` means all pairs, which is exactly :func:`unbiased_cka` (the reference
  code crashes there).

None of them builds an N x N matrix unless that is the cheaper route: the CKAs use
``||X^T Y||_F^2 = sum(K∘L)`` in whichever of feature space or sample space is smaller, and
CKNNA works on the N*k neighbour pairs only. Arithmetic is float64 on the CPU (the neighbour
search for CKNNA follows ``device``/``dtype``). Unlike the reference, no ``1e-6`` is added to
the denominators. A degenerate denominator (<= 0) gives ``nan``.

Example:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(50, 8))
    >>> round(linear_cka(x, x), 6), round(unbiased_cka(x, 2 * x), 6)
    (1.0, 1.0)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from uaes_hf.alignment.mutual_knn import neighbor_pair, sample_count
from uaes_hf.alignment.neighbors import NeighborIndex
from uaes_hf.alignment.validation import (
    _is_torch_tensor,
    check_matrix,
    check_same_samples,
)

# Largest N for which permutation nulls of CKA hold two N x N float64 Gram matrices.
MAX_GRAM_SAMPLES = 8192
_BLOCK_COLUMNS = 512


def _normalized(x: Any, name: str) -> np.ndarray:
    x = check_matrix(x, name)
    if _is_torch_tensor(x):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)  # zero rows stay zero, as F.normalize does


def _pair(a: Any, b: Any, minimum_n: int) -> tuple[np.ndarray, np.ndarray]:
    x = _normalized(a, "A")
    y = _normalized(b, "B")
    n = check_same_samples(x.shape[0], y.shape[0])
    if n < minimum_n:
        raise ValueError(f"this metric needs at least N={minimum_n} samples, got N={n}")
    return x, y


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


def _ratio(cross: float, self_a: float, self_b: float) -> float:
    denominator = self_a * self_b
    return float(cross / np.sqrt(denominator)) if denominator > 0 else float("nan")


def linear_cka(features_a: Any, features_b: Any) -> float:
    """Linear CKA of two ``N x D`` representations (rows L2-normalised first).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(100, 10))
        >>> q, _ = np.linalg.qr(rng.normal(size=(10, 10)))
        >>> round(linear_cka(x, x @ q), 6)
        1.0
    """
    x, y = _pair(features_a, features_b, minimum_n=2)
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    return _ratio(cross_frobenius_sq(x, y), cross_frobenius_sq(x, x), cross_frobenius_sq(y, y))


class _UnbiasedTerms:
    """Per-space pieces of the unbiased HSIC with K = x x^T and a zeroed diagonal."""

    def __init__(self, x: np.ndarray):
        self.x = x
        self.n = x.shape[0]
        self.diag = np.einsum("ij,ij->i", x, x)
        self.row_sums = x @ x.sum(axis=0) - self.diag  # K~ 1
        self.total = float(self.row_sums.sum())  # 1^T K~ 1

    def hsic(self, other: Any, cross: float) -> float:
        """HSIC_u(K, L) given ``cross = sum(K∘L)`` of the full (diagonal-kept) kernels."""
        return self.hsic_from_trace(other, cross - float(self.diag @ other.diag))

    def hsic_from_trace(self, other: Any, trace: float) -> float:
        """HSIC_u(K, L) given ``trace = sum(K~∘L~)`` of the zero-diagonal kernels."""
        n = self.n
        return (
            trace
            + self.total * other.total / ((n - 1) * (n - 2))
            - 2.0 * float(self.row_sums @ other.row_sums) / (n - 2)
        ) / (n * (n - 3))


def unbiased_cka(features_a: Any, features_b: Any) -> float:
    """CKA with the unbiased HSIC estimator (needs N >= 4; rows L2-normalised first).

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(60, 6))
        >>> round(unbiased_cka(x, 3 * x), 6)
        1.0
    """
    x, y = _pair(features_a, features_b, minimum_n=4)
    tx, ty = _UnbiasedTerms(x), _UnbiasedTerms(y)
    return _ratio(
        tx.hsic(ty, cross_frobenius_sq(x, y)),
        tx.hsic(tx, cross_frobenius_sq(x, x)),
        ty.hsic(ty, cross_frobenius_sq(y, y)),
    )


def _edge_hsic(n: int, rows: np.ndarray, cols: np.ndarray, p: np.ndarray, q: np.ndarray) -> float:
    """Unbiased HSIC of two N x N matrices P, Q that are zero off the edges (rows, cols).

    Mirrors the reference ``hsic_unbiased`` (which uses sum(P * Q^T)) without densifying:
    edges are distinct and off-diagonal.
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


def cknna_from_indices(index_a: NeighborIndex, index_b: NeighborIndex) -> float:
    """CKNNA from two neighbour indices (their similarities carry the kernel values)."""
    return _ratio(
        _cross_edge_hsic(index_a, index_b), _self_edge_hsic(index_a), _self_edge_hsic(index_b)
    )


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
        k: neighbours (``2 <= k < N``); ``None`` uses all pairs (= :func:`unbiased_cka`).
        device, dtype, chunk_size: neighbour search settings.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(80, 6))
        >>> round(cknna(x, x, k=5), 6), round(cknna(x, x, k=None), 6)
        (1.0, 1.0)
    """
    if k is None:
        return unbiased_cka(features_a, features_b)
    n = check_same_samples(sample_count(features_a), sample_count(features_b))
    if isinstance(k, int) and not isinstance(k, bool) and k < 2:
        raise ValueError(f"CKNNA needs k >= 2, got k={k}")
    if n == 0:
        raise ValueError("the features have zero rows (samples): there is nothing to compare")
    if n < 4:
        raise ValueError(f"CKNNA needs at least N=4 samples, got N={n}")
    index_a, index_b = neighbor_pair(
        features_a, features_b, k, device=device, dtype=dtype, chunk_size=chunk_size
    )
    return cknna_from_indices(index_a, index_b)


def cka_null_test(
    features_a: Any,
    features_b: Any,
    *,
    metric: str,
    k: int | None = 10,
    n_permutations: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    progress: bool = False,
    **search: Any,
) -> Any:
    """Permutation null for ``cka``, ``unbiased_cka`` or ``cknna`` (see permutation_test).

    CKNNA permutes B's neighbour index (no new search); the CKAs permute a Gram matrix
    (N x N float64, so N <= MAX_GRAM_SAMPLES).
    """
    from uaes_hf.alignment.calibration import _progress, calibrate

    rng = np.random.default_rng(seed)
    if metric == "cknna" and k is not None:
        index_a, index_b = neighbor_pair(features_a, features_b, k, **search)
        observed = cknna(index_a, index_b, k)  # validates k >= 2 and N >= 4; no new search
        self_a, self_b = _self_edge_hsic(index_a), _self_edge_hsic(index_b)
        n = index_a.n_samples

        def null_score(perm: np.ndarray) -> float:
            inverse = np.empty_like(perm)
            inverse[perm] = np.arange(n)
            permuted = NeighborIndex(inverse[index_b.indices[perm]], index_b.similarities[perm])
            return _ratio(_cross_edge_hsic(index_a, permuted), self_a, self_b)

    else:
        unbiased = metric in ("unbiased_cka", "cknna")
        x, y = _pair(features_a, features_b, minimum_n=4 if unbiased else 2)
        n = x.shape[0]
        if n > MAX_GRAM_SAMPLES:
            raise ValueError(
                f"the {metric} permutation null holds N x N Gram matrices; N={n} is above "
                f"{MAX_GRAM_SAMPLES}. Use metric='mutual_knn', whose null needs no Gram matrix"
            )
        if unbiased:
            tx, ty = _UnbiasedTerms(x), _UnbiasedTerms(y)
            gram_x, gram_y = x @ x.T, y @ y.T
            np.fill_diagonal(gram_x, 0.0)
            np.fill_diagonal(gram_y, 0.0)
            self_x = tx.hsic_from_trace(tx, float(np.sum(gram_x * gram_x)))
            self_y = ty.hsic_from_trace(ty, float(np.sum(gram_y * gram_y)))

            def null_score(perm: np.ndarray) -> float:
                trace = float(np.sum(gram_x * gram_y[np.ix_(perm, perm)]))
                return _ratio(tx.hsic_from_trace(_PermutedTerms(ty, perm), trace), self_x, self_y)

            observed = _ratio(
                tx.hsic_from_trace(ty, float(np.sum(gram_x * gram_y))), self_x, self_y
            )
        else:
            x = x - x.mean(axis=0)
            y = y - y.mean(axis=0)
            gram_x, gram_y = x @ x.T, y @ y.T
            self_x, self_y = float(np.sum(gram_x * gram_x)), float(np.sum(gram_y * gram_y))

            def null_score(perm: np.ndarray) -> float:
                cross = float(np.sum(gram_x * gram_y[np.ix_(perm, perm)]))
                return _ratio(cross, self_x, self_y)

            observed = _ratio(float(np.sum(gram_x * gram_y)), self_x, self_y)
    null = np.empty(n_permutations)
    perms = (rng.permutation(n) for _ in range(n_permutations))
    for i, perm in enumerate(_progress(perms, n_permutations, progress, "permutations")):
        null[i] = null_score(perm)
    return calibrate(observed, null, alpha=alpha)


class _PermutedTerms:
    """_UnbiasedTerms of B[perm], by relabelling (no recomputation)."""

    def __init__(self, terms: _UnbiasedTerms, perm: np.ndarray):
        self.n = terms.n
        self.diag = terms.diag[perm]
        self.row_sums = terms.row_sums[perm]
        self.total = terms.total
