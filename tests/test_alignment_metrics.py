"""One tester for all eight metrics: brute force, per-sample, chance levels, invariances.

Every metric of ``uaes_hf.alignment.METRICS`` is checked against the independent
implementation in ``alignment_references.py`` on random, related and tied data, and at k=1.
"""

from __future__ import annotations

import numpy as np
import pytest
from alignment_references import (
    REFERENCES,
    cka,
    lcs_knn_rows,
    random_pair,
    related_pair,
    tied_pair,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from uaes_hf import alignment
from uaes_hf.alignment import METRICS, compare, get_metric

OPTIONS = {"svcca": {"cca_dim": 3}}
CASES = {
    "random": (random_pair(0), 5),
    "related": (related_pair(1), 6),
    "ties": (tied_pair(2), 4),
    "k=1": (related_pair(3), 1),
    "wide": (random_pair(4, n=20, d_a=30, d_b=45), 3),  # N < D: the other search path
}


def k_for(metric, k):
    return max(k, 2) if metric == "cknna" else k  # CKNNA needs k >= 2


@pytest.mark.filterwarnings("ignore::uaes_hf.alignment.AmbiguousNeighborsWarning")
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("metric", METRICS)
def test_every_metric_matches_its_brute_force_reference(metric, case):
    (a, b), k = CASES[case]
    k = k_for(metric, k)
    reference_score, reference_rows = REFERENCES[metric]
    expected = reference_score(a, b, k)
    options = OPTIONS.get(metric, {})
    got = alignment.score(a, b, metric, k, dtype="float64", **options)
    if get_metric(metric, k, **options).uses_neighbors and metric != "cknna":
        assert got == pytest.approx(expected, abs=1e-12)  # counts: exact
    else:
        assert got == pytest.approx(expected, rel=1e-8, abs=1e-12)
    functional = getattr(alignment, metric)
    if get_metric(metric, k).uses_neighbors:
        assert functional(a, b, k, dtype="float64", **options) == got
    else:
        assert functional(a, b, **options) == got
    if reference_rows is not None:
        rows = compare(a, b, metric=metric, k=k, per_sample=True, dtype="float64").per_sample
        np.testing.assert_allclose(rows, reference_rows(a, b, k), rtol=0, atol=1e-12)


@pytest.mark.parametrize("metric", ["mutual_knn", "cycle_knn", "lcs_knn", "edit_distance_knn"])
def test_float32_default_agrees_on_generic_data(metric):
    (a, b), k = CASES["related"]
    assert alignment.score(a, b, metric, k) == pytest.approx(
        REFERENCES[metric][0](a, b, k), abs=1e-12
    )


def test_lcs_normalized_and_rbf_kernels():
    (a, b), k = CASES["related"]
    assert alignment.lcs_knn(a, b, k, normalize=True) == pytest.approx(
        lcs_knn_rows(a, b, k, normalize_by_k=True).mean()
    )
    for sigma in (0.3, 1.0, 2.5):
        assert alignment.cka(a, b, kernel="rbf", rbf_sigma=sigma) == pytest.approx(
            cka(a, b, "rbf", sigma), rel=1e-9
        )
        assert alignment.unbiased_cka(a, b, kernel="rbf", rbf_sigma=sigma) == pytest.approx(
            cka(a, b, "rbf", sigma, unbiased=True), rel=1e-9
        )


def test_large_n_takes_the_gram_free_routes():
    """Linear kernels never densify; D > N and N > D give the same CKA values."""
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(300, 4)), rng.normal(size=(300, 700))
    assert alignment.cka(a, b) == pytest.approx(cka(a, b), rel=1e-9)
    assert alignment.unbiased_cka(a, b) == pytest.approx(cka(a, b, unbiased=True), rel=1e-8)


# ---------------------------------------------------------------- chance levels


def permutation_mean(metric, a, b, k, draws, seed=0):
    """The permutation null's mean, each permuted pair scored from scratch."""
    rng = np.random.default_rng(seed)
    return float(
        np.mean([alignment.score(a, b[rng.permutation(len(b))], metric, k) for _ in range(draws)])
    )


@pytest.mark.parametrize("metric", ["mutual_knn", "cycle_knn", "cka", "unbiased_cka"])
def test_closed_form_chance_levels_are_the_null_means(metric):
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(60, 3)), rng.normal(size=(60, 4))
    measure = get_metric(metric, 8)
    chance = measure.chance_level(*measure.pair(a, b))
    observed = permutation_mean(metric, a, b, 8, draws=400)
    # the null scores' standard error at 400 draws is well under 0.01 here
    assert chance == pytest.approx(observed, abs=0.012)
    if metric == "mutual_knn":
        assert chance == 8 / 59
    if metric == "unbiased_cka":
        assert chance == 0.0


def test_metrics_without_a_closed_form_report_none():
    (a, b), _ = CASES["random"]
    for metric in ("lcs_knn", "edit_distance_knn", "cknna", "svcca"):
        result = compare(a, b, metric=metric, k=4, permutations=20, **OPTIONS.get(metric, {}))
        assert result.chance_level is None
        assert result.null_mean is not None


# ---------------------------------------------------------------- invariances

# Which invariances hold for which metric (exact for neighbour lists up to ties, to
# rounding for the kernel metrics). SVCCA standardises every column, so a rotation of the
# features changes it: it is not rotation invariant. cycle_knn is asymmetric by definition;
# CKNNA too (its unbiased HSIC of non-symmetric masked kernels has a term 1'PQ1 != 1'QP1).
ROTATION = {m for m in METRICS if m != "svcca"}
SYMMETRIC = {"mutual_knn", "lcs_knn", "edit_distance_knn", "cka", "unbiased_cka", "svcca"}


def same(metric, x, y):
    if get_metric(metric).uses_neighbors and metric != "cknna":
        return x == y
    return x == pytest.approx(y, rel=1e-7, abs=1e-9)


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(14, 30),
    d=st.integers(3, 12),
    k=st.integers(2, 5),
)
def test_invariances(seed, n, d, k):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, d))
    b = a @ rng.normal(size=(d, d)) + rng.normal(size=(n, d))
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    perm = rng.permutation(n)
    for metric in METRICS:
        options = {"cca_dim": min(2, d)} if metric == "svcca" else {}

        def s(x, y, metric=metric, options=options):
            return alignment.score(x, y, metric, k, dtype="float64", **options)

        base = s(a, b)
        assert same(metric, s(a[perm], b[perm]), base), f"{metric}: joint row permutation"
        assert same(metric, s(a, 3.5 * b), base), f"{metric}: isotropic scaling"
        row_scale = rng.uniform(0.5, 2.0, size=(n, 1))
        assert same(metric, s(a, b * row_scale), base), f"{metric}: per-row scaling"
        if metric in ROTATION:
            assert same(metric, s(a, b @ q), base), f"{metric}: rotation"
        if metric in SYMMETRIC:
            assert same(metric, s(b, a), base), f"{metric}: symmetry"


# ---------------------------------------------------------------- SVCCA's SVD


def test_svcca_randomized_svd_is_bounded_by_the_spectrum():
    """platonic-rep takes the subspaces from a randomised SVD: bound how far that moves it."""
    rng = np.random.default_rng(30)
    n = 300
    # a spectral gap after cca_dim: four strong shared directions plus small noise
    z = rng.normal(size=(n, 4)) * np.array([10.0, 8.0, 6.0, 5.0])
    a = z @ rng.normal(size=(4, 40)) + 0.05 * rng.normal(size=(n, 40))
    b = z @ rng.normal(size=(4, 30)) + 0.05 * rng.normal(size=(n, 30))
    exact = alignment.svcca(a, b, cca_dim=4)
    assert exact == alignment.svcca(a, b, cca_dim=4)  # deterministic
    for seed in range(5):
        randomized = alignment.svcca(a, b, cca_dim=4, svd="randomized", svd_seed=seed)
        assert abs(randomized - exact) < 1e-3
    # a flat spectrum (isotropic features): the randomised subspace is not the top one
    a, b = rng.normal(size=(n, 64)), rng.normal(size=(n, 48))
    exact = alignment.svcca(a, b, cca_dim=10)
    spread = [
        abs(alignment.svcca(a, b, cca_dim=10, svd="randomized", svd_seed=s) - exact)
        for s in range(5)
    ]
    assert max(spread) < 0.1
