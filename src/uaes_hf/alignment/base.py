"""The one small API every alignment metric implements (one metric per module).

A :class:`Metric` holds its hyperparameters (``k``, a kernel, ``cca_dim``) and works in
two steps, so that every input is processed once however it is used afterwards:

1. ``prepare(features)`` -> a *state* of one representation: a :class:`NeighborIndex` for
   the neighbour metrics (one search), kernel terms for the CKAs, a basis for SVCCA;
2. ``score_states(a, b)`` (and ``per_sample_states`` where a per-sample score exists).

``permute(state_b, perm)`` gives the state of ``B[perm]`` without recomputing it (a
relabelled neighbour index, permuted kernel terms), which is what permutation nulls,
layer searches and :func:`uaes_hf.alignment.compare` reuse. ``score(a, b)`` does both
steps for one pair.

Example:
    >>> import numpy as np
    >>> from uaes_hf.alignment.mutual_knn import MutualKNN
    >>> x = np.random.default_rng(0).normal(size=(50, 8))
    >>> metric = MutualKNN(k=5)
    >>> state = metric.prepare(x)
    >>> metric.score_states(state, state), metric.score(x, 2 * x)
    (1.0, 1.0)
"""

from __future__ import annotations

import numbers
from typing import Any, ClassVar

import numpy as np

from uaes_hf.alignment.neighbors import NeighborIndex, as_neighbor_index
from uaes_hf.alignment.validation import (
    check_k,
    check_matrix,
    check_same_samples,
    feature_shape,
    is_neighbor_index,
)

# Bound on the N x k x k blocks used to compare neighbour lists row by row.
LIST_BLOCK = 1 << 24


class Metric:
    """Base class of the alignment metrics (see the module docstring)."""

    name: ClassVar[str] = ""
    uses_neighbors: ClassVar[bool] = False
    has_per_sample: ClassVar[bool] = False
    min_samples: ClassVar[int] = 2

    @property
    def max_score(self) -> float:
        """The score of identical representations (the top of the calibration)."""
        return 1.0

    @property
    def k_or_none(self) -> int | None:
        """``k`` for neighbour metrics, else ``None``."""
        return getattr(self, "k", None) if self.uses_neighbors else None

    def options(self) -> dict[str, Any]:
        """Hyperparameters (everything besides the inputs that changes the score)."""
        return {}

    def check_samples(self, n: int) -> int:
        """Check that N samples suit this metric (and its ``k``); returns N."""
        if n == 0:
            raise ValueError("the features have zero rows (samples): there is nothing to compare")
        if n < self.min_samples:
            raise ValueError(f"{self.name} needs at least N={self.min_samples} samples, got N={n}")
        return n

    def prepare(self, features: Any, *, name: str = "features", **search: Any) -> Any:
        """The state of one representation (validated; see the module docstring)."""
        raise NotImplementedError

    def score_states(self, a: Any, b: Any) -> float:
        """The score of two prepared states."""
        raise NotImplementedError

    def per_sample_states(self, a: Any, b: Any) -> np.ndarray:
        """Per-sample scores (an N-vector whose mean is the score)."""
        raise ValueError(
            f"{self.name} has no per-sample score; per-sample scores exist for "
            f"mutual_knn, cycle_knn, lcs_knn and edit_distance_knn"
        )

    def permute(self, state: Any, perm: np.ndarray) -> Any:
        """The state of the representation with rows permuted by ``perm`` (``X[perm]``)."""
        raise NotImplementedError

    def chance_level(self, a: Any, b: Any) -> float | None:
        """Expected score under the permutation null in closed form, if there is one."""
        return None

    def grid_scorer(self, states_a: list[Any], states_b: list[Any]) -> Any:
        """An object whose ``scores(perm)`` / ``per_sample(perm)`` give the layer grid.

        ``scores(perm)`` is the ``L_A x L_B`` grid for ``B[perm]`` (``None``: as given),
        ``per_sample(perm)`` the ``L_A x L_B x N`` per-sample grid. Metrics with a faster
        joint computation (mutual kNN) override this.
        """
        return PairwiseGrid(self, states_a, states_b)

    def pair(self, a: Any, b: Any, **search: Any) -> tuple[Any, Any]:
        """Validated states of two representations of the same N samples."""
        self.check_samples(check_same_samples(sample_count(a), sample_count(b)))
        return self.prepare(a, name="A", **search), self.prepare(b, name="B", **search)

    def score(self, a: Any, b: Any, **search: Any) -> float:
        """The score of two ``N x D`` representations (or states' inputs)."""
        return self.score_states(*self.pair(a, b, **search))

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.options().items())
        return f"{type(self).__name__}({args})"


class NeighborMetric(Metric):
    """A metric computed from the two ordered neighbour lists of every row."""

    uses_neighbors: ClassVar[bool] = True
    has_per_sample: ClassVar[bool] = True
    min_k: ClassVar[int] = 1

    def __init__(self, k: int = 10):
        self.k = check_k_type(k)
        if self.k < self.min_k:
            raise ValueError(f"{self.name} needs k >= {self.min_k}, got k={self.k}")

    def options(self) -> dict[str, Any]:
        return {"k": self.k}

    def check_samples(self, n: int) -> int:
        super().check_samples(n)
        check_k(self.k, n, minimum=self.min_k)
        return n

    def prepare(self, features: Any, *, name: str = "features", **search: Any) -> Any:
        if is_neighbor_index(features):
            self.check_samples(features.n_samples)
            return as_neighbor_index(features, self.k, name)
        dtype = search.get("dtype") or "float32"
        features = check_matrix(features, name, dtype=dtype)
        self.check_samples(int(features.shape[0]))
        return as_neighbor_index(features, self.k, name, **search)

    def permute(self, state: Any, perm: np.ndarray) -> Any:
        return relabel(state, perm)

    def score_states(self, a: Any, b: Any) -> float:
        return float(self.per_sample_states(a, b).mean())


class PairwiseGrid:
    """Layer grid of any metric: every pair scored from the prepared states."""

    def __init__(self, metric: Metric, states_a: list[Any], states_b: list[Any]):
        self.metric = metric
        self.states_a = states_a
        self.states_b = states_b

    def _b(self, perm: Any) -> list[Any]:
        if perm is None:
            return self.states_b
        return [self.metric.permute(state, perm) for state in self.states_b]

    def scores(self, perm: Any = None) -> np.ndarray:
        """``L_A x L_B`` scores."""
        states_b = self._b(perm)
        score = self.metric.score_states
        return np.array([[score(a, b) for b in states_b] for a in self.states_a], dtype=float)

    def per_sample(self, perm: Any = None) -> np.ndarray:
        """``L_A x L_B x N`` per-sample scores."""
        states_b = self._b(perm)
        rows = self.metric.per_sample_states
        return np.array([[rows(a, b) for b in states_b] for a in self.states_a], dtype=float)


def check_k_type(k: Any, minimum: int = 1) -> int:
    """``k`` as an int after checking it is an integer >= ``minimum`` (no N yet).

    Example:
        >>> check_k_type("10")
        Traceback (most recent call last):
        ...
        ValueError: k must be an integer >= 1, got '10' (str)
    """
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise ValueError(f"k must be an integer >= {minimum}, got {k!r} ({type(k).__name__})")
    if k < minimum:
        raise ValueError(f"k must be an integer >= {minimum}, got k={int(k)}")
    return int(k)


def relabel(index: Any, perm: np.ndarray) -> Any:
    """The neighbour index of ``X[perm]`` from that of ``X``, without a new search.

    Row i of ``X[perm]`` is row ``perm[i]`` of X, whose neighbours ``j`` become
    ``perm^-1[j]``: kNN_{X[perm]}(i) = perm^-1(kNN_X(perm[i])), in the same order.
    """
    inverse = np.empty_like(perm)
    inverse[perm] = np.arange(perm.size)
    return NeighborIndex(inverse[index.indices[perm]], index.similarities[perm])


def sample_count(x: Any) -> int:
    """N of a feature matrix or a NeighborIndex."""
    return x.n_samples if is_neighbor_index(x) else int(feature_shape(x, "features")[0])


def list_blocks(n: int, k: int) -> range:
    """Row-block starts for ``N x k x k`` comparisons of neighbour lists."""
    return range(0, n, max(1, LIST_BLOCK // max(1, k * k)))


def as_float_matrix(features: Any, name: str) -> np.ndarray:
    """A validated matrix as float64 numpy with L2-normalised rows (zero rows stay zero)."""
    if is_neighbor_index(features):
        raise ValueError(
            f"{name} is a NeighborIndex, but this metric needs the feature matrix itself"
        )
    x = check_matrix(features, name, dtype="float64")
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)
