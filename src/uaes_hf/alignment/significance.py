"""What a score means: chance level, permutation-null calibration, bootstrap intervals.

Pure statistics on numbers: nothing here knows a metric, a neighbour or a layer.

- :func:`chance_level` ``k / (N - 1)``: the expected mutual kNN of unrelated spaces.
- :func:`calibrate` turns a score and its permutation null into a calibrated score and an
  add-one p-value ``(1 + #{null >= s}) / (1 + K)``. Two definitions of the threshold tau:

  ``"quantile"`` (the default): tau is the ``1 - alpha`` quantile of the K null scores
  alone (linear interpolation) and the calibrated score ``(s - tau) / (s_max - tau)`` is
  not clamped: it is linear in the score, so means and differences over many pairs are
  not biased by clamping, and a pair below its null shows as negative.

  ``"order-statistic"`` (the definition of the ``calibrated-similarity`` package, MIT):
  tau is the ``ceil((1 - alpha)(K + 1))``-th smallest of the observed score and the K null
  scores together, and the calibrated score is clamped to ``[0, 1]``. It is positive
  exactly when the add-one p-value is at most about alpha.
- :func:`draw_null` runs K seeded permutations of B's rows through a statistic.
- :func:`bootstrap_mean_ci`: percentile interval of a mean over resampled rows.

Example:
    >>> import numpy as np
    >>> null = np.linspace(0.0, 0.2, 99)
    >>> round(calibrate(0.6, null).calibrated, 4), calibrate(0.6, null).p_value
    (0.5062, 0.01)
    >>> calibrate(0.1, null, method="order-statistic").calibrated
    0.0
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from uaes_hf.alignment.validation import check_alpha, check_count, check_k

CALIBRATIONS = ("quantile", "order-statistic")
DEFAULT_CALIBRATION = "quantile"


@dataclass(frozen=True)
class CalibratedScore:
    """A score with its permutation null.

    Attributes:
        score: the observed score (for a layer search, the selected pair's).
        chance_level: the closed-form chance of one pair where the metric has one.
        null_quantile: ``tau``, the threshold of the calibration ``method``.
        calibrated: the calibrated score (see the module docstring).
        p_value: add-one permutation p-value ``(1 + #{null >= score}) / (1 + K)``.
        n_permutations: K.
        alpha: the level that defines ``tau``.
        null_mean: mean of the null scores (the chance level under the same selection).
        method: ``"quantile"`` or ``"order-statistic"``.
    """

    score: float
    chance_level: float | None
    null_quantile: float
    calibrated: float
    p_value: float
    n_permutations: int
    alpha: float
    null_mean: float
    method: str = DEFAULT_CALIBRATION

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

    A random k-subset of the other N - 1 rows shares ``k * k / (N - 1)`` members with
    another k-subset on average.

    Example:
        >>> chance_level(10, 1001)
        0.01
    """
    k = check_k(k, n)
    return k / (n - 1)


def check_calibration(method: Any) -> str:
    """Return ``method`` after checking it names a calibration definition."""
    if method not in CALIBRATIONS:
        raise ValueError(f"unknown calibration {method!r}; choose one of {', '.join(CALIBRATIONS)}")
    return str(method)


def calibrate(
    score: float,
    null_scores: Any,
    *,
    alpha: float = 0.05,
    chance: float | None = None,
    max_score: float = 1.0,
    method: str = DEFAULT_CALIBRATION,
) -> CalibratedScore:
    """Calibrate ``score`` against null scores (see the module docstring).

    Example:
        >>> round(calibrate(0.55, np.full(99, 0.1), alpha=0.05).calibrated, 3)
        0.5
        >>> calibrate(0.55, np.full(99, 0.1), method="order-statistic").null_quantile
        0.1
    """
    alpha = check_alpha(alpha)
    method = check_calibration(method)
    null_scores = np.asarray(null_scores, dtype=np.float64)
    if null_scores.ndim != 1 or null_scores.size == 0:
        raise ValueError("null_scores must be a non-empty 1-D array")
    score = float(score)
    if method == "quantile":
        tau = float(np.quantile(null_scores, 1.0 - alpha))
        span = max_score - tau
        calibrated = float((score - tau) / span) if span > 0 else float("nan")
    else:
        count = null_scores.size
        combined = np.sort(np.append(null_scores, score))
        position = min(max(math.ceil((1.0 - alpha) * (count + 1)) - 1, 0), count)
        tau = float(combined[position])
        span = max(max_score - tau, 1e-12)
        calibrated = float(min(max((score - tau) / span, 0.0), 1.0))
    # A tiny tolerance so that a null score equal to the observed one counts as ">=".
    exceed = int(np.count_nonzero(null_scores >= score - 1e-12))
    return CalibratedScore(
        score=score,
        chance_level=chance,
        null_quantile=tau,
        calibrated=calibrated,
        p_value=(1 + exceed) / (1 + null_scores.size),
        n_permutations=int(null_scores.size),
        alpha=alpha,
        null_mean=float(null_scores.mean()),
        method=method,
    )


def progress_bar(iterable: Any, total: int, enabled: bool, desc: str) -> Any:
    """``iterable`` wrapped in a tqdm bar when ``enabled``."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc)


def draw_null(
    n: int,
    statistic: Callable[[np.ndarray], Any],
    *,
    n_permutations: int,
    seed: int = 0,
    progress: bool = False,
) -> np.ndarray:
    """``statistic(perm)`` for K seeded random permutations of ``range(n)``.

    Returns a ``K x m`` float array (``m`` values per permutation; 1 for a scalar).
    Permutation j is the j-th ``default_rng(seed).permutation(n)`` draw, so two callers
    with one seed see the same permutations.

    Example:
        >>> draw_null(5, lambda perm: perm[0], n_permutations=3).shape
        (3, 1)
    """
    n_permutations = check_count(n_permutations, "n_permutations")
    rng = np.random.default_rng(seed)
    rows = []
    perms = (rng.permutation(n) for _ in range(n_permutations))
    for perm in progress_bar(perms, n_permutations, progress, "permutations"):
        rows.append(np.atleast_1d(np.asarray(statistic(perm), dtype=np.float64)))
    return np.vstack(rows)


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
