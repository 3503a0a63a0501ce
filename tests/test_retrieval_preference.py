"""Partial-order pairs of the semantic x aesthetic grid, against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uaes_hf.retrieval.preference import (
    build_grid,
    min_candidates,
    partial_order_pairs,
    query_preference_pairs,
)


def brute_force_grid(semantic, aesthetic, u, v, stride):
    """The grid written out with Python lists and sorted() (ties: lower position first)."""
    band = len(semantic) // u
    by_semantic = sorted(range(len(semantic)), key=lambda i: (-semantic[i], i))
    grid = []
    for row in range(u):
        members = by_semantic[row * band : (row + 1) * band]
        ranked = sorted(members, key=lambda i: (-aesthetic[i], members.index(i)))
        grid.append([ranked[j * stride] for j in range(v)])
    return grid


def brute_force_pairs(grid):
    """Every ordered pair of cells where the first is no worse on both axes, not equal."""
    u, v = len(grid), len(grid[0])
    cells = list(itertools.product(range(u), range(v)))
    return {
        (grid[i][j], grid[k][m])
        for (i, j), (k, m) in itertools.product(cells, cells)
        if (i, j) != (k, m) and i <= k and j <= m
    }


@settings(max_examples=80, deadline=None)
@given(
    u=st.integers(1, 4),
    v=st.integers(1, 4),
    stride=st.integers(1, 3),
    extra=st.integers(0, 6),
    seed=st.integers(0, 10_000),
    ties=st.booleans(),
)
def test_grid_and_pairs_match_brute_force(u, v, stride, extra, seed, ties) -> None:
    rng = np.random.default_rng(seed)
    n = min_candidates(u, v, stride) + extra
    if ties:  # few distinct values: the tie rule matters
        semantic, aesthetic = rng.integers(0, 3, n).astype(float), rng.integers(0, 3, n) * 1.0
    else:
        semantic, aesthetic = rng.normal(size=n), rng.normal(size=n)
    grid = build_grid(semantic, aesthetic, u=u, v=v, stride=stride)
    assert grid.tolist() == brute_force_grid(semantic.tolist(), aesthetic.tolist(), u, v, stride)
    pairs = partial_order_pairs(grid)
    found = {tuple(p) for p in pairs.tolist()}
    assert len(found) == len(pairs)  # no duplicates
    assert found == brute_force_pairs(grid.tolist())
    # The count of a u x v grid: u(u+1)/2 * v(v+1)/2 - u*v.
    assert len(pairs) == u * (u + 1) // 2 * v * (v + 1) // 2 - u * v


def test_the_order_is_a_strict_partial_order() -> None:
    grid = np.arange(12).reshape(3, 4)
    pairs = {tuple(p) for p in partial_order_pairs(grid).tolist()}
    assert all((b, a) not in pairs for a, b in pairs)  # antisymmetric
    assert all(a != b for a, b in pairs)  # irreflexive
    for (a, b), (c, d) in itertools.product(pairs, pairs):
        if b == c:
            assert (a, d) in pairs  # transitive


def test_four_by_four_grid_gives_84_pairs_and_distances() -> None:
    candidates = np.arange(100, 132)
    semantic = np.linspace(1, 0, 32)
    aesthetic = np.random.default_rng(0).normal(size=32)
    pairs, distance = query_preference_pairs(candidates, semantic, aesthetic, u=4, v=4, stride=2)
    assert pairs.shape == (84, 2) and set(pairs.ravel()) <= set(candidates.tolist())
    assert distance.min() == 1 and distance.max() == 6  # (0,0) vs (3,3)
    # The best cell (top semantic band, most aesthetic) beats all 15 others.
    best = pairs[0, 0]
    assert (pairs[:, 0] == best).sum() == 15 and best not in pairs[:, 1]


def test_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="at least 28 candidates"):
        build_grid(np.zeros(20), np.zeros(20), u=4, v=4, stride=2)
    with pytest.raises(ValueError, match="NaN"):
        build_grid(np.array([np.nan] * 4), np.zeros(4), u=2, v=2, stride=1)
    with pytest.raises(ValueError, match="equally long"):
        build_grid(np.zeros(4), np.zeros(5), u=2, v=2, stride=1)
    with pytest.raises(ValueError, match="stride must be a positive integer"):
        min_candidates(2, 2, 0)
