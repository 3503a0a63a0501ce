"""Mutual k-nearest-neighbour alignment between two representations of the same N samples.

score = mean over rows i of |kNN_A(i) ∩ kNN_B(i)| / k, with cosine neighbours that exclude
the row itself (the Platonic Representation Hypothesis definition). Unrelated spaces score
about k / (N - 1) (see :func:`uaes_hf.alignment.chance_level`); identical spaces score 1.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=(200, 32))
    >>> mutual_knn(a, a @ rng.normal(size=(32, 64)), k=10) > 0.3
    True
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from uaes_hf.alignment.base import NeighborMetric, sample_count
from uaes_hf.alignment.neighbors import NeighborIndex, as_neighbor_index
from uaes_hf.alignment.validation import check_k, check_same_samples

# Bound on the N x k x k boolean block used to intersect neighbour lists.
_OVERLAP_BLOCK = 1 << 24
# Largest dense (N*N x L_A) uint8 membership table used to score grids by lookup.
_DENSE_TABLE_BYTES = 1 << 26


def overlap_counts(indices_a: np.ndarray, indices_b: np.ndarray) -> np.ndarray:
    """Per-row intersection sizes |row_a(i) ∩ row_b(i)| of two ``N x k`` index arrays.

    Rows must hold distinct entries (neighbour lists do), so counting equal pairs counts
    the intersection.

    Example:
        >>> import numpy as np
        >>> overlap_counts(np.array([[1, 2], [0, 2]]), np.array([[2, 3], [3, 1]])).tolist()
        [1, 0]
    """
    n, k = indices_a.shape
    step = max(1, _OVERLAP_BLOCK // max(1, k * indices_b.shape[1]))
    counts = np.empty(n, dtype=np.int64)
    for start in range(0, n, step):
        a = indices_a[start : start + step, :, None]
        b = indices_b[start : start + step, None, :]
        counts[start : start + step] = (a == b).sum(axis=(1, 2))
    return counts


def neighbor_pair(
    features_a: Any, features_b: Any, k: int, **search: Any
) -> tuple[NeighborIndex, NeighborIndex]:
    """Validated neighbour indices of both spaces at ``k`` (reusing NeighborIndex inputs)."""
    n = check_same_samples(sample_count(features_a), sample_count(features_b))
    k = check_k(k, n)
    return MutualKNN(k).pair(features_a, features_b, **search)


class MutualKNN(NeighborMetric):
    """Mutual kNN as a :class:`~uaes_hf.alignment.base.Metric` (see the module docstring).

    Chance level ``k / (N - 1)``: under the permutation null B's neighbour set of a row is
    a uniform k-subset of the other rows, sharing ``k * k / (N - 1)`` members with A's.
    """

    name: ClassVar[str] = "mutual_knn"

    def per_sample_states(self, a: NeighborIndex, b: NeighborIndex) -> np.ndarray:
        return overlap_counts(a.indices, b.indices) / a.k

    def score_states(self, a: NeighborIndex, b: NeighborIndex) -> float:
        # An integer total, divided once: the score does not depend on the order of rows.
        return int(overlap_counts(a.indices, b.indices).sum()) / (a.n_samples * a.k)

    def chance_level(self, a: NeighborIndex, b: NeighborIndex) -> float:
        return a.k / (a.n_samples - 1)

    def grid_scorer(self, states_a: list[Any], states_b: list[Any]) -> GridCounter:
        return GridCounter([x.indices for x in states_a], [x.indices for x in states_b])


class GridCounter:
    """Counts ``sum_i |kNN_Aa(i) ∩ kNN_Bb(i)|`` for all layer pairs (a, b).

    With ``perm`` the counts are those of B's rows permuted by ``perm`` (``B[perm]``), found
    by relabelling B's index arrays: kNN_{B[perm]}(i) = perm^-1(kNN_B(perm[i])). No new
    neighbour search is needed.
    """

    def __init__(self, indices_a: list[np.ndarray], indices_b: list[np.ndarray]):
        self.indices_a = indices_a
        self.indices_b = indices_b
        self.n, self.k = indices_a[0].shape
        n, k = self.n, self.k
        self._row_keys = np.repeat(np.arange(n, dtype=np.int64) * n, k)
        self._pairwise = len(indices_a) * len(indices_b) <= 4
        if self._pairwise:
            return
        keys = [self._row_keys + idx.ravel() for idx in indices_a]
        if n * n * len(indices_a) <= _DENSE_TABLE_BYTES:
            self._union = None
            self._member = np.zeros((n * n, len(indices_a)), dtype=np.uint8)
            for a, key in enumerate(keys):
                self._member[key, a] = 1
        else:
            union, inverse = np.unique(np.concatenate(keys), return_inverse=True)
            self._union = union
            self._member = np.zeros((union.size, len(indices_a)), dtype=np.uint8)
            for a in range(len(indices_a)):
                self._member[inverse[a * n * k : (a + 1) * n * k], a] = 1

    def _b_sets(self, perm: np.ndarray | None) -> list[np.ndarray]:
        if perm is None:
            return self.indices_b
        inverse = np.empty_like(perm)
        inverse[perm] = np.arange(perm.size)
        return [inverse[idx[perm]] for idx in self.indices_b]

    def _lookup(self, b_sets: list[np.ndarray]) -> np.ndarray:
        """``L_B x N*k x L_A`` membership of B's neighbours in A's lists."""
        queries = np.concatenate([self._row_keys + idx.ravel() for idx in b_sets])
        if self._union is None:
            rows = self._member[queries]
        else:
            pos = np.minimum(np.searchsorted(self._union, queries), self._union.size - 1)
            rows = self._member[pos] * (self._union[pos] == queries)[:, None]
        return rows.reshape(len(b_sets), self.n * self.k, -1)

    def counts(self, perm: np.ndarray | None = None) -> np.ndarray:
        """``L_A x L_B`` int64 overlap totals (for ``B[perm]`` when ``perm`` is given)."""
        b_sets = self._b_sets(perm)
        if self._pairwise:
            return np.array(
                [[overlap_counts(a, b).sum() for b in b_sets] for a in self.indices_a],
                dtype=np.int64,
            )
        return self._lookup(b_sets).sum(axis=1, dtype=np.int64).T

    def scores(self, perm: np.ndarray | None = None) -> np.ndarray:
        """``L_A x L_B`` mutual kNN scores."""
        return self.counts(perm) / (self.n * self.k)

    def per_sample(self, perm: np.ndarray | None = None) -> np.ndarray:
        """``L_A x L_B x N`` per-sample mutual kNN of every layer pair."""
        b_sets = self._b_sets(perm)
        if self._pairwise:
            counts = np.array([[overlap_counts(a, b) for b in b_sets] for a in self.indices_a])
        else:
            looked = self._lookup(b_sets).reshape(len(b_sets), self.n, self.k, -1)
            counts = looked.sum(axis=2, dtype=np.int64).transpose(2, 0, 1)
        return counts / self.k


def mutual_knn_per_sample(
    features_a: Any,
    features_b: Any,
    k: int = 10,
    *,
    device: Any = None,
    dtype: Any = "float32",
    chunk_size: int | None = None,
) -> np.ndarray:
    """Per-sample mutual kNN: |kNN_A(i) ∩ kNN_B(i)| / k for every row i (an N-vector).

    Args:
        features_a, features_b: ``N x D_a`` and ``N x D_b`` matrices (numpy, list or torch),
            or :class:`NeighborIndex` objects built with at least ``k`` neighbours.
        k: neighbours per row (``1 <= k < N``).
        device, dtype, chunk_size: passed to :func:`nearest_neighbors`.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(1).normal(size=(30, 5))
        >>> mutual_knn_per_sample(x, 2 * x, k=3).tolist() == [1.0] * 30
        True
    """
    index_a, index_b = neighbor_pair(
        features_a, features_b, k, device=device, dtype=dtype, chunk_size=chunk_size
    )
    return overlap_counts(index_a.indices, index_b.indices) / index_a.k


def mutual_knn(
    features_a: Any,
    features_b: Any,
    k: int = 10,
    *,
    device: Any = None,
    dtype: Any = "float32",
    chunk_size: int | None = None,
) -> float:
    """Mutual kNN alignment score in [0, 1]; the mean of :func:`mutual_knn_per_sample`.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(2).normal(size=(100, 8))
        >>> mutual_knn(x, x, k=10)
        1.0
    """
    index_a, index_b = neighbor_pair(
        features_a, features_b, k, device=device, dtype=dtype, chunk_size=chunk_size
    )
    # An integer total, divided once: the score does not depend on the order of rows.
    total = int(overlap_counts(index_a.indices, index_b.indices).sum())
    return total / (index_a.n_samples * index_a.k)


def mutual_knn_matrix(
    feature_sets: list[Any],
    k: int = 10,
    *,
    device: Any = None,
    dtype: Any = "float32",
    chunk_size: int | None = None,
) -> np.ndarray:
    """All-pairs mutual kNN over M models (``M x M``, symmetric, ones on the diagonal).

    Each model's neighbour sets are computed once, not once per pair.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(3)
        >>> x = rng.normal(size=(60, 6))
        >>> mutual_knn_matrix([x, 3 * x, rng.normal(size=(60, 6))], k=5).shape
        (3, 3)
    """
    if len(feature_sets) == 0:
        raise ValueError("feature_sets is empty: give at least one N x D matrix")
    sizes = [sample_count(x) for x in feature_sets]
    for i, size in enumerate(sizes):
        check_same_samples(sizes[0], size, "feature_sets[0]", f"feature_sets[{i}]")
    k = check_k(k, sizes[0])
    indices = [
        as_neighbor_index(
            x, k, f"feature_sets[{i}]", device=device, dtype=dtype, chunk_size=chunk_size
        ).indices
        for i, x in enumerate(feature_sets)
    ]
    m = len(indices)
    out = np.eye(m)
    for i in range(m):
        for j in range(i + 1, m):
            out[i, j] = out[j, i] = overlap_counts(indices[i], indices[j]).mean() / k
    return out
