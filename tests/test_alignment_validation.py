"""Boundary checks of uaes_hf.alignment, the ambiguity warning, and neighbour-index reuse.

Every bad input must raise a ``ValueError`` whose message names the problem, from every
public entry point, before any numpy/torch arithmetic runs.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from uaes_hf import alignment
from uaes_hf.alignment import (
    AmbiguousNeighborsWarning,
    NeighborIndex,
    best_layer_pair,
    bootstrap_ci,
    bootstrap_mean_ci,
    calibrate,
    chance_level,
    cknna,
    linear_cka,
    mutual_knn,
    mutual_knn_matrix,
    mutual_knn_per_sample,
    nearest_neighbors,
    permutation_test,
    score,
    unbiased_cka,
)
from uaes_hf.alignment import neighbors as neighbors_module

RNG = np.random.default_rng(0)
GOOD = RNG.normal(size=(30, 6))
OTHER = RNG.normal(size=(30, 4))


def with_nan(x):
    x = x.copy()
    x[4, 2] = np.nan
    return x


def with_inf(x):
    x = x.copy()
    x[7, 0] = -np.inf
    return x


# (name, A, B, message) for inputs that every two-matrix function must reject.
BAD_PAIRS = [
    ("mismatched N", GOOD, OTHER[:20], "A has 30 rows but B has 20"),
    ("NaN", with_nan(GOOD), OTHER, "1 NaN or Inf"),
    ("Inf", GOOD, with_inf(OTHER), "B contains 1 NaN or Inf"),
    ("1-D", GOOD[:, 0], OTHER, "must be a 2-D"),
    ("3-D", GOOD, OTHER[:, :, None], "must be a 2-D"),
    ("zero rows", np.zeros((0, 6)), np.zeros((0, 4)), "zero rows"),
    ("zero columns", np.zeros((30, 0)), OTHER, "zero columns"),
    ("strings", GOOD.astype(str), OTHER, "real numbers"),
    ("booleans", GOOD > 0, OTHER, "real numbers"),
    ("ragged list", [[1.0, 2.0], [3.0]] * 15, OTHER, "rectangular"),
]

TWO_MATRIX_FUNCTIONS = {
    "mutual_knn": lambda a, b: mutual_knn(a, b, 5),
    "mutual_knn_per_sample": lambda a, b: mutual_knn_per_sample(a, b, 5),
    "cknna": lambda a, b: cknna(a, b, 5),
    "linear_cka": linear_cka,
    "unbiased_cka": unbiased_cka,
    "permutation_test": lambda a, b: permutation_test(a, b, 5, n_permutations=5),
    "bootstrap_ci": lambda a, b: bootstrap_ci(a, b, 5, n_bootstrap=5),
    "score": lambda a, b: score(a, b, "mutual_knn", 5),
    "mutual_knn_matrix": lambda a, b: mutual_knn_matrix([a, b], 5),
}


@pytest.mark.parametrize("function", sorted(TWO_MATRIX_FUNCTIONS))
@pytest.mark.parametrize("case", BAD_PAIRS, ids=[case[0] for case in BAD_PAIRS])
def test_bad_inputs_raise_value_errors_that_name_the_problem(function, case):
    _, a, b, message = case
    if function == "mutual_knn_matrix" and message.startswith("A has"):
        message = "feature_sets\\[0\\] has 30 rows but feature_sets\\[1\\] has 20"
    if function == "mutual_knn_matrix" and message.startswith("B contains"):
        message = "contains 1 NaN or Inf"
    if function == "permutation_test" and case[0] == "3-D":  # a 3-D input is a layer stack
        message = "A is an N x D matrix but B is a layer stack"
    with pytest.raises(ValueError, match=message):
        TWO_MATRIX_FUNCTIONS[function](a, b)


@pytest.mark.parametrize(
    "k, message",
    [
        (0, "k must be an integer >= 1, got k=0"),
        (-3, "k must be an integer >= 1, got k=-3"),
        (2.5, "k must be an integer >= 1, got 2.5"),
        (True, "k must be an integer >= 1, got True"),
        ("10", "k must be an integer >= 1, got '10'"),
        (30, "N <= k"),
        (31, "needs at least k \\+ 1 = 32 samples"),
    ],
)
@pytest.mark.parametrize(
    "function",
    [mutual_knn, mutual_knn_per_sample, cknna, bootstrap_ci, permutation_test],
    ids=lambda f: f.__name__,
)
def test_bad_k(function, k, message):
    if function is cknna and k in (0, -3):
        message = "CKNNA needs k >= 2"
    with pytest.raises(ValueError, match=message):
        function(GOOD, OTHER, k)


def test_other_argument_errors():
    cases = [
        (lambda: nearest_neighbors(GOOD, 3, dtype="float16"), "dtype must be 'float32' or"),
        (lambda: nearest_neighbors(GOOD, 3, device="tpu"), "unknown device 'tpu'"),
        (lambda: nearest_neighbors(GOOD, 3, chunk_size=0), "chunk_size must be a positive"),
        (lambda: cknna(GOOD, OTHER, 1), "CKNNA needs k >= 2"),
        (lambda: unbiased_cka(GOOD[:3], OTHER[:3]), "at least N=4 samples"),
        (lambda: score(GOOD, OTHER, "cosine"), "unknown metric 'cosine'"),
        (lambda: permutation_test(GOOD, OTHER, 3, metric="rsa"), "unknown metric 'rsa'"),
        (lambda: permutation_test(GOOD, OTHER, 3, alpha=1.5), "alpha must be a number"),
        (lambda: permutation_test(GOOD, OTHER, 3, n_permutations=0), "n_permutations must"),
        (lambda: bootstrap_ci(GOOD, OTHER, 3, confidence=95), "confidence must be"),
        (lambda: bootstrap_mean_ci(np.zeros((3, 3))), "non-empty 1-D array"),
        (lambda: calibrate(0.5, np.array([])), "non-empty 1-D"),
        (lambda: chance_level(10, 10), "N <= k"),
        (lambda: mutual_knn_matrix([], 3), "feature_sets is empty"),
        (
            lambda: permutation_test(GOOD[:, None], OTHER, 3, metric="cka"),
            "A is a layer stack but B is an N x D matrix",
        ),
    ]
    if not _cuda_available():
        cases.append((lambda: nearest_neighbors(GOOD, 3, device="cuda"), "CUDA is not available"))
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()


def _cuda_available():
    import torch

    return torch.cuda.is_available()


def test_torch_inputs_are_validated_too():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="A contains 1 NaN or Inf"):
        mutual_knn(torch.from_numpy(with_nan(GOOD)), OTHER, 3)
    with pytest.raises(ValueError, match="must be a 2-D tensor"):
        mutual_knn(torch.zeros(30, 2, 2), OTHER, 3)
    with pytest.raises(ValueError, match="zero rows"):
        mutual_knn(torch.zeros(0, 2), torch.zeros(0, 2), 3)
    with pytest.raises(ValueError, match="real numbers"):
        mutual_knn(torch.zeros(30, 2, dtype=torch.bool), OTHER, 3)


def test_layer_stack_errors():
    stack = RNG.normal(size=(30, 3, 4))
    with pytest.raises(ValueError, match="must be a 3-D layer stack"):
        best_layer_pair(GOOD, stack, 3)
    with pytest.raises(ValueError, match="must be a 3-D layer stack"):
        best_layer_pair(stack[:, :, :, None], stack, 3)
    with pytest.raises(ValueError, match="zero layers"):
        best_layer_pair(np.zeros((30, 0, 4)), stack, 3)
    with pytest.raises(ValueError, match="empty list of layers"):
        best_layer_pair([], stack, 3)
    with pytest.raises(ValueError, match="different numbers of rows"):
        best_layer_pair([GOOD, GOOD[:20]], stack, 3)
    with pytest.raises(ValueError, match="A has 30 rows but B has 20"):
        best_layer_pair(stack, stack[:20], 3)
    with pytest.raises(ValueError, match=r"B\[1\] contains 1 NaN"):
        best_layer_pair(stack, [GOOD, with_nan(GOOD)], 3)
    with pytest.raises(ValueError, match="N <= k"):
        best_layer_pair(stack, stack, 30)


def test_neighbor_index_errors():
    index = nearest_neighbors(GOOD, 4)
    with pytest.raises(ValueError, match="built with k=4; it cannot give k=6"):
        mutual_knn(index, OTHER, 6)
    with pytest.raises(ValueError, match="cannot give k=6"):
        index.truncate(6)
    with pytest.raises(ValueError, match="A has 30 rows but B has 20"):
        mutual_knn(index, OTHER[:20], 3)
    with pytest.raises(ValueError, match="N x k integer array"):
        NeighborIndex(np.zeros((3, 3), dtype=np.int64), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="outside \\[0, N\\)"):
        NeighborIndex(np.full((5, 2), 7), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="must be integers"):
        NeighborIndex(np.zeros((5, 2)), np.zeros((5, 2)))


# ---------------------------------------------------------------- ambiguity warning


def test_duplicate_rows_warn_and_generic_data_does_not():
    x = RNG.normal(size=(50, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # generic data: no warning at all
        nearest_neighbors(x, 5)
    x[10] = x[3]
    x[20] = 3.0 * x[4]  # a positive multiple is a duplicate after normalisation
    with pytest.warns(AmbiguousNeighborsWarning, match="2 duplicate row"):
        index = nearest_neighbors(x, 5)
    assert index.indices[3, 0] == 10 and index.indices[10, 0] == 3
    assert index.similarities[3, 0] == pytest.approx(1.0)


def test_ties_at_the_kth_place_warn():
    # Row 0 = (1, 0) is exactly as similar to (1, 1) as to (1, -1): at k=1 its set is
    # ambiguous (the lower index wins); at k=2 both are in and nothing is ambiguous for it.
    x = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, -1.0], [-1.0, 0.5], [-2.0, -3.0]])
    with pytest.warns(AmbiguousNeighborsWarning, match="ties at the k-th neighbour"):
        index = nearest_neighbors(x, 1, dtype="float64")
    assert index.indices[0].tolist() == [1]
    assert sorted(nearest_neighbors(x, 2).indices[0].tolist()) == [1, 2]


# ---------------------------------------------------------------- reuse


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


def test_layer_search_and_matrix_search_each_layer_once(count_searches):
    rng = np.random.default_rng(1)
    stack_a, stack_b = rng.normal(size=(60, 4, 5)), rng.normal(size=(60, 3, 7))
    result = best_layer_pair(stack_a, stack_b, 5, permutations=30)
    assert len(count_searches) == 4 + 3  # L_A + L_B, not L_A * L_B, and none per permutation
    assert result.grid.shape == (4, 3)
    count_searches.clear()
    mutual_knn_matrix([stack_a[:, i] for i in range(4)] + [stack_b[:, 0]], 5)
    assert len(count_searches) == 5  # M searches for M*(M-1)/2 pairs
    count_searches.clear()
    permutation_test(stack_a[:, 0], stack_b[:, 0], 5, n_permutations=50)
    permutation_test(stack_a[:, 0], stack_b[:, 0], 5, metric="cknna", n_permutations=20)
    assert len(count_searches) == 2 + 2


def test_prebuilt_indices_need_no_search(count_searches):
    rng = np.random.default_rng(2)
    layers_a = [rng.normal(size=(60, 5)) for _ in range(3)]
    layers_b = [rng.normal(size=(60, 8)) for _ in range(2)]
    index_a = [nearest_neighbors(x, 10) for x in layers_a]
    index_b = [nearest_neighbors(x, 10) for x in layers_b]
    count_searches.clear()
    grid = best_layer_pair(index_a, index_b, 6).grid
    assert count_searches == []
    expected = [[mutual_knn(a, b, 6) for b in layers_b] for a in layers_a]
    np.testing.assert_array_equal(grid, expected)
    count_searches.clear()
    assert mutual_knn(index_a[0], index_b[0], 10) == mutual_knn(layers_a[0], layers_b[0], 10)
    assert cknna(index_a[0], index_b[0], 6) == cknna(layers_a[0], layers_b[0], 6)
    assert len(count_searches) == 2 + 2


def test_public_api_is_complete():
    for name in alignment.__all__:
        assert getattr(alignment, name) is not None
