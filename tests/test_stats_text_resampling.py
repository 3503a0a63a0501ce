"""The headline test over texts: its scores against a brute-force mutual kNN written here,
its false-positive rate when both sides come from one pool, its power on a planted
difference, its interval's coverage, invariances, and bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uaes_hf.experiments.lexical import tfidf_gram
from uaes_hf.experiments.text_resampling import (
    PooledSpaces,
    mean_difference,
    neighbour_members,
    pair_scores,
    text_resampling_test,
)


def brute_mutual_knn(x: np.ndarray, y: np.ndarray, k: int) -> float:
    """Platonic-rep's definition, written out: cosine kNN (self excluded), shared fraction."""

    def knn(z: np.ndarray) -> list[set[int]]:
        z = z / np.linalg.norm(z, axis=1, keepdims=True)
        sim = z @ z.T
        out = []
        for i in range(len(z)):
            order = sorted((j for j in range(len(z)) if j != i), key=lambda j: (-sim[i, j], j))
            out.append(set(order[:k]))
        return out

    a, b = knn(x), knn(y)
    return float(np.mean([len(a[i] & b[i]) / k for i in range(len(x))]))


def _stacks(rng: np.random.Generator, n: int, models: str = "abc", layers: int = 2, shift=None):
    latent = rng.normal(size=(n, 6))
    if shift is not None:
        latent = latent * shift[:, None]
    return {
        m: [latent @ rng.normal(size=(6, 16)) + rng.normal(size=(n, 16)) for _ in range(layers)]
        for m in models
    }


def test_pair_scores_equal_a_brute_force_best_layer_mutual_knn():
    rng = np.random.default_rng(3)
    stacks = _stacks(rng, 70, layers=3)
    pool = PooledSpaces.build(stacks, {m: [0, 1, 2] for m in stacks})
    rows = np.sort(rng.choice(70, size=40, replace=False))
    pairs = list(itertools.combinations("abc", 2))
    got = pair_scores(pool, rows, pairs, k=4)
    want = [
        max(
            brute_mutual_knn(stacks[a][i][rows], stacks[b][j][rows], 4)
            for i in range(3)
            for j in range(3)
        )
        for a, b in pairs
    ]
    np.testing.assert_allclose(got, want, atol=1e-6)
    # a restricted search uses only the layers named
    only = pair_scores(pool, rows, [("a", "b")], k=4, use={"a": [2], "b": [0]})
    assert only[0] == pytest.approx(brute_mutual_knn(stacks["a"][2][rows], stacks["b"][0][rows], 4))


def test_ties_take_the_lower_position_first_and_every_row_has_k():
    x = np.array([[1.0, 0.0]] * 4 + [[0.0, 1.0]] * 2)  # four identical rows
    members = neighbour_members(PooledSpaces.build({"m": [x]}, {"m": [0]}).grams, np.arange(6), 2)
    assert members.sum(axis=2).tolist() == [[2] * 6]
    assert np.flatnonzero(members[0, 3]).tolist() == [0, 1]  # ties: lower positions
    assert np.flatnonzero(members[0, 0]).tolist() == [1, 2]


def test_statistic_at_full_n_is_the_mean_of_per_pair_differences():
    rng = np.random.default_rng(4)
    stacks = _stacks(rng, 60)
    pool = PooledSpaces.build(stacks, {m: [0, 1] for m in stacks})
    pairs = list(itertools.combinations("abc", 2))
    a, b = np.arange(30), np.arange(30, 60)
    want = np.mean(
        [
            max(
                brute_mutual_knn(stacks[p][i][a], stacks[q][j][a], 5)
                for i in (0, 1)
                for j in (0, 1)
            )
            - max(
                brute_mutual_knn(stacks[p][i][b], stacks[q][j][b], 5)
                for i in (0, 1)
                for j in (0, 1)
            )
            for p, q in pairs
        ]
    )
    test = text_resampling_test(pool, 30, 30, k=5, n_permutations=0, n_subsamples=0)
    assert test.observed == pytest.approx(want, abs=1e-6)
    assert np.isnan(test.p_value) and np.isnan(test.ci_low)


def _null_replicate(seed: int, n: int = 36, b_signal: float = 1.0, draws: int = 39):
    rng = np.random.default_rng(seed)
    scale = np.ones(2 * n)
    scale[n:] = b_signal  # < 1: side B's texts share less structure across the models
    stacks = _stacks(rng, 2 * n, shift=scale)
    pool = PooledSpaces.build(stacks, {m: [0, 1] for m in stacks})
    return text_resampling_test(
        pool, n, n, k=4, n_permutations=draws, n_subsamples=draws, seed=seed
    )


def test_false_positive_rate_when_both_sides_come_from_one_pool():
    """200 data sets in which A and B are two draws from one pool: p <= 0.05 in at most
    5% of them, within Monte Carlo error (3 standard errors)."""
    alpha, reps = 0.05, 200
    results = [_null_replicate(seed) for seed in range(reps)]
    rejected = np.mean([r.p_value <= alpha for r in results])
    assert rejected <= alpha + 3 * np.sqrt(alpha * (1 - alpha) / reps)
    # the half-sample interval covers the null difference (0) about as often as promised
    covered = np.mean([r.ci_low <= 0.0 <= r.ci_high for r in results])
    assert covered >= 0.95 - 3 * np.sqrt(0.95 * 0.05 / reps)


def test_detects_a_planted_difference():
    results = [_null_replicate(seed, b_signal=0.4) for seed in range(30)]
    assert np.mean([r.p_value <= 0.05 for r in results]) >= 0.8
    assert np.mean([r.ci_low > 0 for r in results]) >= 0.8
    assert all(r.observed > 0 for r in results)


def _unequal_replicate(seed: int, a_signal: float = 1.0, n_a: int = 20, n_b: int = 60):
    """Sides of different sizes (the study's own sizes are unequal): mutual kNN sits higher
    on the smaller side, so the null of T is centred well above 0."""
    rng = np.random.default_rng(seed)
    scale = np.ones(n_a + n_b)
    scale[:n_a] = a_signal  # < 1: side A's texts share less structure across the models
    stacks = _stacks(rng, n_a + n_b, shift=scale)
    pool = PooledSpaces.build(stacks, {m: [0, 1] for m in stacks})
    return text_resampling_test(pool, n_a, n_b, k=4, n_permutations=39, n_subsamples=0, seed=seed)


def test_unequal_sizes_keep_the_false_positive_rate_and_centre_the_null():
    alpha, reps = 0.05, 120
    results = [_unequal_replicate(seed) for seed in range(reps)]
    assert np.mean([r.null_mean for r in results]) > 0.1  # the size effect the null carries
    rejected = np.mean([r.p_value <= alpha for r in results])
    assert rejected <= alpha + 3 * np.sqrt(alpha * (1 - alpha) / reps)


def test_unequal_sizes_detect_an_effect_towards_zero():
    """Side A less aligned than its size predicts: T stays positive (the size effect) but
    falls below the null's centre. A two-sided test on |T| never rejects here; the test on
    the distance from the null's mean does."""
    results = [_unequal_replicate(seed, a_signal=0.5) for seed in range(30)]
    observed = np.mean([r.observed for r in results])
    assert 0 < observed < np.mean([r.null_mean for r in results])
    assert np.mean([r.p_value <= 0.05 for r in results]) >= 0.8


def test_p_value_counts_null_splits_add_one():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5))
    pool = PooledSpaces.build({"a": [x], "b": [x]}, {"a": [0], "b": [0]})
    test = text_resampling_test(pool, 20, 20, k=3, n_permutations=9, n_subsamples=0)
    # identical spaces: every split scores 1 - 1 = 0, so |null| >= |0| for all 9 splits
    assert test.observed == 0.0 and test.p_value == 1.0


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), angle=st.floats(0.1, 3.0))
def test_statistic_is_invariant_to_row_order_within_sides_and_rotation(seed, angle):
    rng = np.random.default_rng(seed)
    stacks = _stacks(rng, 40, models="ab", layers=1)
    pool = PooledSpaces.build(stacks, {m: [0] for m in stacks})
    base = mean_difference(pool, np.arange(20), np.arange(20, 40), [("a", "b")], 4)
    shuffled = mean_difference(pool, rng.permutation(20), 20 + rng.permutation(20), [("a", "b")], 4)
    rotation = np.eye(16)
    c, s = np.cos(angle), np.sin(angle)
    rotation[:2, :2] = [[c, -s], [s, c]]
    rotated = {m: [layer @ rotation * 3.0 for layer in stack] for m, stack in stacks.items()}
    pool_r = PooledSpaces.build(rotated, {m: [0] for m in rotated})
    turned = mean_difference(pool_r, np.arange(20), np.arange(20, 40), [("a", "b")], 4)
    assert shuffled == pytest.approx(base, abs=1e-12)
    assert turned == pytest.approx(base, abs=1e-6)


def test_bad_input_is_a_clear_value_error():
    x = np.random.default_rng(0).normal(size=(20, 4))
    pool = PooledSpaces.build({"a": [x], "b": [x]}, {"a": [0], "b": [0]})
    with pytest.raises(ValueError, match="pool has 20 rows"):
        text_resampling_test(pool, 10, 12)
    with pytest.raises(ValueError, match="k=10 needs"):
        neighbour_members(pool.grams, np.arange(8), 10)
    with pytest.raises(ValueError, match="same pooled rows"):
        PooledSpaces.build({"a": [x], "b": [x[:5]]}, {"a": [0], "b": [0]})
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        PooledSpaces.build({"a": [bad]}, {"a": [0]})
    with pytest.raises(ValueError, match="ci_level"):
        text_resampling_test(pool, 10, 10, k=3, ci_level=1.5)


def test_tfidf_gram_matches_a_brute_force_cosine_of_word_weights():
    texts = ["the red rose", "a red red rose", "grey sea and sky", "sky"]
    vocabulary = sorted({w for t in texts for w in t.split()})
    n = len(texts)
    df = {w: sum(w in t.split() for t in texts) for w in vocabulary}
    rows = []
    for t in texts:
        words = t.split()
        rows.append(
            [
                (1 + np.log(words.count(w))) * (np.log((1 + n) / (1 + df[w])) + 1)
                if w in words
                else 0.0
                for w in vocabulary
            ]
        )
    x = np.array(rows)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    np.testing.assert_allclose(tfidf_gram(texts), x @ x.T, atol=1e-6)
    with pytest.raises(ValueError, match="no words"):
        tfidf_gram(["", "  "])
