"""The study's comparisons as matched-N subsets, their difference tables and paired tests.

Each comparison is a set of *sides* (e.g. poems vs plain texts). Mutual kNN depends on N
(chance is about k / (N - 1)), so every side of a comparison is subsampled, with a fixed
seed, to the size of its smallest side before any score is computed (``match=False``: the
study's sizes instead, each filtered subset whole and poems vs plain texts cut to the
first min(N) rows of each).

The *random* plain texts are a seeded draw from the whole pool of plain texts at the size
of the distribution-aligned sample (so they may share rows with it, as two random draws
would); the distribution-aligned sample is fitted in the features passed in (the stage
passes an LLM's last layer). Every fallback is recorded in ``SubsetPlan.substitutions``.

A claim such as "convergence on poems > on plain texts" is described across the model
pairs with a paired sign-flip test on the per-pair differences (exact enumeration when
there are few pairs); model pairs share models and the texts are a sample, so the
headline test is :mod:`uaes_hf.experiments.text_resampling`.

Example:
    >>> import numpy as np
    >>> t = sign_flip_test(np.array([0.02, 0.03, 0.01, 0.04]), alternative="greater")
    >>> t.exact, round(t.p_value, 4)
    (True, 0.0625)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

ALIGNED_POEMS = "poems_aligned"  # dataset name of a given length-aligned poem set

# Which comparisons have which sides, and which side difference the report shows (a - b).
COMPARISON_SIDES: dict[str, tuple[str, ...]] = {
    "poems_vs_plain": ("poems", "plain_texts"),
    "high_vs_low": ("high_score", "low_score"),
    "formatted_vs_free": ("formatted", "free_verse"),
    "short_vs_long": ("short", "long"),
    "length_aligned": ("poems_length_aligned", "plain_texts"),
    "distribution_aligned": ("poems_length_aligned", "plain_distribution_aligned"),
    "plain_random_vs_aligned": ("plain_random", "plain_distribution_aligned"),
    "clusters": ("poems", "cluster_1", "cluster_2"),
}
COMPARISON_TITLES: dict[str, str] = {
    "poems_vs_plain": "Poems vs plain texts",
    "high_vs_low": "High-score (>= 4) vs low-score (<= 3) poems",
    "formatted_vs_free": "Formatted poems vs free verse (ambiguous excluded)",
    "short_vs_long": "Short vs long poems (median split)",
    "length_aligned": "Length-aligned poems vs plain texts",
    "distribution_aligned": "Length-aligned poems vs distribution-aligned plain texts",
    "plain_random_vs_aligned": "Random vs distribution-aligned plain texts",
    "clusters": "All poems vs the two semantic clusters",
}


@dataclass(frozen=True)
class Subset:
    """Rows of one dataset (``poems`` or ``plain_texts``) forming one side of a comparison."""

    comparison: str
    side: str
    dataset: str
    indices: np.ndarray

    @property
    def name(self) -> str:
        """``comparison/side``, the ``subset`` column of the tidy tables."""
        return f"{self.comparison}/{self.side}"

    @property
    def n(self) -> int:
        """Number of rows."""
        return int(self.indices.size)


@dataclass
class SkippedComparison:
    """A comparison that could not be formed, and why (shown in the report)."""

    comparison: str
    reason: str


def match_sizes(
    groups: Mapping[str, np.ndarray], seed: int = 0, cap: int | None = None
) -> dict[str, np.ndarray]:
    """Subsample every group to the smallest group's size (and at most ``cap``), sorted.

    The draw depends only on ``seed`` and the group's name, so adding a comparison never
    changes the rows of another.

    Example:
        >>> out = match_sizes({"a": np.arange(10), "b": np.arange(4)}, seed=0)
        >>> {name: rows.size for name, rows in out.items()}
        {'a': 4, 'b': 4}
    """
    if not groups:
        raise ValueError("match_sizes needs at least one group")
    n = min(int(np.asarray(rows).size) for rows in groups.values())
    if cap is not None:
        n = min(n, cap)
    out = {}
    for name, rows in groups.items():
        rows = np.asarray(rows)
        if rows.size > n:
            rng = np.random.default_rng([seed, _name_seed(name)])
            rows = rng.choice(rows, size=n, replace=False)
        out[name] = np.sort(rows)
    return out


def _name_seed(name: str) -> int:
    import zlib

    return zlib.crc32(name.encode())


@dataclass
class SubsetPlan:
    """All subsets to score, plus the comparisons skipped, the sampling diagnostics and
    every substitution made (``{"stage", "what", "detail"}``, also listed in the report).

    ``plain_alignment_scores``: each plain text's fitted probability of looking like the
    length-aligned poems (the distribution alignment's sampling weight before
    normalisation), when that sample was drawn.
    """

    subsets: list[Subset] = field(default_factory=list)
    skipped: list[SkippedComparison] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    substitutions: list[dict[str, str]] = field(default_factory=list)
    plain_alignment_scores: np.ndarray | None = None

    def substitute(self, what: str, detail: str) -> None:
        """Record (and log) one fallback of the align stage."""
        from uaes_hf.experiments.fallbacks import record

        record(self.substitutions, "align", what, detail)

    def by_comparison(self, comparison: str) -> dict[str, Subset]:
        """side -> Subset for one comparison."""
        return {s.side: s for s in self.subsets if s.comparison == comparison}


def build_subsets(
    poems: Any,
    plain_texts: Any,
    comparisons: Sequence[str],
    *,
    min_size: int,
    seed: int = 0,
    plain_features: np.ndarray | None = None,
    poem_features: np.ndarray | None = None,
    cluster_labels: np.ndarray | None = None,
    aligned_poems: Any = None,
    aligned_features: np.ndarray | None = None,
    match: bool = True,
    distribution_model: str = "",
) -> SubsetPlan:
    """Form every requested comparison's matched-N sides.

    Args:
        poems: DataFrame with ``n_words``, ``aesthetic_score``, ``form_category``.
        plain_texts: DataFrame with ``n_words``.
        comparisons: names from :data:`COMPARISON_SIDES`.
        min_size: a side smaller than this skips its comparison (reported, not silent).
        seed: sampling seed.
        plain_features, poem_features: one model's ``N x D`` features, for the
            distribution-aligned plain-text sample (the study's PCA + logistic method);
            the stage passes the distribution model's last layer.
        cluster_labels: KMeans label per poem (0..K-1), for ``clusters``.
        aligned_poems: an already length-aligned poem set (the repo's ``aligned_s``, with
            ``n_words``); its sides use dataset ``poems_aligned``. ``None``: the poems are
            length-aligned here by sampling without replacement.
        aligned_features: the same model's features of ``aligned_poems``.
        match: subsample every side to its comparison's smallest side (``False``: the
            study's sizes, see the module docstring).
        distribution_model: the name of the model of ``plain_features`` (for the notes).

    Returns:
        A :class:`SubsetPlan`.
    """
    from uaes_hf.data.lengths import split_at_median
    from uaes_hf.data.sampling import distribution_aligned_sample, length_aligned_sample

    plan = SubsetPlan()
    poem_rows = np.arange(len(poems))
    plain_rows = np.arange(len(plain_texts))
    poem_words = poems["n_words"].to_numpy(dtype=float)
    plain_words = plain_texts["n_words"].to_numpy(dtype=float)
    scores = poems["aesthetic_score"].to_numpy(dtype=float)  # null -> NaN
    forms = poems["form_category"].astype(str).to_numpy()

    length_aligned: np.ndarray | None = None
    dist_aligned: np.ndarray | None = None
    aligned_dataset = "poems"
    small_features = poem_features
    needs_length = {"length_aligned", "distribution_aligned"} & set(comparisons)
    if needs_length and aligned_poems is not None and len(aligned_poems) and len(plain_texts):
        from scipy.stats import ks_2samp

        aligned_words = aligned_poems["n_words"].to_numpy(dtype=float)
        length_aligned = np.arange(len(aligned_poems))
        aligned_dataset = ALIGNED_POEMS
        small_features = aligned_features
        before, after = ks_2samp(poem_words, plain_words), ks_2samp(aligned_words, plain_words)
        plan.notes["length_aligned"] = {
            "source": "the poems repo's length-aligned set (aligned_s: no repeats)",
            "sampled": int(length_aligned.size),
            "ks_before": float(before.statistic),
            "ks_pvalue_before": float(before.pvalue),
            "ks_after": float(after.statistic),
            "ks_pvalue_after": float(after.pvalue),
        }
    elif needs_length and len(poems) and len(plain_texts):
        sample = length_aligned_sample(poem_words, plain_words, replace=False, seed=seed)
        length_aligned = np.sort(sample.indices)
        plan.notes["length_aligned"] = sample.summary()
        if aligned_poems is None:
            plan.substitute(
                "length-aligned poems",
                f"no length-aligned poem set configured (data.aligned_poems): "
                f"{length_aligned.size} of the sampled poems drawn here without replacement",
            )
        else:
            plan.substitute(
                "length-aligned poems",
                "the configured length-aligned set is empty: drawn from the sampled poems",
            )
    needs_dist = {"distribution_aligned", "plain_random_vs_aligned"} & set(comparisons)
    if needs_dist and plain_features is not None and small_features is not None:
        small_rows = (
            length_aligned
            if length_aligned is not None and length_aligned.size
            else np.arange(len(small_features))
        )
        # The study draws as many plain texts as there are poems, with replacement above
        # 0.9 of the pool; repeated rows make neighbour sets ambiguous, so never repeat.
        n_take = min(small_rows.size, int(0.9 * plain_rows.size))
        if n_take >= 2 and plain_rows.size >= 2 and small_rows.size >= 2:
            dist = distribution_aligned_sample(
                small_features[small_rows], plain_features, n_take, seed=seed
            )
            dist_aligned = np.sort(dist.indices)
            plan.plain_alignment_scores = dist.weights / dist.weights.max()
            plan.notes["distribution_aligned"] = {
                "n": int(dist_aligned.size),
                "pca": dist.n_components,
                "model": distribution_model,
                "pool": int(plain_rows.size),
            }
            if n_take < small_rows.size:
                plan.substitute(
                    "distribution-aligned plain texts",
                    f"{n_take} drawn (0.9 of the pool of {plain_rows.size}) for "
                    f"{small_rows.size} length-aligned poems; the study would draw "
                    f"{small_rows.size} with replacement",
                )
    plain_random: np.ndarray | None = None
    if dist_aligned is not None:
        plain_random = _random_draw(plain_rows, dist_aligned.size, seed)
        shared = np.intersect1d(plain_random, dist_aligned).size
        plan.notes["plain_random"] = _draw_notes(
            plain_random, plain_words, plan.plain_alignment_scores, shared
        )
        if shared:
            plan.substitute(
                "random plain texts",
                f"a random draw of {plain_random.size} from the pool of {plain_rows.size} "
                f"shares {shared} rows with the distribution-aligned sample (as two "
                f"independent draws would; expected about "
                f"{dist_aligned.size**2 / plain_rows.size:.1f})",
            )

    for comparison in comparisons:
        groups: dict[str, tuple[str, np.ndarray]] = {}
        reason = ""
        if comparison == "poems_vs_plain":
            groups = {"poems": ("poems", poem_rows), "plain_texts": ("plain_texts", plain_rows)}
        elif comparison == "high_vs_low":
            groups = {
                "high_score": ("poems", poem_rows[scores >= 4]),
                "low_score": ("poems", poem_rows[scores <= 3]),
            }
            if np.isnan(scores).all():
                reason = "no poem has an aesthetic score"
        elif comparison == "formatted_vs_free":
            groups = {
                "formatted": ("poems", poem_rows[forms == "formatted"]),
                "free_verse": ("poems", poem_rows[forms == "free_verse"]),
            }
        elif comparison == "short_vs_long":
            halves = np.array(split_at_median(list(poem_words))) if len(poems) else np.array([])
            groups = {
                "short": ("poems", poem_rows[halves == "short"]),
                "long": ("poems", poem_rows[halves == "long"]),
            }
        elif comparison == "length_aligned":
            if length_aligned is None:
                reason = "no length-aligned sample"
            else:
                groups = {
                    "poems_length_aligned": (aligned_dataset, length_aligned),
                    "plain_texts": ("plain_texts", plain_rows),
                }
        elif comparison == "distribution_aligned":
            if length_aligned is None or dist_aligned is None:
                reason = "no distribution-aligned sample (needs features of the reference model)"
            else:
                groups = {
                    "poems_length_aligned": (aligned_dataset, length_aligned),
                    "plain_distribution_aligned": ("plain_texts", dist_aligned),
                }
        elif comparison == "plain_random_vs_aligned":
            if dist_aligned is None or plain_random is None:
                reason = "no distribution-aligned sample (needs features of the reference model)"
            else:
                groups = {
                    "plain_random": ("plain_texts", plain_random),
                    "plain_distribution_aligned": ("plain_texts", dist_aligned),
                }
        elif comparison == "clusters":
            if cluster_labels is None:
                reason = "no cluster labels"
            else:
                groups = {"poems": ("poems", poem_rows)}
                for label in range(int(cluster_labels.max()) + 1 if cluster_labels.size else 0):
                    groups[f"cluster_{label + 1}"] = ("poems", poem_rows[cluster_labels == label])
        else:
            raise ValueError(
                f"unknown comparison {comparison!r}; expected {list(COMPARISON_SIDES)}"
            )
        if not reason:
            small = {side: rows.size for side, (_, rows) in groups.items() if rows.size < min_size}
            if small:
                reason = f"too few samples for a side (min {min_size}): {small}"
        if reason:
            plan.skipped.append(SkippedComparison(comparison, reason))
            plan.substitute(f"comparison {comparison}", f"skipped: {reason}")
            continue
        named = {f"{comparison}/{side}": rows for side, (_, rows) in groups.items()}
        matched = match_sizes(named, seed=seed) if match else _study_sizes(comparison, named)
        for side, (dataset, _) in groups.items():
            plan.subsets.append(Subset(comparison, side, dataset, matched[f"{comparison}/{side}"]))
    return plan


# Comparisons across two datasets, which the study cut to the first min(N) rows of each.
CUT_TO_FIRST_ROWS = ("poems_vs_plain", "length_aligned")


def _study_sizes(comparison: str, groups: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The study's sizes: whole filtered subsets; two datasets cut to their first min(N)."""
    if comparison not in CUT_TO_FIRST_ROWS:
        return {name: np.sort(np.asarray(rows)) for name, rows in groups.items()}
    n = min(int(np.asarray(rows).size) for rows in groups.values())
    return {name: np.sort(np.asarray(rows))[:n] for name, rows in groups.items()}


def _random_draw(pool: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` rows of ``pool`` drawn uniformly without replacement (seeded), sorted.

    Example:
        >>> _random_draw(np.arange(100), 5, seed=0).size
        5
    """
    rng = np.random.default_rng([seed, _name_seed("plain_random")])
    return np.sort(rng.choice(pool, size=min(n, pool.size), replace=False))


def _draw_notes(
    rows: np.ndarray, words: np.ndarray, scores: np.ndarray | None, shared: int
) -> dict[str, Any]:
    """How a random draw compares with its pool (two-sample KS on length and score)."""
    from scipy.stats import ks_2samp

    notes: dict[str, Any] = {"n": int(rows.size), "pool": int(words.size), "shared": shared}
    length = ks_2samp(words[rows], words)
    notes.update(ks_length=float(length.statistic), ks_length_pvalue=float(length.pvalue))
    if scores is not None:
        score = ks_2samp(scores[rows], scores)
        notes.update(ks_score=float(score.statistic), ks_score_pvalue=float(score.pvalue))
    return notes


# ---------------------------------------------------------------------------------------------
# Differences and the paired test


@dataclass(frozen=True)
class SignFlipResult:
    """Paired sign-flip permutation test on per-pair differences."""

    mean_difference: float
    p_value: float
    n_pairs: int
    n_positive: int
    exact: bool
    n_flips: int
    alternative: str


def sign_flip_test(
    differences: Sequence[float] | np.ndarray,
    *,
    alternative: str = "two-sided",
    n_flips: int = 10000,
    seed: int = 0,
) -> SignFlipResult:
    """Test whether the mean of paired differences is 0 by flipping their signs.

    With ``2**n <= n_flips`` every sign pattern is enumerated (exact p-value); otherwise
    ``n_flips`` random patterns plus the observed one are used (``(b + 1) / (m + 1)``).

    Args:
        differences: one difference per model pair (e.g. score on poems - on plain texts).
        alternative: ``"greater"`` (mean > 0), ``"less"`` or ``"two-sided"``.
        n_flips: Monte Carlo budget.
        seed: Monte Carlo seed.

    Example:
        >>> sign_flip_test([1.0, 2.0, 3.0], alternative="greater").p_value
        0.125
    """
    d = np.asarray(differences, dtype=float).ravel()
    if d.size == 0:
        raise ValueError("sign_flip_test needs at least one difference")
    if not np.all(np.isfinite(d)):
        raise ValueError("differences contain NaN or Inf")
    if alternative not in ("greater", "less", "two-sided"):
        raise ValueError(
            f"alternative must be 'greater', 'less' or 'two-sided', got {alternative!r}"
        )
    observed = d.mean()
    # Exact enumeration up to 2**20 sign patterns (chunked), else Monte Carlo.
    exact = d.size <= _MAX_EXACT_PAIRS and 2**d.size <= max(n_flips, 1)
    null = _all_sign_means(d) if exact else _random_sign_means(d, n_flips, seed)
    tol = 1e-12 * max(1.0, abs(observed))
    if alternative == "greater":
        hits = np.count_nonzero(null >= observed - tol)
    elif alternative == "less":
        hits = np.count_nonzero(null <= observed + tol)
    else:
        hits = np.count_nonzero(np.abs(null) >= abs(observed) - tol)
    p_value = hits / null.size if exact else (hits + 1) / (null.size + 1)
    return SignFlipResult(
        mean_difference=float(observed),
        p_value=float(min(1.0, p_value)),
        n_pairs=int(d.size),
        n_positive=int(np.count_nonzero(d > 0)),
        exact=bool(exact),
        n_flips=int(null.size),
        alternative=alternative,
    )


_MAX_EXACT_PAIRS = 20


def _all_sign_means(d: np.ndarray) -> np.ndarray:
    """Mean of s * d for every sign vector s in {+1, -1}^n (bit j of the index flips d_j)."""
    n = d.size
    out = np.empty(2**n)
    bits = np.arange(n)
    step = 1 << 16
    for start in range(0, 2**n, step):
        codes = np.arange(start, min(start + step, 2**n))
        signs = 1.0 - 2.0 * ((codes[:, None] >> bits) & 1)
        out[start : start + codes.size] = signs @ d / n
    return out


def _random_sign_means(d: np.ndarray, n_flips: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.choice((1.0, -1.0), size=(n_flips, d.size)) @ d / d.size


def difference_table(convergence: Any, comparison: str, side_a: str, side_b: str) -> Any:
    """Per model pair: score on ``side_a`` minus score on ``side_b`` (raw and calibrated).

    Args:
        convergence: the tidy convergence table (one row per subset x model pair).

    Returns:
        DataFrame with model_a, model_b, score_a, score_b, difference,
        calibrated_a, calibrated_b, calibrated_difference, n.
    """
    import pandas as pd

    table = convergence[convergence["comparison"] == comparison]
    a = table[table["side"] == side_a].set_index(["model_a", "model_b"])
    b = table[table["side"] == side_b].set_index(["model_a", "model_b"])
    joined = a.join(b, lsuffix="_a", rsuffix="_b", how="inner")
    if joined.empty:
        return pd.DataFrame(
            columns=[
                "comparison",
                "side_a",
                "side_b",
                "model_a",
                "model_b",
                "score_a",
                "score_b",
                "difference",
                "calibrated_a",
                "calibrated_b",
                "calibrated_difference",
                "n",
                "n_b",
            ]
        )
    out = pd.DataFrame(
        {
            "comparison": comparison,
            "side_a": side_a,
            "side_b": side_b,
            "score_a": joined["score_a"],
            "score_b": joined["score_b"],
            "difference": joined["score_a"] - joined["score_b"],
            "calibrated_a": joined["calibrated_a"],
            "calibrated_b": joined["calibrated_b"],
            "calibrated_difference": joined["calibrated_a"] - joined["calibrated_b"],
            "n": joined["n_a"],
            "n_b": joined["n_b"],
        }
    ).reset_index()
    return out


def comparison_tests(
    convergence: Any, comparisons: Sequence[str], *, n_flips: int = 10000, seed: int = 0
) -> tuple[Any, Any]:
    """Difference tables and sign-flip tests for every comparison present in ``convergence``.

    Returns:
        ``(differences, tests)``: the concatenated difference tables, and one row per
        (comparison, side_a, side_b, quantity) with mean difference, #pairs with a > b,
        p-values (two-sided and one-sided "a > b"). A quantity that is NaN for some pair
        (calibrated scores of a run without permutations) has no test row.
    """
    import pandas as pd

    diffs, rows = [], []
    for comparison in comparisons:
        sides = COMPARISON_SIDES[comparison]
        pairs = (
            [(sides[0], sides[1])]
            if len(sides) == 2
            else [(sides[1], sides[2]), (sides[0], sides[1]), (sides[0], sides[2])]
        )
        for side_a, side_b in pairs:
            table = difference_table(convergence, comparison, side_a, side_b)
            if table.empty:
                continue
            diffs.append(table)
            for quantity in ("difference", "calibrated_difference"):
                values = table[quantity].to_numpy(dtype=float)
                if not np.all(np.isfinite(values)):
                    continue
                two = sign_flip_test(values, alternative="two-sided", n_flips=n_flips, seed=seed)
                one = sign_flip_test(values, alternative="greater", n_flips=n_flips, seed=seed)
                rows.append(
                    {
                        "comparison": comparison,
                        "side_a": side_a,
                        "side_b": side_b,
                        "quantity": quantity,
                        "n": int(table["n"].iloc[0]),
                        "n_b": int(table["n_b"].iloc[0]),
                        "n_pairs": two.n_pairs,
                        "n_a_greater": two.n_positive,
                        "mean_difference": two.mean_difference,
                        "p_two_sided": two.p_value,
                        "p_a_greater": one.p_value,
                        "exact": two.exact,
                    }
                )
    differences = pd.concat(diffs, ignore_index=True) if diffs else pd.DataFrame()
    return differences, pd.DataFrame(rows)
