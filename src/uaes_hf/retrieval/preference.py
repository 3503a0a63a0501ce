"""Partial-order preference pairs from a semantic x aesthetic grid of candidates.

The study's recipe (its exact procedure is not public; this is our reading, documented in
the card): retrieve the top-K candidates of a query, order them by a semantic model and by
an aesthetic model, and sample a ``u x v`` grid whose rows follow the semantic order and
whose columns follow the aesthetic order. Here:

1. sort the K candidates by semantic score (best first) and cut the order into ``u``
   consecutive bands of ``K // u`` candidates: band ``i`` is row ``i``;
2. inside each band, sort by aesthetic score (best first) and keep ``v`` candidates at
   positions ``0, stride, 2*stride, ...``: the j-th kept one is cell ``(i, j)``.

A cell is preferred to another when it is no worse on both axes and better on at least one:
``(i, j) > (i', j')`` iff ``i <= i'`` and ``j <= j'`` and the cells differ. A ``u x v`` grid
gives ``u(u+1)/2 * v(v+1)/2 - u*v`` pairs (84 for 4 x 4): O((uv)^2) partial-order pairs.

Example:
    >>> import numpy as np
    >>> semantic = np.array([0.9, 0.8, 0.7, 0.6])
    >>> aesthetic = np.array([5.0, 6.0, 4.0, 7.0])
    >>> grid = build_grid(semantic, aesthetic, u=2, v=2, stride=1)
    >>> grid.tolist()
    [[1, 0], [3, 2]]
    >>> partial_order_pairs(grid).tolist()
    [[1, 0], [1, 3], [1, 2], [0, 2], [3, 2]]
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def min_candidates(u: int, v: int, stride: int) -> int:
    """Fewest candidates a ``u x v`` grid at ``stride`` needs: ``u * ((v - 1) * stride + 1)``.

    Example:
        >>> min_candidates(4, 4, 2)
        28
    """
    u, v, stride = (_positive_int(x, n) for x, n in ((u, "u"), (v, "v"), (stride, "stride")))
    return u * ((v - 1) * stride + 1)


def build_grid(
    semantic: Any, aesthetic: Any, *, u: int = 4, v: int = 4, stride: int = 2
) -> np.ndarray:
    """The ``u x v`` grid of candidate positions (indices into ``semantic``/``aesthetic``).

    Ties are broken by candidate position (stable sorts), so the grid is deterministic.
    """
    semantic = np.asarray(semantic, dtype=np.float64)
    aesthetic = np.asarray(aesthetic, dtype=np.float64)
    if semantic.ndim != 1 or semantic.shape != aesthetic.shape:
        raise ValueError(
            f"semantic and aesthetic scores must be 1-D and equally long, got {semantic.shape} "
            f"and {aesthetic.shape}"
        )
    if not (np.isfinite(semantic).all() and np.isfinite(aesthetic).all()):
        raise ValueError("semantic and aesthetic scores must be finite (no NaN)")
    need = min_candidates(u, v, stride)
    if semantic.size < need:
        raise ValueError(
            f"a {u} x {v} grid at stride {stride} needs at least {need} candidates, got "
            f"{semantic.size}; retrieve more (top_k) or shrink the grid"
        )
    band = semantic.size // u
    by_semantic = np.argsort(-semantic, kind="stable")
    grid = np.empty((u, v), dtype=np.int64)
    for row in range(u):
        members = by_semantic[row * band : (row + 1) * band]
        by_aesthetic = members[np.argsort(-aesthetic[members], kind="stable")]
        grid[row] = by_aesthetic[: (v - 1) * stride + 1 : stride]
    return grid


def partial_order_pairs(grid: Any, with_distance: bool = False) -> Any:
    """All ``(better, worse)`` pairs of grid entries under the dominance order.

    Returns a ``P x 2`` int array (row-major over the better cell, then over the worse one);
    with ``with_distance`` also the grid distance ``(i' - i) + (j' - j)`` of each pair.
    """
    grid = np.asarray(grid)
    if grid.ndim != 2 or grid.size == 0:
        raise ValueError(f"grid must be a non-empty 2-D array, got shape {grid.shape}")
    u, v = grid.shape
    rows, cols = np.divmod(np.arange(u * v), v)
    # better[a] dominates worse[b]: no worse on both axes, and not the same cell.
    dominates = (rows[:, None] <= rows[None, :]) & (cols[:, None] <= cols[None, :])
    np.fill_diagonal(dominates, False)
    better, worse = np.nonzero(dominates)
    flat = grid.reshape(-1)
    pairs = np.stack([flat[better], flat[worse]], axis=1)
    if with_distance:
        distance = (rows[worse] - rows[better]) + (cols[worse] - cols[better])
        return pairs, distance
    return pairs


def query_preference_pairs(
    candidates: Any,
    semantic: Any,
    aesthetic: Any,
    *,
    u: int = 4,
    v: int = 4,
    stride: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """``(better, worse)`` corpus indices and grid distances for one query's candidates.

    Example:
        >>> pairs, dist = query_preference_pairs([10, 11, 12, 13], [4, 3, 2, 1], [1, 2, 3, 4],
        ...                                      u=2, v=2, stride=1)
        >>> pairs[:2].tolist(), dist[:2].tolist()
        ([[11, 10], [11, 13]], [1, 1])
    """
    candidates = np.asarray(candidates, dtype=np.int64)
    if candidates.ndim != 1 or candidates.size != np.asarray(semantic).size:
        raise ValueError("candidates, semantic and aesthetic must have one entry per candidate")
    grid = build_grid(semantic, aesthetic, u=u, v=v, stride=stride)
    positions, distance = partial_order_pairs(grid, with_distance=True)
    return candidates[positions], distance
