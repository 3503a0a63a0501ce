"""Cycle kNN: does a sample come back to itself through B's then A's neighbours?

Per sample i: 1 if i is among A's k neighbours of at least one of B's k neighbours of i,
else 0; the score is the mean over samples (platonic-rep's ``cycle_knn(A, B)``). Not
symmetric in A and B, and below 1 even for identical spaces (kNN relations are not
symmetric: j may be among i's neighbours while i is not among j's). Cosine neighbours of L2-normalised rows, self excluded, ties broken
by the lower row index (:class:`~uaes_hf.alignment.NeighborIndex`).

Chance level (exact under the permutation null of B's rows): B's neighbours of i are then
a uniform k-subset of the other rows, so sample i scores 1 with probability
``1 - C(N-1-d_i, k) / C(N-1, k)``, where ``d_i`` is the number of rows that have i among
their A-neighbours (its in-degree in A's kNN graph; ``d_i = k`` on average). The chance
level is the mean of that over i, close to ``1 - (1 - k/(N-1))^k`` ≈ ``k^2 / N``.

Example:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(100, 8))
    >>> cycle_knn(x, x, k=5)
    0.99
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from uaes_hf.alignment.base import NeighborMetric, list_blocks


class CycleKNN(NeighborMetric):
    """Cycle kNN as a :class:`~uaes_hf.alignment.base.Metric`."""

    name: ClassVar[str] = "cycle_knn"

    def per_sample_states(self, a: Any, b: Any) -> np.ndarray:
        n, k = a.indices.shape
        out = np.empty(n)
        blocks = list_blocks(n, k)
        for start in blocks:
            rows = np.arange(start, min(n, start + blocks.step))
            back = a.indices[b.indices[rows]]  # rows x k x k: A's neighbours of B's neighbours
            out[rows] = (back == rows[:, None, None]).any(axis=(1, 2))
        return out

    def score_states(self, a: Any, b: Any) -> float:
        # An integer count divided once: the score does not depend on the order of rows.
        return int(self.per_sample_states(a, b).sum()) / a.n_samples

    def chance_level(self, a: Any, b: Any) -> float:
        n, k = a.indices.shape
        in_degree = np.bincount(a.indices.ravel(), minlength=n).astype(np.float64)
        steps = np.arange(k, dtype=np.float64)
        # P(none of B's k neighbours of i has i as an A-neighbour), a hypergeometric zero.
        factors = np.clip((n - 1 - in_degree[:, None] - steps) / (n - 1 - steps), 0.0, None)
        return float(np.mean(1.0 - np.prod(factors, axis=1)))


def cycle_knn(
    features_a: Any,
    features_b: Any,
    k: int = 10,
    *,
    device: Any = None,
    dtype: Any = "float32",
    chunk_size: int | None = None,
) -> float:
    """Cycle kNN in [0, 1] (see the module docstring).

    Args:
        features_a, features_b: ``N x D`` matrices (numpy, list or torch) or
            :class:`~uaes_hf.alignment.NeighborIndex` objects built with at least ``k``.
        k: neighbours per row (``1 <= k < N``).
        device, dtype, chunk_size: neighbour search settings.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(1)
        >>> a, b = rng.normal(size=(300, 8)), rng.normal(size=(300, 8))
        >>> metric = CycleKNN(k=10)
        >>> state_a, state_b = metric.pair(a, b)
        >>> abs(cycle_knn(a, b, k=10) - metric.chance_level(state_a, state_b)) < 0.1
        True
    """
    search = {"device": device, "dtype": dtype, "chunk_size": chunk_size}
    return CycleKNN(k).score(features_a, features_b, **search)
