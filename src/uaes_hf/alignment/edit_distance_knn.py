"""Edit-distance kNN: how few edits turn A's ordered neighbour list into B's.

Per sample i: ``1 - lev(kNN_A(i), kNN_B(i)) / k``, with ``lev`` the Levenshtein distance
(unit-cost insertions, deletions and substitutions) between the two ordered lists of k
neighbours (platonic-rep's ``edit_distance_knn``); the score is the mean over samples, in
``[0, 1]``. Like LCS kNN it is sensitive to the order of the neighbours.

Chance level: no closed form (an expected edit distance between a list and a random
ordered k-subset). Under the permutation null almost every position needs a substitution,
so it is close to the shared-and-aligned fraction, about ``k / (N - 1)`` or less;
:func:`uaes_hf.alignment.compare` reports the permutation null's mean.

Cost: ``O(N k^2)`` per pair after the neighbour searches.

Example:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(100, 8))
    >>> edit_distance_knn(x, 3 * x, k=5)
    1.0
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from uaes_hf.alignment.base import NeighborMetric, list_blocks


def levenshtein(rows_a: np.ndarray, rows_b: np.ndarray) -> np.ndarray:
    """Levenshtein distance of each row pair of two ``N x k`` integer arrays.

    Example:
        >>> levenshtein(np.array([[1, 2, 3]]), np.array([[2, 3, 4]])).tolist()
        [2]
    """
    n, k = rows_a.shape
    width = rows_b.shape[1]
    out = np.empty(n, dtype=np.int64)
    blocks = list_blocks(n, k)
    for start in blocks:
        a = rows_a[start : start + blocks.step]
        b = rows_b[start : start + blocks.step]
        differ = (a[:, :, None] != b[:, None, :]).astype(np.int64)
        previous = np.broadcast_to(np.arange(width + 1), (a.shape[0], width + 1)).copy()
        for i in range(k):
            current = np.empty_like(previous)
            current[:, 0] = i + 1
            for j in range(width):
                current[:, j + 1] = np.minimum(
                    np.minimum(previous[:, j + 1], current[:, j]) + 1,
                    previous[:, j] + differ[:, i, j],
                )
            previous = current
        out[start : start + a.shape[0]] = previous[:, -1]
    return out


class EditDistanceKNN(NeighborMetric):
    """Edit-distance kNN as a :class:`~uaes_hf.alignment.base.Metric`."""

    name: ClassVar[str] = "edit_distance_knn"

    def per_sample_states(self, a: Any, b: Any) -> np.ndarray:
        return 1.0 - levenshtein(a.indices, b.indices) / a.k

    def score_states(self, a: Any, b: Any) -> float:
        # An integer total divided once: the score does not depend on the order of rows.
        return 1.0 - int(levenshtein(a.indices, b.indices).sum()) / (a.n_samples * a.k)


def edit_distance_knn(
    features_a: Any,
    features_b: Any,
    k: int = 10,
    *,
    device: Any = None,
    dtype: Any = "float32",
    chunk_size: int | None = None,
) -> float:
    """``1 -`` mean Levenshtein distance of the ordered neighbour lists ``/ k``, in [0, 1].

    Args:
        features_a, features_b: ``N x D`` matrices or NeighborIndex objects.
        k: neighbours per row (``1 <= k < N``).
        device, dtype, chunk_size: neighbour search settings.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(1)
        >>> a, b = rng.normal(size=(300, 8)), rng.normal(size=(300, 8))
        >>> edit_distance_knn(a, b, k=10) < 0.1
        True
    """
    search = {"device": device, "dtype": dtype, "chunk_size": chunk_size}
    return EditDistanceKNN(k).score(features_a, features_b, **search)
