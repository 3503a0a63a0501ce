"""What a score means: chance level, permutation-null calibration, bootstrap intervals.

- :func:`chance_level` ``k / (N - 1)``: the expected mutual kNN of unrelated spaces (a random
  k-subset of the other N - 1 rows shares k * k / (N - 1) members with another on average).
- :func:`permutation_test`: shuffle the rows of B (breaking the pairing, keeping each space's
  geometry), rescore, repeat. ``tau`` is the ``1 - alpha`` quantile of those null scores; the
  calibrated score ``(s - tau) / (s_max - tau)`` is 0 at the null quantile and 1 at perfect
  agreement (``s_max = 1``), and the p-value is ``(1 + #{null >= s}) / (1 + P)``. For mutual
  kNN a permutation only relabels B's neighbour sets, so no new neighbour search is run. For
  layer stacks the same permutation is applied to every layer of B and the null statistic is
  the max over the grid, so the layer search is corrected.
- :func:`bootstrap_ci`: percentile interval of the mean of per-sample scores over resampled
  rows (neighbour sets held fixed: it covers sampling of rows, not of the neighbour graph).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.normal(size=(300, 16)), rng.normal(size=(300, 16))
    >>> result = permutation_test(a, b, k=10, n_permutations=200)
    >>> result.p_value > 0.05
    True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from uaes_hf.alignment.layers import GridCounter, stack_indices
from uaes_hf.alignment.mutual_knn import neighbor_pair, overlap_counts
from uaes_hf.alignment.validation import check_alpha, check_count, check_k  # noqa: F401

METRICS = ("mutual_knn", "cka", "unbiased_cka", "cknna")


@dataclass(frozen=True)
class CalibratedScore:
    """A score with its permutation null.

    Attributes:
        score: the observed score (for a layer search, the best pair's).
        chance_level: ``k / (N - 1)`` for mutual kNN; ``None`` for other metrics.
        null_quantile: ``tau``, the ``1 - alpha`` quantile of the null scores.
        calibrated: ``(score - tau) / (1 - tau)``; about 0 (or below) for unrelated spaces.
        p_value: add-one permutation p-value ``(1 + #{null >= score}) / (1 + P)``.
        n_permutations: P.
        alpha: the level that defines ``tau``.
        null_mean: mean of the null scores.
    """

    score: float
    chance_level: float | None
    null_quantile: float
    calibrated: float
    p_value: float
    n_permutations: int
    alpha: float
    null_mean: float

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields."""
        return asdict(self)


@dataclass(frozen=True)
class ConfidenceInterval:
    """Percentile bootstrap interval of a mean score."""

    score: float
    low: float
    high: float
    confidence: float
    n_bootstrap: int

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields."""
        return asdict(self)


def chance_level(k: int, n: int) -> float:
    """Expected mutual kNN of unrelated spaces with N samples: ``k / (N - 1)``.

    Example:
        >>> chance_level(10, 1001)
        0.01
    """
    k = check_k(k, n)
    return k / (n - 1)


def calibrate(
    score: float,
    null_scores: np.ndarray,
    *,
    alpha: float = 0.05,
    chance: float | None = None,
    max_score: float = 1.0,
) -> CalibratedScore:
    """Calibrate ``score`` against null scores (see the module docstring).

    Example:
        >>> round(calibrate(0.55, np.full(99, 0.1), alpha=0.05).calibrated, 3)
        0.5
    """
    alpha = check_alpha(alpha)
    null_scores = np.asarray(null_scores, dtype=np.float64)
    if null_scores.ndim != 1 or null_scores.size == 0:
        raise ValueError("null_scores must be a non-empty 1-D array")
    tau = float(np.quantile(null_scores, 1.0 - alpha))
    span = max_score - tau
    calibrated = float((score - tau) / span) if span > 0 else float("nan")
    # A tiny tolerance so that a null score equal to the observed one counts as ">=".
    exceed = int(np.count_nonzero(null_scores >= score - 1e-12))
    return CalibratedScore(
        score=float(score),
        chance_level=chance,
        null_quantile=tau,
        calibrated=calibrated,
        p_value=(1 + exceed) / (1 + null_scores.size),
        n_permutations=int(null_scores.size),
        alpha=alpha,
        null_mean=float(null_scores.mean()),
    )


def _progress(iterable: Any, total: int, enabled: bool, desc: str) -> Any:
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc)


def grid_null_test(
    counter: GridCounter,
    *,
    n_permutations: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    progress: bool = False,
) -> CalibratedScore:
    """Permutation test of the best score of a layer grid (a 1 x 1 grid is one pair).

    Each permutation is applied to all of B's layers at once and contributes the max over
    the grid, so the quantile and p-value account for picking the best pair.
    """
    n_permutations = check_count(n_permutations, "n_permutations")
    rng = np.random.default_rng(seed)
    observed = float(counter.scores().max())
    null = np.empty(n_permutations)
    perms = (rng.permutation(counter.n) for _ in range(n_permutations))
    for i, perm in enumerate(_progress(perms, n_permutations, progress, "permutations")):
        null[i] = counter.scores(perm).max()
    return calibrate(observed, null, alpha=alpha, chance=counter.k / (counter.n - 1))


def _is_stack(x: Any) -> bool:
    from uaes_hf.alignment.neighbors import NeighborIndex
    from uaes_hf.alignment.validation import feature_shape

    if isinstance(x, (list, tuple)):
        # A list of layers holds matrices (or indices); a nested list of rows holds rows.
        if not x:
            return True
        first = x[0]
        if isinstance(first, NeighborIndex):
            return True
        try:
            return len(feature_shape(first, "features")) >= 2
        except ValueError:
            return False

    return not isinstance(x, NeighborIndex) and len(feature_shape(x, "features")) == 3


def permutation_test(
    features_a: Any,
    features_b: Any,
    k: int = 10,
    *,
    metric: str = "mutual_knn",
    n_permutations: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    device: Any = None,
    dtype: Any = "float32",
    chunk_size: int | None = None,
    progress: bool = False,
) -> CalibratedScore:
    """Permutation-null calibrated score and p-value of ``metric(A, B)``.

    Args:
        features_a, features_b: ``N x D`` matrices (or NeighborIndex for kNN metrics). For
            ``metric="mutual_knn"`` they may also be layer stacks (``N x L x D`` or lists):
            the best layer pair is then tested with the search-corrected null.
        k: neighbours (mutual_knn, cknna); ignored by cka and unbiased_cka.
        metric: one of ``mutual_knn``, ``cka``, ``unbiased_cka``, ``cknna``.
        n_permutations: number of random row permutations of B.
        alpha: ``tau`` is the ``1 - alpha`` null quantile.
        seed: seed of the permutations.
        device, dtype, chunk_size: neighbour search settings.
        progress: progress bar over permutations.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(200, 8))
        >>> permutation_test(x, x, k=10, n_permutations=99).p_value
        0.01
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    n_permutations = check_count(n_permutations, "n_permutations")
    check_alpha(alpha)
    search = {"device": device, "dtype": dtype, "chunk_size": chunk_size}
    stacked = (_is_stack(features_a), _is_stack(features_b))
    if stacked[0] != stacked[1]:
        kinds = ["a layer stack" if flag else "an N x D matrix" for flag in stacked]
        raise ValueError(
            f"A is {kinds[0]} but B is {kinds[1]}: pass both as layer stacks (N x L x D "
            f"arrays or lists of N x D_l matrices) or both as N x D matrices"
        )
    if stacked[0]:
        if metric != "mutual_knn":
            raise ValueError(
                f"layer stacks are supported for metric='mutual_knn' only, not {metric!r}"
            )
        index_a, index_b = stack_indices(features_a, features_b, k, **search)
        counter = GridCounter([x.indices for x in index_a], [x.indices for x in index_b])
    elif metric == "mutual_knn":
        index_a, index_b = neighbor_pair(features_a, features_b, k, **search)
        counter = GridCounter([index_a.indices], [index_b.indices])
    else:
        from uaes_hf.alignment.cka import cka_null_test

        return cka_null_test(
            features_a,
            features_b,
            metric=metric,
            k=k,
            n_permutations=n_permutations,
            alpha=alpha,
            seed=seed,
            progress=progress,
            **search,
        )
    return grid_null_test(
        counter, n_permutations=n_permutations, alpha=alpha, seed=seed, progress=progress
    )


def bootstrap_mean_ci(
    values: Any,
    *,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> ConfidenceInterval:
    """Percentile bootstrap interval of ``mean(values)`` (rows resampled with replacement).

    Example:
        >>> ci = bootstrap_mean_ci(np.r_[np.zeros(50), np.ones(50)], n_bootstrap=500)
        >>> ci.low < 0.5 < ci.high
        True
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"values must be a non-empty 1-D array, got shape {values.shape}")
    n_bootstrap = check_count(n_bootstrap, "n_bootstrap")
    if not (isinstance(confidence, (int, float)) and 0.0 < confidence < 1.0):
        raise ValueError(f"confidence must be a number in (0, 1), got {confidence!r}")
    alpha = 1.0 - float(confidence)
    rng = np.random.default_rng(seed)
    n = values.size
    means = np.empty(n_bootstrap)
    step = max(1, (1 << 22) // n)  # bound the resampling block to ~4M indices
    for start in range(0, n_bootstrap, step):
        stop = min(start + step, n_bootstrap)
        means[start:stop] = values[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return ConfidenceInterval(
        score=float(values.mean()),
        low=float(low),
        high=float(high),
        confidence=float(confidence),
        n_bootstrap=n_bootstrap,
    )


def bootstrap_ci(
    features_a: Any,
    features_b: Any,
    k: int = 10,
    *,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    device: Any = None,
    dtype: Any = "float32",
    chunk_size: int | None = None,
) -> ConfidenceInterval:
    """Bootstrap confidence interval of mutual kNN over samples.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> a = rng.normal(size=(200, 8))
        >>> ci = bootstrap_ci(a, a + 0.5 * rng.normal(size=a.shape), k=10)
        >>> ci.low <= ci.score <= ci.high
        True
    """
    index_a, index_b = neighbor_pair(
        features_a, features_b, k, device=device, dtype=dtype, chunk_size=chunk_size
    )
    per_sample = overlap_counts(index_a.indices, index_b.indices) / index_a.k
    return bootstrap_mean_ci(per_sample, n_bootstrap=n_bootstrap, confidence=confidence, seed=seed)


__all__ = [
    "CalibratedScore",
    "ConfidenceInterval",
    "bootstrap_ci",
    "bootstrap_mean_ci",
    "calibrate",
    "chance_level",
    "grid_null_test",
    "permutation_test",
]
