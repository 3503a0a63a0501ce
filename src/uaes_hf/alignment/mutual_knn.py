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

from typing import Any

import numpy as np

from uaes_hf.alignment.neighbors import NeighborIndex, as_neighbor_index
from uaes_hf.alignment.validation import check_k, check_same_samples, feature_shape

# Bound on the N x k x k boolean block used to intersect neighbour lists.
_OVERLAP_BLOCK = 1 << 24


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


def sample_count(x: Any) -> int:
    """N of a feature matrix or a NeighborIndex."""
    return x.n_samples if isinstance(x, NeighborIndex) else int(feature_shape(x, "features")[0])


def neighbor_pair(
    features_a: Any, features_b: Any, k: int, **search: Any
) -> tuple[NeighborIndex, NeighborIndex]:
    """Validated neighbour indices of both spaces at ``k`` (reusing NeighborIndex inputs)."""
    n = check_same_samples(sample_count(features_a), sample_count(features_b))
    k = check_k(k, n)
    index_a = as_neighbor_index(features_a, k, "A", **search)
    index_b = as_neighbor_index(features_b, k, "B", **search)
    return index_a, index_b


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
