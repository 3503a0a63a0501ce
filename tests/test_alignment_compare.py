"""``compare()``: one neighbour search per input layer, and every statistic it composes
checked against a from-scratch computation (brute-force permutation nulls, the
calibrated-similarity definition, per-sample selections)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from alignment_references import REFERENCES, mutual_knn_rows

from uaes_hf.alignment import (
    METRICS,
    best_layer_pair,
    compare,
    nearest_neighbors,
    permutation_test,
)
from uaes_hf.alignment import neighbors as neighbors_module

OPTIONS = {"svcca": {"cca_dim": 3}}


@pytest.fixture
def count_searches(monkeypatch):
    """Count real neighbour searches (the real function runs; calls are counted)."""
    calls = []
    real = neighbors_module.nearest_neighbors

    def counted(*args, **kwargs):
        calls.append(kwargs.get("name"))
        return real(*args, **kwargs)

    monkeypatch.setattr(neighbors_module, "nearest_neighbors", counted)
    return calls


def stacks(seed, n=60, layers=(3, 2)):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 4))
    make = [
        np.stack(
            [np.tanh(z @ rng.normal(size=(4, 6))) + rng.normal(size=(n, 6)) for _ in range(count)],
            axis=1,
        )
        for count in layers
    ]
    return make[0], make[1]


# ---------------------------------------------------------------- one search per layer


def test_score_per_sample_null_and_bootstrap_reuse_one_search_per_layer(count_searches):
    a, b = stacks(0)
    compare(a, b, k=5, permutations=30, per_sample=True, per_sample_layers="max", bootstrap=40)
    assert len(count_searches) == 3 + 2  # L_A + L_B; none per permutation or resample
    count_searches.clear()
    compare(a, b, k=5, permutations=10, per_sample=True, per_sample_layers="heldout")
    assert len(count_searches) == 3 + 2
    count_searches.clear()
    compare(a, b, k=5, layer_a=1, layer_b=0, permutations=10, per_sample=True, bootstrap=10)
    assert len(count_searches) == 2  # only the fixed layers are searched


@pytest.mark.parametrize(
    "metric", ["mutual_knn", "cycle_knn", "lcs_knn", "edit_distance_knn", "cknna"]
)
def test_every_neighbour_metric_searches_each_input_once(metric, count_searches):
    a, b = stacks(1)
    per_sample = metric != "cknna"
    compare(
        a[:, 0],
        b[:, 0],
        metric=metric,
        k=4,
        permutations=15,
        per_sample=per_sample,
        bootstrap=10 if per_sample else 0,
    )
    assert len(count_searches) == 2


# ---------------------------------------------------------------- against from-scratch nulls


def brute_null(metric, layers_a, layers_b, k, draws, seed, select=max):
    """The selected grid score for B's rows permuted, every pair rescored from scratch."""
    score = REFERENCES[metric][0]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(draws):
        perm = rng.permutation(len(layers_b[0]))
        out.append(select(score(x, y[perm], k) for x in layers_a for y in layers_b))
    return np.array(out)


def order_statistic(observed, null, alpha, max_score=1.0):
    """calibrated-similarity: tau = ceil((1 - alpha)(K + 1))-th of observed + null."""
    combined = sorted([observed, *null])
    tau = combined[min(max(math.ceil((1 - alpha) * (len(null) + 1)) - 1, 0), len(null))]
    return tau, min(max((observed - tau) / max(max_score - tau, 1e-12), 0.0), 1.0)


@pytest.mark.parametrize("metric", ["mutual_knn", "lcs_knn", "cka", "unbiased_cka", "cknna"])
def test_calibration_of_a_pair_matches_brute_force(metric):
    a, b = stacks(2, n=40)
    a, b = a[:, 0], b[:, 0]
    k, draws, alpha = 4, 39, 0.1
    null = brute_null(metric, [a], [b], k, draws, seed=3)
    observed = REFERENCES[metric][0](a, b, k)
    max_score = k if metric == "lcs_knn" else 1.0
    quantile = compare(
        a, b, metric=metric, k=k, permutations=draws, alpha=alpha, seed=3, dtype="float64"
    )
    tau = np.quantile(null, 1 - alpha)
    assert quantile.score == pytest.approx(observed, rel=1e-9)
    assert quantile.null_quantile == pytest.approx(tau, rel=1e-9)
    assert quantile.calibrated_score == pytest.approx(
        (observed - tau) / (max_score - tau), rel=1e-8
    )
    assert quantile.p_value == (1 + np.sum(null >= observed - 1e-12)) / (draws + 1)
    assert quantile.null_mean == pytest.approx(null.mean(), rel=1e-9)
    ordered = compare(
        a,
        b,
        metric=metric,
        k=k,
        permutations=draws,
        alpha=alpha,
        seed=3,
        calibration="order-statistic",
        dtype="float64",
    )
    tau_os, calibrated = order_statistic(observed, null, alpha, max_score)
    assert ordered.null_quantile == pytest.approx(tau_os, rel=1e-9)
    assert ordered.calibrated_score == pytest.approx(calibrated, rel=1e-8, abs=1e-12)
    assert 0.0 <= ordered.calibrated_score <= 1.0
    assert ordered.calibration == "order-statistic" and quantile.calibration == "quantile"


def test_order_statistic_clamps_unrelated_pairs_to_zero_and_the_quantile_goes_negative():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(80, 5)), rng.normal(size=(80, 5))
    below = [compare(a, b[rng.permutation(80)], k=5, permutations=99, seed=s) for s in range(6)]
    lowest = min(below, key=lambda r: r.score)
    assert lowest.calibrated_score < 0  # the quantile definition keeps "below the null"
    again = compare(a, b, k=5, permutations=99, seed=0, calibration="order-statistic")
    assert again.calibrated_score >= 0.0


def test_layer_search_null_matches_brute_force_and_best_layer_pair():
    a, b = stacks(5, n=40)
    layers_a, layers_b = [a[:, i] for i in range(3)], [b[:, i] for i in range(2)]
    draws = 29
    result = compare(a, b, k=4, permutations=draws, seed=6)
    null = brute_null("mutual_knn", layers_a, layers_b, 4, draws, seed=6)
    grid = np.array([[mutual_knn_rows(x, y, 4).mean() for y in layers_b] for x in layers_a])
    assert result.score == pytest.approx(grid.max(), abs=1e-12)
    assert (result.layer_a, result.layer_b) == np.unravel_index(grid.argmax(), grid.shape)
    assert result.null_mean == pytest.approx(null.mean(), abs=1e-12)
    assert result.n_layer_pairs == 6 and result.selection == "best"
    searched = best_layer_pair(a, b, 4, permutations=draws, seed=6)
    assert searched.calibration.calibrated == result.calibrated_score
    assert searched.calibration.p_value == result.p_value
    tested = permutation_test(a, b, 4, n_permutations=draws, seed=6)
    assert tested.null_quantile == result.null_quantile
    # every metric takes the search-corrected null (here CKA, brute force again)
    cka_result = compare(a, b, metric="cka", permutations=draws, seed=6)
    assert cka_result.null_mean == pytest.approx(
        brute_null("cka", layers_a, layers_b, 4, draws, seed=6).mean(), rel=1e-9
    )


def test_per_sample_layer_modes_match_their_definitions():
    a, b = stacks(7, n=50)
    layers_a, layers_b = [a[:, i] for i in range(3)], [b[:, i] for i in range(2)]
    rows = np.array([[mutual_knn_rows(x, y, 5) for y in layers_b] for x in layers_a])
    best = compare(a, b, k=5, per_sample=True)
    assert (best.layer_a, best.layer_b) == np.unravel_index(rows.mean(2).argmax(), (3, 2))
    np.testing.assert_allclose(best.per_sample, rows[best.layer_a, best.layer_b], atol=1e-12)
    assert not best.per_sample_inflated
    maxed = compare(a, b, k=5, per_sample=True, per_sample_layers="max", permutations=19, seed=8)
    np.testing.assert_allclose(maxed.per_sample, rows.max(axis=(0, 1)), atol=1e-12)
    assert maxed.per_sample_inflated
    rng = np.random.default_rng(8)  # the same permutations, per-sample max rescored
    expected = []
    for _ in range(19):
        perm = rng.permutation(50)
        cells = [mutual_knn_rows(x, y[perm], 5) for x in layers_a for y in layers_b]
        expected.append(np.max(cells, axis=0).mean())
    assert maxed.per_sample_chance == pytest.approx(np.mean(expected), abs=1e-12)
    assert maxed.per_sample_chance > 2 * maxed.chance_level  # the max is inflated
    held = compare(a, b, k=5, per_sample=True, per_sample_layers="heldout", seed=9)
    order = np.random.default_rng(9).permutation(50)
    chosen, report = np.sort(order[:25]), np.sort(order[25:])
    pick = np.unravel_index(rows[:, :, chosen].mean(2).argmax(), (3, 2))
    assert (held.per_sample_layer_a, held.per_sample_layer_b) == pick
    np.testing.assert_array_equal(held.per_sample_rows, report)
    np.testing.assert_allclose(held.per_sample, rows[pick][report], atol=1e-12)


def test_reference_selection_and_the_first_maximum():
    rng = np.random.default_rng(10)
    x, y = rng.normal(size=(30, 4)), rng.normal(size=(30, 5))
    tied = compare([x, x, 2 * x], [y], k=3, per_sample=True)
    assert tied.layer_a == 0  # exact ties: the first pair in row-major order, as the study
    negative = None
    for seed in range(20):  # an unrelated pair whose unbiased CKA is below 0
        r = np.random.default_rng(seed)
        pair = [r.normal(size=(12, 3))], [r.normal(size=(12, 3))]
        if compare(*pair, metric="unbiased_cka").score < 0:
            negative = pair
            break
    assert negative is not None
    best = compare(*negative, metric="unbiased_cka")
    study = compare(*negative, metric="unbiased_cka", layer_selection="reference")
    assert best.score < 0 and best.layer_a == 0
    assert study.score == 0.0 and study.layer_a is None and study.layer_b is None


def test_result_is_json_ready_and_carries_its_settings():
    a, b = stacks(11, n=40)
    result = compare(
        a, b, metric="cka", kernel="rbf", rbf_sigma=0.8, permutations=9, outlier_quantile=0.9
    )
    again = json.loads(json.dumps(result.to_dict()))
    assert again["options"] == {"kernel": "rbf", "rbf_sigma": 0.8}
    assert again["outlier_quantile"] == 0.9 and again["k"] is None
    assert again["grid"] and len(again["grid"]) == 3


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("metric", METRICS)
def test_k_must_be_an_integer_for_every_metric(metric):
    a, b = stacks(12)
    with pytest.raises(ValueError, match="k must be an integer >= 1, got '10'"):
        compare(a[:, 0], b[:, 0], metric=metric, k="10", **OPTIONS.get(metric, {}))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"metric": "cka", "per_sample": True}, "cka has none"),
        ({"metric": "svcca", "bootstrap": 10, "cca_dim": 2}, "svcca has none"),
        ({"per_sample_layers": "mean"}, "unknown per_sample_layers 'mean'"),
        ({"calibration": "conformal"}, "unknown calibration 'conformal'"),
        ({"layer_selection": "last"}, "unknown layer_selection 'last'"),
        ({"outlier_exact": True}, "outlier_exact=True needs an outlier_quantile"),
        ({"outlier_quantile": 0}, r"must be a number in \(0, 1\]"),
        ({"layer_a": 3}, "layer_a=3 is out of range: A has 3 layer"),
        ({"metric": "mutual_knn", "kernel": "rbf"}, "mutual_knn does not take option"),
        ({"metric": "cka", "kernel": "poly"}, "unknown kernel 'poly'"),
        ({"metric": "cka", "rbf_sigma": -1.0}, "rbf_sigma must be a positive"),
        ({"metric": "svcca", "cca_dim": 7}, "cca_dim=7 is larger"),
        ({"permutations": -1}, "permutations must be an integer >= 0"),
        ({"ci_level": 95}, "ci_level must be a number"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    a, b = stacks(13)
    with pytest.raises(ValueError, match=message):
        compare(a, b, k=3, **kwargs)


def test_finiteness_is_checked_in_the_precision_the_search_runs_in():
    rng = np.random.default_rng(14)
    a, b = rng.normal(size=(30, 4)), rng.normal(size=(30, 4))
    huge = a.copy()
    huge[5] *= 1e20  # finite in float64; its squared norm overflows float32
    with pytest.raises(ValueError, match="A has 1 row.*overflows float32"):
        compare(huge, b, k=3)
    with pytest.raises(ValueError, match="overflows float32"):
        compare([huge, a], [b], k=3)
    assert 0 <= compare(huge, b, k=3, dtype="float64").score <= 1
    with pytest.raises(ValueError, match="overflows float64"):
        compare(a * 1e160, b, metric="cka")
    index = nearest_neighbors(a, 3)
    with pytest.raises(ValueError, match="outlier clamp needs the features"):
        compare(index, b, k=3, outlier_quantile=0.9)
