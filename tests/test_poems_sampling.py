"""Length-aligned and distribution-aligned sampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ks_2samp

from uaes_hf.data.sampling import (
    allocate,
    assign_bins,
    distribution_aligned_sample,
    length_aligned_sample,
    quantile_bin_edges,
    save_length_histogram,
)


def _brute_bin(value: float, edges: np.ndarray) -> int:
    for b in range(len(edges) - 1):
        last = b == len(edges) - 2
        if edges[b] <= value < edges[b + 1] or (last and value == edges[-1]):
            return b
    return -1


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 60), min_size=1, max_size=80),
    st.lists(st.integers(-5, 70), min_size=1, max_size=80),
    st.integers(1, 25),
)
def test_assign_bins_matches_brute_force(ref: list[int], values: list[int], n_bins: int) -> None:
    edges = quantile_bin_edges(ref, n_bins)
    got = assign_bins(values, edges)
    assert got.tolist() == [_brute_bin(v, edges) for v in values]
    assert (assign_bins(ref, edges) >= 0).all()  # every reference value has a bin


def test_top_edge_value_lands_in_last_bin() -> None:
    edges = quantile_bin_edges([10, 20, 30, 40, 50], n_bins=4)
    assert assign_bins([50], edges).tolist() == [len(edges) - 2]
    # np.digitize alone (the study's script) puts it past the last bin
    assert int(np.digitize(50, edges)) - 1 == len(edges) - 1


def test_empty_target_bin_is_reported_not_refilled() -> None:
    reference = np.arange(1, 101)  # 1..100, 4 bins of 25
    candidates = np.array([1, 2, 3, 30, 31, 32, 60, 61, 62, 200])  # nothing in 76..100
    for replace in (True, False):
        sample = length_aligned_sample(candidates, reference, n_bins=4, replace=replace, seed=1)
        assert len(sample.empty_bins) == 1
        empty = sample.empty_bins[0]
        assert empty.index == 3 and empty.share == pytest.approx(0.25)
        drawn = candidates[sample.indices]
        assert not np.any(drawn > 75)  # no neighbour refilled the empty bin
        assert 200 not in drawn  # outside the reference range
        assert sample.out_of_range == 1
    with_replacement = length_aligned_sample(candidates, reference, n_bins=4, replace=True)
    assert with_replacement.requested == 100 and with_replacement.indices.size == 75


def test_with_and_without_replacement_sizes() -> None:
    rng = np.random.default_rng(0)
    reference = rng.integers(5, 60, size=500)
    candidates = rng.integers(5, 300, size=400)
    rep = length_aligned_sample(candidates, reference, n_bins=10, replace=True, seed=0)
    assert rep.indices.size == 500 and rep.replace
    assert np.unique(rep.indices).size < rep.indices.size
    norep = length_aligned_sample(candidates, reference, n_bins=10, replace=False, seed=0)
    assert np.unique(norep.indices).size == norep.indices.size
    # the largest size that keeps every bin's share: the scarcest bin is used up
    ratio = norep.available / np.where(norep.reference_share > 0, norep.reference_share, np.nan)
    assert norep.requested == int(np.floor(np.nanmin(ratio) + 1e-9))
    assert np.all(norep.drawn <= norep.available)
    fixed = length_aligned_sample(candidates, reference, n_bins=10, n_samples=37, replace=True)
    assert fixed.indices.size == 37


def test_ks_improves_and_matches_scipy() -> None:
    rng = np.random.default_rng(3)
    reference = rng.lognormal(3.0, 0.4, size=800).round()
    candidates = rng.lognormal(4.0, 0.7, size=3000).round()
    sample = length_aligned_sample(candidates, reference, n_bins=20, replace=True, seed=0)
    assert sample.ks_after < sample.ks_before / 3
    assert sample.ks_before == pytest.approx(ks_2samp(candidates, reference).statistic)
    assert sample.ks_after == pytest.approx(
        ks_2samp(candidates[sample.indices], reference).statistic
    )
    again = length_aligned_sample(candidates, reference, n_bins=20, replace=True, seed=0)
    assert np.array_equal(sample.indices, again.indices)  # fixed seed, same sample


def test_allocation_sums_and_validation() -> None:
    assert allocate(7, np.array([1.0, 1.0, 1.0])).sum() == 7
    with pytest.raises(ValueError, match="NaN"):
        length_aligned_sample([1.0, np.nan], [1, 2])
    with pytest.raises(ValueError, match="1-D"):
        length_aligned_sample([[1, 2]], [1, 2])
    with pytest.raises(ValueError, match="empty"):
        quantile_bin_edges([], 3)


def test_histogram_figure_is_written(tmp_path: Path) -> None:
    path = save_length_histogram([5, 6, 7], [5, 50, 90], [5, 6, 7], tmp_path / "h.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_distribution_aligned_sample_moves_toward_small_set() -> None:
    rng = np.random.default_rng(0)
    small = rng.normal(1.5, 1.0, size=(100, 8))
    large = rng.normal(0.0, 1.0, size=(2000, 8))
    result = distribution_aligned_sample(small, large, n_samples=100, n_components=5, seed=0)
    picked = large[result.indices]
    gap_before = np.linalg.norm(large.mean(0) - small.mean(0))
    gap_after = np.linalg.norm(picked.mean(0) - small.mean(0))
    assert gap_after < 0.6 * gap_before
    assert np.unique(result.indices).size == 100  # without replacement by default
    assert result.weights.shape == (2000,) and result.weights.sum() == pytest.approx(1.0)
    # heavier weight on points nearer the small set's mean
    near = np.linalg.norm(large - 1.5, axis=1) < np.linalg.norm(large, axis=1)
    assert result.weights[near].mean() > result.weights[~near].mean()


def test_distribution_aligned_validation() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="feature width"):
        distribution_aligned_sample(rng.normal(size=(5, 3)), rng.normal(size=(9, 4)))
    with pytest.raises(ValueError, match="large set size"):
        distribution_aligned_sample(rng.normal(size=(5, 3)), rng.normal(size=(9, 3)), 20)
    with pytest.raises(ValueError, match="2-D"):
        distribution_aligned_sample(np.zeros(5), np.zeros((5, 2)))
