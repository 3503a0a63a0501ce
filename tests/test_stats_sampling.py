"""The random plain texts: a draw from the whole pool at the distribution-aligned sample's
size, whose length and alignment-score distributions match the pool's. The complement of
the distribution-aligned sample (what the suite drew before) fails the same tests at these
sizes, so the tests can tell the two apart."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from uaes_hf.experiments.comparisons import build_subsets


def _data(seed: int, n_pool: int = 2000, n_poems: int = 900):
    """Plain texts whose features carry their length; poems that look like long texts."""
    rng = np.random.default_rng(seed)
    words = np.round(np.exp(rng.normal(2.5, 0.6, n_pool))).astype(int) + 1
    plain = pd.DataFrame({"id": [f"t{i}" for i in range(n_pool)], "n_words": words})
    plain_features = np.column_stack(
        [np.log(words) + rng.normal(0, 0.3, n_pool), rng.normal(size=(n_pool, 7))]
    )
    poem_words = np.round(np.exp(rng.normal(3.3, 0.5, n_poems))).astype(int) + 1
    poems = pd.DataFrame(
        {
            "id": [f"p{i}" for i in range(n_poems)],
            "n_words": poem_words,
            "aesthetic_score": rng.integers(1, 6, n_poems).astype(float),
            "form_category": "formatted",
        }
    )
    poem_features = np.column_stack(
        [np.log(poem_words) + rng.normal(0, 0.3, n_poems), rng.normal(size=(n_poems, 7))]
    )
    return poems, plain, poem_features, plain_features


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_plain_texts_match_the_pool_and_the_complement_does_not(seed):
    poems, plain, poem_features, plain_features = _data(seed)
    plan = build_subsets(
        poems,
        plain,
        ["plain_random_vs_aligned"],
        min_size=20,
        seed=seed,
        plain_features=plain_features,
        poem_features=poem_features,
    )
    sides = plan.by_comparison("plain_random_vs_aligned")
    random_rows = sides["plain_random"].indices
    aligned_rows = sides["plain_distribution_aligned"].indices
    assert random_rows.size == aligned_rows.size == 900  # same N, no repeats
    assert np.unique(random_rows).size == random_rows.size
    words = plain["n_words"].to_numpy()
    scores = plan.plain_alignment_scores
    assert scores is not None and scores.shape == (2000,)
    # the random draw: its lengths and alignment scores look like the pool's
    assert ks_2samp(words[random_rows], words).pvalue > 0.001
    assert ks_2samp(scores[random_rows], scores).pvalue > 0.001
    # the aligned sample is poem-like (long), and its complement is not like the pool
    complement = np.setdiff1d(np.arange(2000), aligned_rows)
    assert ks_2samp(words[complement], words).pvalue < 1e-6
    assert ks_2samp(scores[complement], scores).pvalue < 1e-6
    assert np.median(words[aligned_rows]) > np.median(words)
    # the stored diagnostics say the same, and the overlap is recorded
    notes = plan.notes["plain_random"]
    assert notes["ks_length_pvalue"] > 0.001 and notes["ks_score_pvalue"] > 0.001
    shared = np.intersect1d(random_rows, aligned_rows).size
    assert notes["shared"] == shared > 0
    assert any(s["what"] == "random plain texts" for s in plan.substitutions)


def test_random_draw_size_follows_the_aligned_sample_and_caps_are_recorded():
    poems, plain, poem_features, plain_features = _data(5, n_pool=300, n_poems=400)
    plan = build_subsets(
        poems,
        plain,
        ["distribution_aligned", "plain_random_vs_aligned"],
        min_size=20,
        seed=0,
        plain_features=plain_features,
        poem_features=poem_features,
        aligned_poems=poems,  # a given length-aligned set of 400
        aligned_features=poem_features,
    )
    sides = plan.by_comparison("plain_random_vs_aligned")
    # 0.9 of the pool at most (the study would draw 400 with replacement)
    assert sides["plain_distribution_aligned"].n == int(0.9 * 300)
    assert sides["plain_random"].n == int(0.9 * 300)
    what = [s["what"] for s in plan.substitutions]
    assert "distribution-aligned plain texts" in what
    drawn = build_subsets(poems, plain, ["length_aligned"], min_size=5, seed=0)
    assert [s["what"] for s in drawn.substitutions] == ["length-aligned poems"]


def test_study_sizes_keep_whole_subsets_and_cut_datasets_to_the_first_rows():
    poems, plain, poem_features, plain_features = _data(1, n_pool=150, n_poems=120)
    poems["aesthetic_score"] = np.r_[np.full(30, 5.0), np.full(90, 2.0)]
    plan = build_subsets(
        poems, plain, ["poems_vs_plain", "high_vs_low"], min_size=20, seed=0, match=False
    )
    vs = plan.by_comparison("poems_vs_plain")
    assert vs["poems"].indices.tolist() == list(range(120))
    assert vs["plain_texts"].indices.tolist() == list(range(120))  # first min(N) rows
    hl = plan.by_comparison("high_vs_low")
    assert (hl["high_score"].n, hl["low_score"].n) == (30, 90)  # unmatched, as the study
    matched = build_subsets(poems, plain, ["high_vs_low"], min_size=20, seed=0)
    assert {s.n for s in matched.subsets} == {30}
