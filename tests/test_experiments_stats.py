"""Paired sign-flip test vs exact enumeration; per-sample analysis without a layer max."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from uaes_hf.experiments.comparisons import comparison_tests, difference_table, sign_flip_test
from uaes_hf.experiments.per_sample import fit_slope, per_sample_alignment, split_halves


def enumerate_p(d, alternative):
    """Independent exact p-value: every sign vector, written out longhand."""
    d = list(d)
    observed = sum(d) / len(d)
    hits = total = 0
    for signs in itertools.product([1, -1], repeat=len(d)):
        stat = sum(s * x for s, x in zip(signs, d, strict=True)) / len(d)
        total += 1
        if alternative == "greater":
            hits += stat >= observed - 1e-12
        elif alternative == "less":
            hits += stat <= observed + 1e-12
        else:
            hits += abs(stat) >= abs(observed) - 1e-12
    return hits / total


@pytest.mark.parametrize("alternative", ["greater", "less", "two-sided"])
def test_sign_flip_exact_matches_enumeration(alternative):
    rng = np.random.default_rng(0)
    for _ in range(5):
        d = rng.normal(0.01, 0.02, size=6)
        result = sign_flip_test(d, alternative=alternative)
        assert result.exact and result.n_flips == 64
        assert result.p_value == pytest.approx(enumerate_p(d, alternative))
        assert result.mean_difference == pytest.approx(d.mean())


def test_sign_flip_all_positive_21_pairs_and_monte_carlo():
    d = np.full(21, 0.01)  # the study's claim shape: all 21 pairs favour poems
    exact = sign_flip_test(d[:16], alternative="greater", n_flips=1 << 16)
    assert exact.exact and exact.p_value == pytest.approx(2.0**-16)
    mc = sign_flip_test(d, alternative="greater", n_flips=2000, seed=1)
    assert not mc.exact and mc.p_value == pytest.approx(1 / 2001)
    rng = np.random.default_rng(2)
    noisy = rng.normal(0.0, 1.0, size=10)
    approx = sign_flip_test(noisy, n_flips=20000, seed=3).p_value
    assert approx == pytest.approx(enumerate_p(noisy, "two-sided"), abs=0.02)
    with pytest.raises(ValueError, match="NaN"):
        sign_flip_test([0.1, np.nan])
    with pytest.raises(ValueError, match="alternative"):
        sign_flip_test([0.1], alternative="bigger")


def test_difference_table_and_tests_from_a_tidy_table():
    rows = []
    pairs = [("a", "b"), ("a", "c"), ("b", "c")]
    for side, shift in (("poems", 0.05), ("plain_texts", 0.0)):
        for i, (ma, mb) in enumerate(pairs):
            rows.append(
                {
                    "subset": f"poems_vs_plain/{side}",
                    "comparison": "poems_vs_plain",
                    "side": side,
                    "model_a": ma,
                    "model_b": mb,
                    "score": 0.2 + 0.01 * i + shift,
                    "calibrated": 0.1 + shift,
                    "n": 50,
                }
            )
    table = pd.DataFrame(rows)
    diff = difference_table(table, "poems_vs_plain", "poems", "plain_texts")
    assert diff["difference"].to_numpy() == pytest.approx([0.05] * 3)
    differences, tests = comparison_tests(table, ["poems_vs_plain"])
    row = tests[tests["quantity"] == "difference"].iloc[0]
    assert row["n_a_greater"] == 3 and row["p_a_greater"] == pytest.approx(1 / 8)


def brute_force_per_sample(x, y, k):
    """Independent per-sample mutual kNN: cosine, self excluded, |kNN_x(i) & kNN_y(i)| / k."""

    def neighbour_sets(z):
        z = z / np.linalg.norm(z, axis=1, keepdims=True)
        sim = z @ z.T
        np.fill_diagonal(sim, -np.inf)
        return [set(np.argsort(-row, kind="stable")[:k].tolist()) for row in sim]

    return np.array(
        [len(a & b) / k for a, b in zip(neighbour_sets(x), neighbour_sets(y), strict=True)]
    )


def chance_spaces(rng, n, models, n_layers=4, d=24):
    return {m: [rng.normal(size=(n, d)) for _ in range(n_layers)] for m in models}


def test_per_sample_on_chance_data_has_flat_slopes_and_chance_mean():
    rng = np.random.default_rng(0)
    n, k = 300, 10
    spaces = chance_spaces(rng, n, ["m1", "m2", "m3"], n_layers=3)
    covariates = {
        "n_words": rng.integers(5, 400, n).astype(float),
        "perplexity": np.exp(rng.normal(3, 0.5, n)),
        "aesthetic_score": rng.integers(1, 6, n).astype(float),
    }
    result = per_sample_alignment(
        spaces, [("m1", "m2"), ("m1", "m3"), ("m2", "m3")], covariates, k=k, mode="heldout", seed=0
    )
    chance = k / (result.n_report - 1)
    assert result.n_report == n - n // 2
    assert result.chance == pytest.approx(chance)
    means = result.slopes.groupby(["model_a", "model_b"])["mean_score"].first()
    # 9 layer pairs were searched on the other half; the report half is not inflated
    assert np.all(np.abs(means.to_numpy() - chance) < 0.5 * chance)
    assert np.all(np.abs(result.slopes["slope_per_sd"]) < 0.02)
    assert len(result.scores) == 3 * result.n_report
    # the per-sample max over layer pairs (what the study did) is several-fold inflated
    from uaes_hf.alignment.mutual_knn import overlap_counts
    from uaes_hf.alignment.neighbors import nearest_neighbors

    ia = [nearest_neighbors(x, k).indices for x in spaces["m1"]]
    ib = [nearest_neighbors(x, k).indices for x in spaces["m2"]]
    per_pair = np.stack([overlap_counts(a, b) / k for a in ia for b in ib])
    inflated = per_pair.max(axis=0).mean()
    assert inflated / (k / (n - 1)) > 3  # several-fold above its chance level
    assert means.max() / chance < 1.5  # ours stays at its chance level


def test_heldout_selection_finds_the_planted_layer_and_fixed_mode_uses_given_layers():
    rng = np.random.default_rng(1)
    n, k = 300, 8
    base = rng.normal(size=(n, 10))
    spaces = chance_spaces(rng, n, ["a", "b"], n_layers=3)
    spaces["a"][2] = base @ rng.normal(size=(10, 24))
    spaces["b"][1] = base @ rng.normal(size=(10, 24)) + 0.1 * rng.normal(size=(n, 24))
    cov = {"x": rng.normal(size=n)}
    held = per_sample_alignment(
        spaces, [("a", "b")], cov, k=k, layer_ids={"a": [0, 5, 10], "b": [0, 7, 14]}
    )
    assert (held.layers["layer_a"].iloc[0], held.layers["layer_b"].iloc[0]) == (10, 7)
    # The planted pair shares a 10-d latent through two DIFFERENT random linear maps, which
    # distort cosine neighbourhoods: its true score is about 0.4-0.55 (not near 1), so the
    # check is the exact value against brute force on the report half, far above chance.
    _, report = split_halves(n, seed=0)
    expected = brute_force_per_sample(spaces["a"][2][report], spaces["b"][1][report], k)
    scores = held.scores.sort_values("sample")["score"].to_numpy()
    assert scores == pytest.approx(expected)
    assert held.slopes["mean_score"].iloc[0] == pytest.approx(expected.mean())
    assert held.slopes["mean_score"].iloc[0] > 5 * held.chance
    fixed = per_sample_alignment(
        spaces, [("a", "b")], cov, k=k, mode="fixed", fixed_layers={"a": 0, "b": 0}
    )
    assert fixed.n_report == n and fixed.mode == "fixed"
    expected = brute_force_per_sample(spaces["a"][0], spaces["b"][0], k)
    assert fixed.scores["score"].to_numpy() == pytest.approx(expected)
    assert fixed.slopes["mean_score"].iloc[0] < 2 * fixed.chance  # unrelated layers: chance
    with pytest.raises(ValueError, match="covariate 'x' has"):
        per_sample_alignment(spaces, [("a", "b")], {"x": np.zeros(3)}, k=k)
    with pytest.raises(ValueError, match="mode"):
        per_sample_alignment(spaces, [("a", "b")], cov, k=k, mode="maximum")


def test_max_mode_is_the_per_sample_max_over_every_layer_pair_with_its_own_chance():
    rng = np.random.default_rng(2)
    n, k = 120, 6
    spaces = chance_spaces(rng, n, ["a", "b"], n_layers=3)
    cov = {"x": rng.normal(size=n)}
    result = per_sample_alignment(spaces, [("a", "b")], cov, k=k, mode="max", n_permutations=30)
    expected = np.max(
        [
            brute_force_per_sample(spaces["a"][i], spaces["b"][j], k)
            for i in range(3)
            for j in range(3)
        ],
        axis=0,
    )
    assert result.n_report == n and result.mode == "max"
    assert result.scores["score"].to_numpy() == pytest.approx(expected)
    slope = result.slopes.iloc[0]
    assert bool(slope["inflated"]) and slope["chance_one_pair"] == pytest.approx(k / (n - 1))
    # unrelated spaces: the max over 9 pairs sits at its own chance level, far above k/(N-1)
    assert slope["chance"] > 2 * k / (n - 1)
    assert abs(slope["mean_score"] - slope["chance"]) < 0.25 * slope["chance"]


def test_fit_slope_and_halves():
    x = np.arange(10.0)
    fit = fit_slope(x, 3 * x + 2)
    assert fit["slope"] == pytest.approx(3) and fit["r"] == pytest.approx(1)
    assert np.isnan(fit_slope(np.ones(5), x[:5])["slope"])
    a, b = split_halves(11, seed=2)
    assert sorted(np.concatenate([a, b]).tolist()) == list(range(11))
