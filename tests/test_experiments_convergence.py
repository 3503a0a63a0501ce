"""Convergence tables vs an independent brute-force mutual kNN; matched N; layer options."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from uaes_hf.experiments.comparisons import build_subsets, match_sizes
from uaes_hf.experiments.convergence import (
    TIDY_COLUMNS,
    candidate_layers,
    convergence_rows,
    matrix,
)


def brute_mutual_knn(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Reference implementation: full cosine matrices, self excluded, explicit set overlap."""

    def knn(x):
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        sim = x @ x.T
        np.fill_diagonal(sim, -np.inf)
        return [set(np.argsort(-row, kind="stable")[:k]) for row in sim]

    na, nb = knn(a), knn(b)
    return float(np.mean([len(sa & sb) / k for sa, sb in zip(na, nb, strict=True)]))


def planted_stacks(rng, n=90, models=(("a", 4), ("b", 3), ("c", 5))):
    base = rng.normal(size=(n, 12))
    stacks = {}
    for name, n_layers in models:
        layers = []
        for layer in range(n_layers):
            noise = 0.3 + 1.5 * layer / max(n_layers - 1, 1)
            layers.append(base @ rng.normal(size=(12, 20)) + noise * rng.normal(size=(n, 20)))
        stacks[name] = np.stack(layers, axis=1)
    return stacks


def test_matrix_matches_brute_force_best_layer_pair_per_pair():
    rng = np.random.default_rng(0)
    stacks = planted_stacks(rng)
    rows = np.sort(rng.choice(90, size=70, replace=False))
    out = convergence_rows(stacks, rows, subset="s", k=5, n_permutations=30, n_bootstrap=30)
    table = pd.DataFrame(out)
    assert list(table.columns) == list(TIDY_COLUMNS)
    assert len(table) == 3
    for r in table.itertuples():
        grid = {
            (la, lb): brute_mutual_knn(stacks[r.model_a][rows, la], stacks[r.model_b][rows, lb], 5)
            for la in range(stacks[r.model_a].shape[1])
            for lb in range(stacks[r.model_b].shape[1])
        }
        best = max(grid.values())
        assert r.score == pytest.approx(best, abs=1e-12)
        assert grid[(r.layer_a, r.layer_b)] == pytest.approx(best, abs=1e-12)
        assert r.n == 70 and r.k == 5 and r.chance == pytest.approx(5 / 69)
        assert r.ci_low <= r.score <= r.ci_high
        assert r.p_value < 0.05 and r.calibrated > 0  # planted shared structure
        assert r.n_layer_pairs == stacks[r.model_a].shape[1] * stacks[r.model_b].shape[1]
    m = matrix(table, "s", ["a", "b", "c"])
    assert np.isnan(np.diag(m)).all()
    np.testing.assert_allclose(m, m.T)


def test_unrelated_models_are_at_chance_and_not_significant():
    rng = np.random.default_rng(1)
    stacks = {m: rng.normal(size=(150, 3, 16)) for m in "xy"}
    (row,) = convergence_rows(
        stacks, np.arange(150), subset="s", k=10, n_permutations=99, n_bootstrap=50
    )
    assert row["p_value"] > 0.05
    assert row["calibrated"] < 0.05
    # the max over 9 layer pairs sits above chance: that is what the search correction handles
    assert row["score"] >= row["chance"] * 0.8


@pytest.mark.parametrize("selection", ["last", "fixed"])
def test_last_and_fixed_layers(selection):
    rng = np.random.default_rng(2)
    stacks = planted_stacks(rng, n=60)
    fixed = {"a": 1, "b": 0, "c": 2}
    out = convergence_rows(
        stacks,
        np.arange(60),
        subset="s",
        k=5,
        layer_selection=selection,
        fixed_layers=fixed,
        n_permutations=10,
        n_bootstrap=10,
    )
    for r in out:
        if selection == "last":
            assert (r["layer_a"], r["layer_b"]) == (
                stacks[r["model_a"]].shape[1] - 1,
                stacks[r["model_b"]].shape[1] - 1,
            )
        else:
            assert (r["layer_a"], r["layer_b"]) == (fixed[r["model_a"]], fixed[r["model_b"]])
        assert r["n_layer_pairs"] == 1
        assert r["score"] == pytest.approx(
            brute_mutual_knn(
                stacks[r["model_a"]][:, r["layer_a"]], stacks[r["model_b"]][:, r["layer_b"]], 5
            )
        )
    with pytest.raises(ValueError, match="needs a layer"):
        convergence_rows(
            stacks, np.arange(60), subset="s", k=5, layer_selection="fixed", fixed_layers={"a": 0}
        )


def test_cross_family_pairs_and_candidate_layers():
    rng = np.random.default_rng(3)
    stacks = planted_stacks(rng, n=50)
    out = convergence_rows(
        {"a": stacks["a"]},
        np.arange(50),
        subset="x",
        k=4,
        stacks_b={"b": stacks["b"], "c": stacks["c"]},
        n_permutations=5,
        n_bootstrap=5,
        max_layers=2,
    )
    assert [(r["model_a"], r["model_b"]) for r in out] == [("a", "b"), ("a", "c")]
    assert all(r["layer_a"] in (0, 3) for r in out)
    assert candidate_layers(31, 6)[-1] == 30 and len(candidate_layers(31, 6)) == 6
    assert candidate_layers(5, 0) == [0, 1, 2, 3, 4]


def test_match_sizes_gives_equal_n_deterministically():
    groups = {"a": np.arange(100), "b": np.arange(200, 237), "c": np.arange(50)}
    one = match_sizes(groups, seed=3)
    two = match_sizes(groups, seed=3)
    assert {k: v.size for k, v in one.items()} == {"a": 37, "b": 37, "c": 37}
    assert all(np.array_equal(one[k], two[k]) for k in one)
    assert np.array_equal(one["b"], np.arange(200, 237))
    assert set(one["a"]) <= set(groups["a"])


def test_every_comparison_has_matched_n_sides():
    rng = np.random.default_rng(4)
    n_poems, n_plain = 160, 140
    poems = pd.DataFrame(
        {
            "n_words": rng.integers(10, 300, n_poems),
            "aesthetic_score": rng.choice(
                [1, 2, 3, 4, 5, np.nan], n_poems, p=[0.1, 0.2, 0.3, 0.2, 0.1, 0.1]
            ),
            "form_category": rng.choice(
                ["formatted", "free_verse", "ambiguous", "unknown"], n_poems
            ),
        }
    )
    plain = pd.DataFrame({"n_words": rng.integers(5, 120, n_plain)})
    plan = build_subsets(
        poems,
        plain,
        [
            "poems_vs_plain",
            "high_vs_low",
            "formatted_vs_free",
            "short_vs_long",
            "length_aligned",
            "distribution_aligned",
            "plain_random_vs_aligned",
            "clusters",
        ],
        min_size=12,
        seed=0,
        plain_features=rng.normal(size=(n_plain, 8)),
        poem_features=rng.normal(size=(n_poems, 8)),
        cluster_labels=rng.integers(0, 2, n_poems),
    )
    by = {}
    for s in plan.subsets:
        by.setdefault(s.comparison, []).append(s)
    for comparison, sides in by.items():
        assert len({s.n for s in sides}) == 1, comparison
    formats = by["formatted_vs_free"]
    for s in formats:
        assert set(poems["form_category"].to_numpy()[s.indices]) == {s.side}
    high, low = by["high_vs_low"]
    assert (poems["aesthetic_score"].to_numpy()[high.indices] >= 4).all()
    assert (poems["aesthetic_score"].to_numpy()[low.indices] <= 3).all()
    assert by["poems_vs_plain"][0].n == min(n_poems, n_plain)
    # too strict a minimum skips (and reports) instead of failing
    strict = build_subsets(poems, plain, ["high_vs_low"], min_size=500, seed=0)
    assert not strict.subsets and "too few" in strict.skipped[0].reason
    # a given length-aligned set (the repo's aligned_s) is used as its own dataset
    aligned = pd.DataFrame({"n_words": rng.integers(5, 120, 30)})
    given = build_subsets(
        poems,
        plain,
        ["length_aligned", "distribution_aligned", "plain_random_vs_aligned"],
        min_size=12,
        seed=0,
        plain_features=rng.normal(size=(n_plain, 8)),
        poem_features=rng.normal(size=(n_poems, 8)),
        aligned_poems=aligned,
        aligned_features=rng.normal(size=(30, 8)),
    )
    sides = {(s.comparison, s.side): s for s in given.subsets}
    length_side = sides[("length_aligned", "poems_length_aligned")]
    assert length_side.dataset == "poems_aligned" and length_side.indices.tolist() == list(
        range(30)
    )
    assert sides[("length_aligned", "plain_texts")].n == 30
    dist_side = sides[("distribution_aligned", "plain_distribution_aligned")]
    assert dist_side.dataset == "plain_texts" and dist_side.n == 30
    assert len(set(dist_side.indices)) == 30  # no repeated plain text
    notes = given.notes["length_aligned"]
    assert notes["sampled"] == 30 and notes["ks_after"] < notes["ks_before"]


def test_subset_rows_are_a_combination_not_a_permutation():
    # the same rows in any order give the same score (neighbour sets are order free)
    rng = np.random.default_rng(5)
    stacks = planted_stacks(rng, n=40, models=(("a", 2), ("b", 2)))
    rows = np.arange(40)
    first = convergence_rows(stacks, rows, subset="s", k=3, n_permutations=5, n_bootstrap=5)
    perm = rng.permutation(40)
    second = convergence_rows(stacks, rows[perm], subset="s", k=3, n_permutations=5, n_bootstrap=5)
    assert first[0]["score"] == pytest.approx(second[0]["score"])
    assert list(itertools.chain([1])) == [1]
