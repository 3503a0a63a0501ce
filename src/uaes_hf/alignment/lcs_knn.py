"""LCS kNN: the longest common subsequence of the two ordered neighbour lists.

Per sample i: the length of the longest common subsequence of A's and B's k neighbours of
i, each list ordered from most to least similar (platonic-rep's ``lcs_knn``). The score is
the mean over samples. As in the reference it is a *length* in ``[0, k]``, not a fraction;
``normalize=True`` divides it by k (a score in [0, 1], comparable across k). Unlike the
mutual kNN it rewards agreeing on the *order* of the neighbours, not only the set.

Chance level: no closed form. Under the permutation null the shared neighbours are
hypergeometric (mean ``k^2 / (N - 1)``) and their order in B is random, so the score is
the expected longest increasing subsequence of a random permutation of that many items; a
little below ``k^2 / (N - 1)``. :func:`uaes_hf.alignment.compare` reports the permutation
null's mean.

Cost: ``O(N k^2)`` per pair after the neighbour searches (a dynamic program over all rows
at once).

Example:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(100, 8))
    >>> lcs_knn(x, x, k=5), lcs_knn(x, x, k=5, normalize=True)
    (5.0, 1.0)
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from uaes_hf.alignment.base import NeighborMetric, list_blocks


def lcs_lengths(rows_a: np.ndarray, rows_b: np.ndarray) -> np.ndarray:
    """Longest-common-subsequence length of each row pair of two ``N x k`` integer arrays.

    Example:
        >>> lcs_lengths(np.array([[1, 2, 3, 4]]), np.array([[2, 9, 4, 1]])).tolist()
        [2]
    """
    n, k = rows_a.shape
    out = np.empty(n, dtype=np.int64)
    blocks = list_blocks(n, k)
    for start in blocks:
        a = rows_a[start : start + blocks.step]
        b = rows_b[start : start + blocks.step]
        equal = a[:, :, None] == b[:, None, :]
        previous = np.zeros((a.shape[0], b.shape[1] + 1), dtype=np.int64)
        for i in range(k):
            current = np.zeros_like(previous)
            for j in range(b.shape[1]):
                current[:, j + 1] = np.where(
                    equal[:, i, j],
                    previous[:, j] + 1,
                    np.maximum(previous[:, j + 1], current[:, j]),
                )
            previous = current
        out[start : start + a.shape[0]] = previous[:, -1]
    return out


class LcsKNN(NeighborMetric):
    """LCS kNN as a :class:`~uaes_hf.alignment.base.Metric` (``normalize``: divide by k)."""

    name: ClassVar[str] = "lcs_knn"

    def __init__(self, k: int = 10, normalize: bool = False):
        super().__init__(k)
        if not isinstance(normalize, bool):
            raise ValueError(f"normalize must be True or False, got {normalize!r}")
        self.normalize = normalize

    def options(self) -> dict[str, Any]:
        return {"k": self.k, "normalize": self.normalize}

    @property
    def max_score(self) -> float:
        return 1.0 if self.normalize else float(self.k)

    def per_sample_states(self, a: Any, b: Any) -> np.ndarray:
        lengths = lcs_lengths(a.indices, b.indices).astype(np.float64)
        return lengths / a.k if self.normalize else lengths

    def score_states(self, a: Any, b: Any) -> float:
        # An integer total divided once: the score does not depend on the order of rows.
        total = int(lcs_lengths(a.indices, b.indices).sum())
        return total / (a.n_samples * (a.k if self.normalize else 1))


def lcs_knn(
    features_a: Any,
    features_b: Any,
    k: int = 10,
    *,
    normalize: bool = False,
    device: Any = None,
    dtype: Any = "float32",
    chunk_size: int | None = None,
) -> float:
    """Mean LCS length of the ordered neighbour lists, in ``[0, k]`` (``[0, 1]`` normalised).

    Args:
        features_a, features_b: ``N x D`` matrices or NeighborIndex objects.
        k: neighbours per row (``1 <= k < N``).
        normalize: divide by k (platonic-rep returns the length itself).
        device, dtype, chunk_size: neighbour search settings.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(1)
        >>> a = rng.normal(size=(200, 8))
        >>> 0 < lcs_knn(a, a + 0.3 * rng.normal(size=a.shape), k=10) < 10
        True
    """
    search = {"device": device, "dtype": dtype, "chunk_size": chunk_size}
    return LcsKNN(k, normalize=normalize).score(features_a, features_b, **search)
