"""Best layer pair: mutual kNN over every (layer of A, layer of B) pair.

Each layer's neighbour sets are computed once (``L_A + L_B`` searches, not ``L_A * L_B``),
then the whole ``L_A x L_B`` grid of overlaps is counted from index arrays alone. The same
counter scores the grid for B's rows under a permutation, which is what the layer-search
permutation null needs (:func:`uaes_hf.alignment.permutation_test`).

The maximum over a grid is biased upwards under the null: report it with
``permutations > 0`` (a calibrated score and p-value corrected for the search).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=(80, 3, 16))
    >>> b = np.stack([rng.normal(size=(80, 16)), a[:, 1] @ rng.normal(size=(16, 16))], axis=1)
    >>> result = best_layer_pair(a, b, k=5)
    >>> (result.layer_a, result.layer_b), result.grid.shape
    ((1, 1), (3, 2))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from uaes_hf.alignment.mutual_knn import overlap_counts
from uaes_hf.alignment.neighbors import NeighborIndex, as_neighbor_index
from uaes_hf.alignment.validation import check_k, check_same_samples, split_layers

if TYPE_CHECKING:
    from uaes_hf.alignment.calibration import CalibratedScore

# Largest dense (N*N x L_A) uint8 membership table used to score grids by lookup.
_DENSE_TABLE_BYTES = 1 << 26


@dataclass(frozen=True)
class LayerSearchResult:
    """Outcome of :func:`best_layer_pair`.

    Attributes:
        score: the best (maximum) mutual kNN over the grid.
        layer_a, layer_b: the layer pair that reaches it (first in row-major order on ties).
        grid: ``L_A x L_B`` mutual kNN of every pair.
        k: neighbours per row.
        calibration: permutation-null calibration of ``score``, corrected for the search
            (``None`` unless requested).
    """

    score: float
    layer_a: int
    layer_b: int
    grid: np.ndarray
    k: int
    calibration: CalibratedScore | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (the grid as nested lists)."""
        return {
            "score": self.score,
            "layer_a": self.layer_a,
            "layer_b": self.layer_b,
            "grid": self.grid.tolist(),
            "k": self.k,
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
        }


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

    def counts(self, perm: np.ndarray | None = None) -> np.ndarray:
        """``L_A x L_B`` int64 overlap totals (for ``B[perm]`` when ``perm`` is given)."""
        if perm is None:
            b_sets = self.indices_b
        else:
            inverse = np.empty_like(perm)
            inverse[perm] = np.arange(perm.size)
            b_sets = [inverse[idx[perm]] for idx in self.indices_b]
        if self._pairwise:
            return np.array(
                [[overlap_counts(a, b).sum() for b in b_sets] for a in self.indices_a],
                dtype=np.int64,
            )
        queries = np.concatenate([self._row_keys + idx.ravel() for idx in b_sets])
        if self._union is None:
            rows = self._member[queries]
        else:
            pos = np.minimum(np.searchsorted(self._union, queries), self._union.size - 1)
            rows = self._member[pos] * (self._union[pos] == queries)[:, None]
        per_b = rows.reshape(len(b_sets), self.n * self.k, -1).sum(axis=1, dtype=np.int64)
        return per_b.T

    def scores(self, perm: np.ndarray | None = None) -> np.ndarray:
        """``L_A x L_B`` mutual kNN scores."""
        return self.counts(perm) / (self.n * self.k)


def stack_indices(
    stack_a: Any, stack_b: Any, k: int, **search: Any
) -> tuple[list[NeighborIndex], list[NeighborIndex]]:
    """Validated per-layer neighbour indices of two stacks (shared N, ``1 <= k < N``)."""
    layers_a = split_layers(stack_a, "A")
    layers_b = split_layers(stack_b, "B")
    n_a = layers_a[0].n_samples if isinstance(layers_a[0], NeighborIndex) else layers_a[0].shape[0]
    n_b = layers_b[0].n_samples if isinstance(layers_b[0], NeighborIndex) else layers_b[0].shape[0]
    k = check_k(k, check_same_samples(int(n_a), int(n_b)))
    index_a = [as_neighbor_index(x, k, f"A layer {i}", **search) for i, x in enumerate(layers_a)]
    index_b = [as_neighbor_index(x, k, f"B layer {i}", **search) for i, x in enumerate(layers_b)]
    return index_a, index_b


def best_layer_pair(
    stack_a: Any,
    stack_b: Any,
    k: int = 10,
    *,
    permutations: int = 0,
    alpha: float = 0.05,
    seed: int = 0,
    device: Any = None,
    dtype: Any = "float32",
    chunk_size: int | None = None,
    progress: bool = False,
) -> LayerSearchResult:
    """Mutual kNN of every layer pair, and the best pair.

    Args:
        stack_a, stack_b: ``N x L x D`` arrays/tensors, or lists of ``N x D_l`` matrices
            (or of :class:`NeighborIndex`), describing the same N samples.
        k: neighbours per row.
        permutations: if > 0, calibrate the best score against a null that applies the same
            random row permutation to every layer of B and takes the max over the grid.
        alpha: the null quantile used for calibration is ``1 - alpha``.
        seed: seed of the permutations.
        device, dtype, chunk_size: passed to :func:`nearest_neighbors`.
        progress: show a progress bar over permutations.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(40, 2, 4))
        >>> best_layer_pair(x, x, k=3).score
        1.0
    """
    index_a, index_b = stack_indices(
        stack_a, stack_b, k, device=device, dtype=dtype, chunk_size=chunk_size
    )
    counter = GridCounter([x.indices for x in index_a], [x.indices for x in index_b])
    grid = counter.scores()
    layer_a, layer_b = np.unravel_index(int(np.argmax(grid)), grid.shape)
    calibration = None
    if permutations:
        from uaes_hf.alignment.calibration import grid_null_test

        calibration = grid_null_test(
            counter, n_permutations=permutations, alpha=alpha, seed=seed, progress=progress
        )
    return LayerSearchResult(
        score=float(grid[layer_a, layer_b]),
        layer_a=int(layer_a),
        layer_b=int(layer_b),
        grid=grid,
        k=index_a[0].k,
        calibration=calibration,
    )
