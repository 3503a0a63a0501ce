"""Chance level, permutation nulls (single pair and layer search) and bootstrap intervals."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from uaes_hf.alignment import (
    best_layer_pair,
    bootstrap_ci,
    chance_level,
    cknna,
    linear_cka,
    mutual_knn,
    nearest_neighbors,
    permutation_test,
    unbiased_cka,
)
from uaes_hf.alignment.layers import GridCounter

# The module (the package attribute of the same name is the function).
grid_module = importlib.import_module("uaes_hf.alignment.mutual_knn")


def test_chance_level_is_k_over_n_minus_one():
    assert chance_level(10, 1001) == 0.01
    assert chance_level(1, 2) == 1.0


@pytest.mark.parametrize("dense", [True, False])
def test_relabelled_null_equals_brute_force_rescoring(dense, monkeypatch):
    """Permuting B's rows == relabelling B's neighbour sets (no new search)."""
    if not dense:  # force the sorted-union lookup used for large N
        monkeypatch.setattr(grid_module, "_DENSE_TABLE_BYTES", 0)
    rng = np.random.default_rng(0)
    n, k = 70, 6
    a_layers = [rng.normal(size=(n, 5)) for _ in range(3)]
    b_layers = [a_layers[1] @ rng.normal(size=(5, 7)) + rng.normal(size=(n, 7))]
    b_layers += [rng.normal(size=(n, 4)), rng.normal(size=(n, 9))]
    counter = GridCounter(
        [nearest_neighbors(x, k).indices for x in a_layers],
        [nearest_neighbors(x, k).indices for x in b_layers],
    )
    for _ in range(4):
        perm = rng.permutation(n)
        expected = [[mutual_knn(a, b[perm], k) for b in b_layers] for a in a_layers]
        np.testing.assert_allclose(counter.scores(perm), expected, rtol=0, atol=1e-12)
    single = GridCounter([nearest_neighbors(a_layers[0], k).indices], [counter.indices_b[0]])
    perm = rng.permutation(n)
    assert single.scores(perm)[0, 0] == pytest.approx(mutual_knn(a_layers[0], b_layers[0][perm], k))


def test_unrelated_features_calibrate_to_zero_with_large_p_value():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(400, 16)), rng.normal(size=(400, 24))
    result = permutation_test(a, b, k=10, n_permutations=300, seed=2)
    assert result.chance_level == pytest.approx(10 / 399)
    assert result.null_mean == pytest.approx(10 / 399, abs=0.002)
    assert abs(result.calibrated) < 0.02
    assert result.p_value > 0.1
    assert result.n_permutations == 300
    assert set(result.to_dict()) >= {"score", "calibrated", "p_value", "null_quantile"}


def test_related_features_get_small_p_value_and_positive_calibration():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(300, 16))
    b = np.tanh(a @ rng.normal(size=(16, 32))) + 0.5 * rng.normal(size=(300, 32))
    result = permutation_test(a, b, k=10, n_permutations=199)
    assert result.p_value == 1 / 200
    assert result.score == mutual_knn(a, b, 10)
    assert 0.1 < result.calibrated <= 1.0


def test_layer_search_null_is_corrected_for_the_max():
    rng = np.random.default_rng(4)
    n, layers = 300, 6
    stack_a = rng.normal(size=(n, layers, 12))
    stack_b = [rng.normal(size=(n, 8)) for _ in range(layers)]
    result = best_layer_pair(stack_a, stack_b, k=10, permutations=200, seed=5)
    assert result.score > chance_level(10, n)  # the max over 36 pairs is inflated...
    calibration = result.calibration
    assert abs(calibration.calibrated) < 0.02  # ...and the corrected null removes it
    assert calibration.p_value > 0.1
    # a single-pair null would call the same max significant-looking: its quantile is lower
    naive = permutation_test(stack_a[:, 0], stack_b[0], k=10, n_permutations=200, seed=5)
    assert naive.null_quantile < calibration.null_quantile
    assert result.calibration == permutation_test(stack_a, stack_b, 10, n_permutations=200, seed=5)


def test_layer_search_finds_a_planted_pair_and_stays_significant():
    rng = np.random.default_rng(6)
    n = 200
    stack_a = rng.normal(size=(n, 4, 10))
    planted = stack_a[:, 2] @ rng.normal(size=(10, 10)) + 0.3 * rng.normal(size=(n, 10))
    stack_b = np.stack([rng.normal(size=(n, 10)), planted, rng.normal(size=(n, 10))], axis=1)
    result = best_layer_pair(stack_a, stack_b, k=8, permutations=99)
    assert (result.layer_a, result.layer_b) == (2, 1)
    assert result.calibration.p_value == 0.01
    assert result.to_dict()["grid"][2][1] == result.score


@pytest.mark.parametrize("metric", ["cka", "unbiased_cka", "cknna"])
def test_kernel_metric_nulls_match_brute_force_and_calibrate(metric):
    rng = np.random.default_rng(7)
    n = 120
    a, b = rng.normal(size=(n, 10)), rng.normal(size=(n, 14))
    fn = {"cka": linear_cka, "unbiased_cka": unbiased_cka, "cknna": cknna}[metric]
    result = permutation_test(a, b, k=6, metric=metric, n_permutations=60, seed=8)
    assert result.score == pytest.approx(fn(a, b) if metric != "cknna" else fn(a, b, 6))
    # the null scores are the metric on row-permuted B, recomputed from scratch here
    perm_rng = np.random.default_rng(8)
    brute = [
        fn(a, b[p]) if metric != "cknna" else fn(a, b[p], 6)
        for p in (perm_rng.permutation(n) for _ in range(60))
    ]
    assert result.null_mean == pytest.approx(np.mean(brute), rel=1e-6)
    assert result.null_quantile == pytest.approx(np.quantile(brute, 0.95), rel=1e-6)
    related = a @ rng.normal(size=(10, 14)) + 0.5 * rng.normal(size=(n, 14))
    assert permutation_test(a, related, k=6, metric=metric, n_permutations=60).p_value == 1 / 61


def test_bootstrap_ci_covers_the_score_and_narrows_with_n():
    rng = np.random.default_rng(9)

    def pair(n):
        a = rng.normal(size=(n, 8))
        return a, a + 0.7 * rng.normal(size=(n, 8))

    small = bootstrap_ci(*pair(150), k=10, n_bootstrap=400)
    large = bootstrap_ci(*pair(1200), k=10, n_bootstrap=400)
    for ci in (small, large):
        assert ci.low < ci.score < ci.high
        assert ci.confidence == 0.95
    assert (large.high - large.low) < (small.high - small.low)
    a, b = pair(150)
    assert bootstrap_ci(a, b, 10).score == pytest.approx(mutual_knn(a, b, 10))
