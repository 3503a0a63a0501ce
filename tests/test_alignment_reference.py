"""uaes_hf.alignment against brute-force references written here, plus invariances.

The references follow the Platonic Representation Hypothesis code literally: a full N x N
cosine matrix, sets of neighbours, dense HSIC formulas. They share no code with the library.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uaes_hf.alignment import (
    best_layer_pair,
    cknna,
    linear_cka,
    mutual_knn,
    mutual_knn_matrix,
    mutual_knn_per_sample,
    nearest_neighbors,
    unbiased_cka,
)

# ---------------------------------------------------------------- brute-force references


def ref_normalize(x):
    x = np.asarray(x, dtype=np.float64)
    norms = np.sqrt((x * x).sum(axis=1, keepdims=True))
    return x / np.where(norms > 0, norms, 1.0)


def ref_neighbor_lists(x, k):
    """k most similar other rows, by (similarity desc, index asc), with python sorting."""
    xn = ref_normalize(x)
    out = []
    for i in range(len(xn)):
        others = [j for j in range(len(xn)) if j != i]
        sims = {j: float(np.dot(xn[i], xn[j])) for j in others}
        others.sort(key=lambda j: (-sims[j], j))
        out.append(others[:k])
    return out


def ref_mutual_knn_per_sample(a, b, k):
    na, nb = ref_neighbor_lists(a, k), ref_neighbor_lists(b, k)
    return np.array([len(set(na[i]) & set(nb[i])) / k for i in range(len(na))])


def ref_hsic_biased(K, L):
    n = K.shape[0]
    H = np.eye(n) - 1.0 / n
    return np.trace(K @ H @ L @ H)


def ref_hsic_unbiased(K, L):
    m = K.shape[0]
    Kt = K.copy()
    Lt = L.copy()
    np.fill_diagonal(Kt, 0)
    np.fill_diagonal(Lt, 0)
    value = (
        np.sum(Kt * Lt.T)
        + np.sum(Kt) * np.sum(Lt) / ((m - 1) * (m - 2))
        - 2 * np.sum(Kt @ Lt) / (m - 2)
    )
    return value / (m * (m - 3))


def ref_cka(a, b, unbiased=False):
    xa, xb = ref_normalize(a), ref_normalize(b)
    K, L = xa @ xa.T, xb @ xb.T
    h = ref_hsic_unbiased if unbiased else ref_hsic_biased
    return h(K, L) / np.sqrt(h(K, K) * h(L, L))


def ref_cknna(a, b, k):
    xa, xb = ref_normalize(a), ref_normalize(b)
    K, L = xa @ xa.T, xb @ xb.T
    n = len(xa)

    def mask(lists):
        m = np.zeros((n, n))
        for i, row in enumerate(lists):
            m[i, row] = 1.0
        return m

    mk, ml = mask(ref_neighbor_lists(a, k)), mask(ref_neighbor_lists(b, k))
    kl = ref_hsic_unbiased(mk * ml * K, mk * ml * L)
    kk = ref_hsic_unbiased(mk * K, mk * K)
    ll = ref_hsic_unbiased(ml * L, ml * L)
    return kl / np.sqrt(kk * ll)


# ---------------------------------------------------------------- data


def random_pair(seed, n=60, d_a=12, d_b=20):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d_a)), rng.normal(size=(n, d_b))


def structured_pair(seed, n=90):
    """Clustered, low-rank, related spaces with exact (and power-of-2 scaled) duplicates.

    Duplicates give exact ties in any implementation; "mathematical" ties between distinct
    rows would depend on rounding, so the data avoid them.
    """
    rng = np.random.default_rng(seed)
    centers = 3 * rng.normal(size=(6, 5))
    labels = rng.integers(0, 6, size=n)
    a = centers[labels] + 0.5 * rng.normal(size=(n, 5))
    a[n - 10 : n - 5] = a[:5]
    a[n - 5 :] = 4.0 * a[5:10]
    b = np.tanh(a @ rng.normal(size=(5, 9))) + 0.3 * rng.normal(size=(n, 9))
    b[n - 3 :] = b[20:23]
    return a, b


# ---------------------------------------------------------------- comparisons


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", [1, 5, 10])
def test_mutual_knn_matches_reference_on_random_data(seed, k):
    a, b = random_pair(seed)
    expected = ref_mutual_knn_per_sample(a, b, k)
    per_sample = mutual_knn_per_sample(a, b, k, dtype="float64")
    np.testing.assert_array_equal(per_sample, expected)
    assert mutual_knn(a, b, k, dtype="float64") == pytest.approx(expected.mean(), abs=1e-15)
    # float32 default agrees too on generic data
    np.testing.assert_array_equal(mutual_knn_per_sample(a, b, k), expected)


@pytest.mark.parametrize("seed", [3, 4])
def test_mutual_knn_matches_reference_on_structured_data_with_ties(seed):
    a, b = structured_pair(seed)
    with pytest.warns(UserWarning):  # integer rows repeat: ambiguous sets are announced
        per_sample = mutual_knn_per_sample(a, b, 7, dtype="float64")
    np.testing.assert_array_equal(per_sample, ref_mutual_knn_per_sample(a, b, 7))


def test_neighbor_lists_match_reference_order():
    a, _ = structured_pair(5)
    with pytest.warns(UserWarning):
        index = nearest_neighbors(a, 6, dtype="float64")
    assert index.indices.tolist() == ref_neighbor_lists(a, 6)


@pytest.mark.parametrize("seed", [0, 1])
def test_cka_variants_match_reference(seed):
    a, b = random_pair(seed, n=50, d_a=7, d_b=80)  # d_b > n exercises the Gram route
    assert linear_cka(a, b) == pytest.approx(ref_cka(a, b), rel=1e-10)
    assert unbiased_cka(a, b) == pytest.approx(ref_cka(a, b, unbiased=True), rel=1e-9)
    sa, sb = structured_pair(seed, n=60)
    assert linear_cka(sa, sb) == pytest.approx(ref_cka(sa, sb), rel=1e-10)
    assert unbiased_cka(sa, sb) == pytest.approx(ref_cka(sa, sb, unbiased=True), rel=1e-9)


@pytest.mark.parametrize("k", [2, 5, 12])
def test_cknna_matches_reference(k):
    a, b = random_pair(7, n=70)
    assert cknna(a, b, k, dtype="float64") == pytest.approx(ref_cknna(a, b, k), rel=1e-9)
    rng = np.random.default_rng(8)
    related = a @ rng.normal(size=(12, 12)) + 0.2 * rng.normal(size=a.shape)
    assert cknna(a, related, k, dtype="float64") == pytest.approx(
        ref_cknna(a, related, k), rel=1e-9
    )


def test_cknna_with_all_neighbours_is_unbiased_cka():
    a, b = random_pair(9, n=40)
    full = cknna(a, b, k=39, dtype="float64")
    assert full == pytest.approx(unbiased_cka(a, b), rel=1e-9)
    assert cknna(a, b, k=None) == unbiased_cka(a, b)  # the reference crashes here


def test_mutual_knn_matrix_and_layer_grid_match_pairwise_scores():
    rng = np.random.default_rng(10)
    base = rng.normal(size=(80, 6))
    models = [base, base @ rng.normal(size=(6, 9)), rng.normal(size=(80, 4))]
    matrix = mutual_knn_matrix(models, k=5)
    for i in range(3):
        for j in range(3):
            expected = ref_mutual_knn_per_sample(models[i], models[j], 5).mean()
            assert matrix[i, j] == pytest.approx(expected, abs=1e-12)
    stack_a = np.stack([models[0], models[0] + 0.5 * rng.normal(size=(80, 6))], axis=1)
    result = best_layer_pair(stack_a, [models[1], models[2], models[0][:, :3]], k=5)
    expected = np.array(
        [
            [
                ref_mutual_knn_per_sample(stack_a[:, i], m, 5).mean()
                for m in (models[1], models[2], models[0][:, :3])
            ]
            for i in range(2)
        ]
    )
    np.testing.assert_allclose(result.grid, expected, rtol=0, atol=1e-12)
    assert (result.layer_a, result.layer_b) == np.unravel_index(expected.argmax(), expected.shape)
    assert result.score == pytest.approx(expected.max(), abs=1e-12)


def test_chunked_equals_unchunked_exactly_including_ties():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(2300, 16)).astype(np.float32)  # spans three 1024-row CPU tiles
    x[700] = x[3]  # exact duplicate: ties at many ranks
    x[2200] = 2.0 * x[50]
    x[900:905] = x[900]
    with pytest.warns(UserWarning):
        reference = nearest_neighbors(x, 10, chunk_size=x.shape[0])
    for chunk in (1, 1500, 2048):
        with pytest.warns(UserWarning):
            index = nearest_neighbors(x, 10, chunk_size=chunk)
        np.testing.assert_array_equal(index.indices, reference.indices)
        np.testing.assert_array_equal(index.similarities, reference.similarities)
    # the duplicate ties are broken by the lower index
    assert set(reference.indices[900, :4]) == {901, 902, 903, 904}
    assert list(reference.indices[901, :4]) == [900, 902, 903, 904]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_wide_features_match_reference(dtype):
    """N <= D takes the path that scales similarities instead of normalising rows."""
    a, b = random_pair(15, n=50, d_a=64, d_b=300)
    b[:, :5] *= 1e-3  # uneven column scales
    a[7] *= 1e6  # and uneven row norms
    a[8] *= 1e-6
    for k in (1, 5, 12):
        expected = ref_mutual_knn_per_sample(a, b, k)
        np.testing.assert_array_equal(mutual_knn_per_sample(a, b, k, dtype=dtype), expected)
    index = nearest_neighbors(a, 5, dtype=dtype)
    xn = ref_normalize(a)
    expected_sims = np.sort(xn @ xn.T - 3 * np.eye(50), axis=1)[:, ::-1][:, :5]
    np.testing.assert_allclose(index.similarities, expected_sims, atol=1e-6)
    assert index.indices.tolist() == [row[:5] for row in ref_neighbor_lists(a, 5)]
    assert cknna(a, b, 6, dtype="float64") == pytest.approx(ref_cknna(a, b, 6), rel=1e-9)
    # wide data with duplicate rows still announce them and break ties by the lower index
    a[30] = a[2]
    with pytest.warns(UserWarning, match="duplicate"):
        dup = nearest_neighbors(a, 3, dtype=dtype)
    assert dup.indices[2, 0] == 30 and dup.indices[30, 0] == 2


def test_float64_path_and_torch_input():
    torch = pytest.importorskip("torch")
    a, b = random_pair(12, n=64)
    index = nearest_neighbors(a, 5, dtype="float64")
    assert index.similarities.dtype == np.float64
    assert nearest_neighbors(a, 5).similarities.dtype == np.float32
    score64 = mutual_knn(torch.from_numpy(a), torch.from_numpy(b), 5, dtype="float64")
    wide = torch.randn(20, 40, requires_grad=True)  # a tensor that tracks gradients works too
    assert mutual_knn(wide, wide * 2, 3) == 1.0
    assert mutual_knn(wide[:, :8], wide[:, :8], 3) == 1.0
    assert score64 == pytest.approx(ref_mutual_knn_per_sample(a, b, 5).mean(), abs=1e-12)
    xn = ref_normalize(a)
    expected_sims = np.sort(xn @ xn.T - 3 * np.eye(64), axis=1)[:, ::-1][:, :5]
    np.testing.assert_allclose(index.similarities, expected_sims, atol=1e-12)


def test_neighbor_index_reuse_and_truncation():
    a, b = random_pair(13, n=70)
    ia, ib = nearest_neighbors(a, 12), nearest_neighbors(b, 12)
    for k in (1, 4, 12):
        assert mutual_knn(ia, ib, k) == mutual_knn(a, b, k)
    np.testing.assert_array_equal(ia.truncate(4).indices, nearest_neighbors(a, 4).indices)
    assert mutual_knn(ia, b, 4) == mutual_knn(a, b, 4)


def test_random_features_score_near_chance():
    rng = np.random.default_rng(14)
    n, k = 2000, 10
    score = mutual_knn(rng.normal(size=(n, 32)), rng.normal(size=(n, 32)), k)
    assert score == pytest.approx(k / (n - 1), abs=0.0025)  # ~5 standard errors


# ---------------------------------------------------------------- invariances

# D ranges past N so that both search paths run (normalise rows when N > D; scale the
# similarities when N <= D).
shapes = st.tuples(st.integers(12, 40), st.integers(2, 48), st.integers(1, 6))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), shape=shapes)
def test_invariances(seed, shape):
    n, d, k = shape
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, d))
    b = a @ rng.normal(size=(d, d)) + rng.normal(size=(n, d))
    base = mutual_knn(a, b, k, dtype="float64")
    perm = rng.permutation(n)
    assert mutual_knn(a[perm], b[perm], k, dtype="float64") == base
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    assert mutual_knn(a, b @ q, k, dtype="float64") == base
    scale = rng.uniform(0.1, 10.0, size=(n, 1))
    assert mutual_knn(a, b * scale, k, dtype="float64") == base
    assert mutual_knn(b, a, k, dtype="float64") == base
    assert mutual_knn(a, a, k) == 1.0
    assert linear_cka(a, b) == pytest.approx(linear_cka(b @ q, a), rel=1e-9)
    assert linear_cka(a, a) == pytest.approx(1.0)
