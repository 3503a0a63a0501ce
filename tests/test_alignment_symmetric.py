"""The symmetric neighbour search against the row-panel reference and a float64 brute force.

``_search(..., symmetric=False)`` is the row-panel search (the full Gram product in row
panels), kept as the reference. Small tiles (``tile=``) give many tile pairs on small N.

Two kinds of data:

- exact data: normalised entries are 0 or +-2**-a, so every dot product is exact in any
  summation order. Every arithmetic gives the same numbers, ties between distinct rows are
  everywhere, and the symmetric search must equal the reference and the brute force bit for
  bit, indices and similarities.
- general float data: the two searches may round a dot product differently (another GEMM
  shape); values must then stay within the dot-product rounding bound, and indices may
  differ only between two candidates whose exact similarities are within twice that bound.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from uaes_hf.alignment import AmbiguousNeighborsWarning, _symmetric, nearest_neighbors
from uaes_hf.alignment._symmetric import EMPTY, _NumpyOps, _TorchOps, symmetric_topk
from uaes_hf.alignment.neighbors import _search

# ---------------------------------------------------------------- independent references


def brute_force(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """float64 cosines, self excluded, ordered by (similarity desc, index asc)."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.sqrt((x * x).sum(axis=1, keepdims=True))
    xn = x / np.where(norms > 0, norms, 1.0)
    sims = xn @ xn.T
    n = len(x)
    order = np.empty((n, k), dtype=np.int64)
    values = np.empty((n, k))
    for i in range(n):
        others = [j for j in range(n) if j != i]
        others.sort(key=lambda j, row=sims[i]: (-row[j], j))
        order[i] = others[:k]
        values[i] = sims[i, others[:k]]
    return order, values


def rounding_bound(x: np.ndarray, dtype: str) -> np.ndarray:
    """|fl(x_i . x_j) - (x_i . x_j)| <= gamma_D * sum_k |x_ik x_jk| for unit rows, any order.

    Two searches that sum in different orders differ by at most twice that; the scaled
    path adds a few roundings of the scale products (4 u |value| covers them).
    """
    u = 2.0**-24 if dtype == "float32" else 2.0**-53
    d = x.shape[1]
    gamma = d * u / (1 - d * u)
    xa = np.abs(np.asarray(x, dtype=np.float64))
    norms = np.sqrt((xa * xa).sum(axis=1, keepdims=True))
    xa = xa / np.where(norms > 0, norms, 1.0)
    return 2 * gamma * (xa @ xa.T) * 1.01 + 8 * u


def search(x, k, **kw):
    """Run a search, returning the index and the warning messages it emitted."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        index = _search(x, k, **kw)
    return index, sorted(str(w.message) for w in caught)


# ---------------------------------------------------------------- data


def exact_rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """Rows with 0, 1, 4 or 16 entries of +-2**p: normalised, all entries are 0 or +-2**-a."""
    x = np.zeros((n, d), dtype=np.float32)
    for i in range(n):
        count = int(rng.choice([c for c in (0, 1, 4, 16) if c <= d]))
        cols = rng.choice(d, size=count, replace=False)
        x[i, cols] = rng.choice([-1.0, 1.0], size=count) * 2.0 ** int(rng.integers(-3, 4))
    return x


def with_duplicates(rng: np.random.Generator, x: np.ndarray, share: float) -> np.ndarray:
    """Copy some rows onto others, some scaled by 2 (equal after normalisation)."""
    x = x.copy()
    n = len(x)
    count = int(share * n)
    if count:
        src, dst = rng.integers(0, n, count), rng.integers(0, n, count)
        x[dst] = x[src] * rng.choice([1.0, 2.0], size=(count, 1)).astype(x.dtype)
    return x


# k near N-1 is drawn often: the last slots then hold masked and padded entries
def pick_k(draw, n):
    return draw(st.one_of(st.integers(1, n - 1), st.integers(max(1, n - 3), n - 1)))


@st.composite
def problems(draw, max_n=70):
    n = draw(st.integers(2, max_n))
    d = draw(st.integers(1, 40))  # both D < N (normalised rows) and D >= N (scaled path)
    return dict(
        seed=draw(st.integers(0, 2**32 - 1)),
        n=n,
        d=d,
        k=pick_k(draw, n),
        tile=draw(st.integers(1, 24)),
        chunks=(draw(st.integers(1, 64)), draw(st.integers(1, 4096))),
        duplicates=draw(st.sampled_from([0.0, 0.1, 0.4])),
    )


# ---------------------------------------------------------------- exact data: bit for bit


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(p=problems(), dtype=st.sampled_from(["float32", "float64"]))
def test_exact_data_equals_reference_and_brute_force_bit_for_bit(p, dtype):
    rng = np.random.default_rng(p["seed"])
    x = with_duplicates(rng, exact_rows(rng, p["n"], p["d"]), p["duplicates"])
    k = p["k"]
    reference, ref_warnings = search(x, k, dtype=dtype, symmetric=False)
    expected_idx, expected_sims = brute_force(x, k)
    np.testing.assert_array_equal(reference.indices, expected_idx)  # the reference itself
    for chunk in p["chunks"]:
        index, sym_warnings = search(x, k, dtype=dtype, tile=p["tile"], chunk_size=chunk)
        np.testing.assert_array_equal(index.indices, reference.indices)
        np.testing.assert_array_equal(index.similarities, reference.similarities)
        assert index.similarities.dtype == reference.similarities.dtype
        np.testing.assert_array_equal(index.similarities.astype(np.float64), expected_sims)
        assert sym_warnings == ref_warnings


def test_exact_data_with_default_tiles_and_many_ties():
    rng = np.random.default_rng(3)
    x = exact_rows(rng, 2500, 24)  # spans several default CPU tiles; massive exact ties
    reference, ref_warnings = search(x, 7, symmetric=False)
    index, sym_warnings = search(x, 7)
    np.testing.assert_array_equal(index.indices, reference.indices)
    np.testing.assert_array_equal(index.similarities, reference.similarities)
    assert sym_warnings == ref_warnings and ref_warnings  # duplicates are announced
    some = rng.choice(2500, 40, replace=False)
    expected_idx, _ = brute_force(x, 7)
    np.testing.assert_array_equal(index.indices[some], expected_idx[some])


# ---------------------------------------------------------------- general float data


def assert_close_lists(x, index, indices, similarities, bound):
    """Values within ``bound``; indices equal except between two candidates whose exact
    (float64) similarities are within twice the bound of each other (a near tie)."""
    rows = np.arange(len(x))[:, None]
    gap = np.abs(index.similarities.astype(np.float64) - similarities)
    assert (gap <= bound[rows, indices]).all()
    i, p = np.nonzero(index.indices != indices)
    if i.size:
        x64 = x.astype(np.float64)
        xn = x64 / np.linalg.norm(x64, axis=1, keepdims=True).clip(1e-300)
        a, b = index.indices[i, p], indices[i, p]
        s_a, s_b = (xn[i] * xn[a]).sum(1), (xn[i] * xn[b]).sum(1)
        assert (np.abs(s_a - s_b) <= 2 * (bound[i, a] + bound[i, b])).all()


def assert_matches_reference(x, index, reference, dtype):
    bound = rounding_bound(x, dtype)
    assert_close_lists(x, index, reference.indices, reference.similarities, bound)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(p=problems(), dtype=st.sampled_from(["float32", "float64"]))
def test_float_data_matches_reference_within_rounding(p, dtype):
    rng = np.random.default_rng(p["seed"])
    x = rng.standard_normal((p["n"], p["d"])).astype(np.float32)
    if rng.random() < 0.5:
        x[:, : max(1, p["d"] // 3)] *= 1e-3  # uneven columns
    x = with_duplicates(rng, x, p["duplicates"])
    k = p["k"]
    reference, ref_warnings = search(x, k, dtype=dtype, symmetric=False)
    first, first_warnings = search(x, k, dtype=dtype, tile=p["tile"], chunk_size=p["chunks"][0])
    second, _ = search(x, k, dtype=dtype, tile=p["tile"], chunk_size=p["chunks"][1])
    # chunk-size independence is exact, by construction
    np.testing.assert_array_equal(first.indices, second.indices)
    np.testing.assert_array_equal(first.similarities, second.similarities)
    assert_matches_reference(x, first, reference, dtype)
    if any("duplicate" in w for w in ref_warnings):
        assert first_warnings == ref_warnings
    # the float64 brute force: one rounding of each dot product (plus the normalisation)
    expected_idx, expected_sims = brute_force(x, k)
    bound = rounding_bound(x, dtype)
    assert_close_lists(x, first, expected_idx, expected_sims, bound)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(30, 90), tile=st.integers(1, 16))
def test_similarity_of_a_pair_is_one_number(seed, n, tile):
    """sim[i, j] and sim[j, i] are the same number (rows normalised: N > D)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 8)).astype(np.float32)
    index = _search(x, n - 1, tile=tile)  # every pair appears in both lists
    table = np.full((n, n), np.nan, dtype=np.float32)
    table[np.arange(n)[:, None], index.indices] = index.similarities
    off = ~np.eye(n, dtype=bool)
    np.testing.assert_array_equal(table[off], table.T[off])


def test_default_tiles_equal_reference_where_the_blas_rounds_blocks_alike():
    """With the default CPU tiles, results are today's bit for bit when the BLAS rounds a
    tile block like the same entries of a row panel (MKL does for these shapes)."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2300, 48)).astype(np.float32)
    x[700] = x[3]
    x[2200] = 2.0 * x[50]
    keys = torch.nn.functional.normalize(torch.from_numpy(x), dim=1)
    block = keys[:512] @ keys[512:1024].T
    panel = keys[:1024] @ keys.T
    reference, _ = search(x, 10, symmetric=False)
    index, _ = search(x, 10)
    if torch.equal(block, panel[:512, 512:1024]):
        np.testing.assert_array_equal(index.indices, reference.indices)
        np.testing.assert_array_equal(index.similarities, reference.similarities)
    assert_matches_reference(x, index, reference, "float32")


# ---------------------------------------------------------------- internals and devices


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 80),
    d=st.integers(1, 20),
    tile=st.integers(1, 30),
    float64=st.booleans(),
    scaled=st.booleans(),
)
def test_torch_and_numpy_bookkeeping_agree(seed, n, d, tile, float64, scaled):
    """The CUDA code path (torch bookkeeping) run on CPU equals the CPU one (numpy)."""
    rng = np.random.default_rng(seed)
    dtype = torch.float64 if float64 else torch.float32
    keys = torch.nn.functional.normalize(torch.from_numpy(rng.normal(size=(n, d))), dim=1)
    keys = keys.to(dtype)
    slots = int(rng.integers(1, n + 1))
    scale = torch.from_numpy(rng.uniform(0.5, 2.0, n)).to(dtype) if scaled else None
    common = dict(tile=tile, budget=int(rng.integers(1, 2 * n * n)), column_scale=scale)
    host = symmetric_topk(keys, slots, host_bookkeeping=True, **common)
    device = symmetric_topk(keys, slots, host_bookkeeping=False, **common)
    assert torch.equal(host[0], device[0]) and torch.equal(host[1], device[1])
    values, indices = host
    assert bool((indices != torch.arange(n)[:, None]).all())  # never itself
    assert bool((values[:, 1:] <= values[:, :-1]).all())  # ordered
    real = indices[values > -torch.inf]
    assert bool(((real >= 0) & (real < n)).all())
    assert int((values > -torch.inf).sum()) == n * min(slots, n - 1)  # full lists


def test_all_neighbours_and_ties_at_k_warn_like_the_reference():
    x = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [1.0, 1.0]])
    for k in (1, 2, 4):
        reference, ref_warnings = search(x, k, symmetric=False)
        index, sym_warnings = search(x, k, tile=2)
        np.testing.assert_array_equal(index.indices, reference.indices)
        assert sym_warnings == ref_warnings
    with pytest.warns(AmbiguousNeighborsWarning, match="ties at the k-th"):
        nearest_neighbors(x, 1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((5000, 64))
    cpu = nearest_neighbors(x, 10, dtype="float64")
    gpu = nearest_neighbors(x, 10, dtype="float64", device="cuda")
    np.testing.assert_array_equal(gpu.indices, cpu.indices)
    np.testing.assert_allclose(gpu.similarities, cpu.similarities, rtol=0, atol=1e-12)
    assert math.isfinite(float(gpu.similarities.min()))


@pytest.mark.parametrize("ops", [_NumpyOps, _TorchOps])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_merge_orders_like_a_python_sort(ops, dtype):
    """Merging two lists keeps the top slots by (value desc, index asc): -0.0 ties 0.0,
    negatives and -inf (empty) order correctly; checked against Python's sort."""
    rng = np.random.default_rng(17)
    pool = np.array([-0.0, 0.0, 1.5, -1.5, 1e-40, -1e-40, 3.0, -3.0, -np.inf], dtype=dtype)
    for _ in range(200):
        width_a, width_b, slots = 4, int(rng.integers(1, 6)), int(rng.integers(1, 5))
        vals = rng.choice(pool, size=(3, width_a + width_b)).astype(dtype)
        idx = np.stack([rng.permutation(50)[: width_a + width_b] for _ in range(3)])
        idx = np.where(vals == -np.inf, EMPTY, idx)
        args = [vals[:, :width_a], idx[:, :width_a], vals[:, width_a:], idx[:, width_a:]]
        if ops is _TorchOps:
            args = [torch.from_numpy(np.ascontiguousarray(a)) for a in args]
        got_v, got_i = ops.merge(*args, slots)
        got_v, got_i = np.asarray(got_v), np.asarray(got_i)
        for row in range(3):
            entries = sorted(zip(vals[row], idx[row], strict=True), key=lambda e: (-e[0], e[1]))
            finite = [e for e in entries if e[0] > -np.inf][:slots]
            assert got_i[row, : len(finite)].tolist() == [e[1] for e in finite]
            assert got_v[row, : len(finite)].tolist() == [e[0] for e in finite]
            assert (got_v[row, len(finite) :] == -np.inf).all()


def test_each_pair_is_computed_once_even_if_the_blas_is_not_symmetric(monkeypatch):
    """A BLAS may round x_i . x_j and x_j . x_i differently; emulate one that does (a few
    ulps of position-dependent noise): both lists of a pair must still see one number."""
    real = _symmetric._product

    def asymmetric(a, b, out=None):
        result = real(a, b, out=out)
        rows = torch.arange(result.shape[0])[:, None]
        cols = torch.arange(result.shape[1])[None, :]
        wobble = 1 + ((rows * 7 + cols * 3) % 5 - 2).to(result.dtype) * 2e-7
        result.mul_(wobble)
        return result

    monkeypatch.setattr(_symmetric, "_product", asymmetric)
    rng = np.random.default_rng(21)
    n = 70
    x = rng.standard_normal((n, 6)).astype(np.float32)
    for tile in (7, 16, 64):
        index = _search(x, n - 1, tile=tile)
        table = np.full((n, n), np.nan, dtype=np.float32)
        table[np.arange(n)[:, None], index.indices] = index.similarities
        off = ~np.eye(n, dtype=bool)
        np.testing.assert_array_equal(table[off], table.T[off])
