"""Permutation tests and bootstrap intervals of any alignment metric (and the layer search).

- :func:`permutation_test`: shuffle the rows of B (breaking the pairing, keeping each
  space's geometry), rescore, repeat; returns the calibrated score and add-one p-value of
  :func:`~uaes_hf.alignment.calibrate`. A permutation is applied to B's prepared state (a
  relabelled neighbour index, permuted kernel terms), so no new neighbour search runs. For
  layer stacks the same permutation is applied to every layer of B and the null statistic
  is the max over the grid, so the layer search is corrected.
- :func:`bootstrap_ci`: percentile interval of the mean of per-sample scores over resampled
  rows (neighbour sets held fixed: it covers sampling of rows, not of the neighbour graph).

The statistics themselves (:func:`calibrate`, :func:`chance_level`,
:func:`bootstrap_mean_ci`) live in :mod:`uaes_hf.alignment.significance` and are
re-exported here.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.normal(size=(300, 16)), rng.normal(size=(300, 16))
    >>> result = permutation_test(a, b, k=10, n_permutations=200)
    >>> result.p_value > 0.05
    True
"""

from __future__ import annotations

from typing import Any

from uaes_hf.alignment.base import Metric
from uaes_hf.alignment.layers import as_layers, check_kinds, grid_null, prepare_layers, select
from uaes_hf.alignment.registry import METRICS, get_metric
from uaes_hf.alignment.significance import (
    DEFAULT_CALIBRATION,
    CalibratedScore,
    ConfidenceInterval,
    bootstrap_mean_ci,
    calibrate,
    chance_level,
)
from uaes_hf.alignment.validation import check_alpha, check_count


def permutation_test(
    features_a: Any,
    features_b: Any,
    k: int = 10,
    *,
    metric: str | Metric = "mutual_knn",
    n_permutations: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    calibration: str = DEFAULT_CALIBRATION,
    device: Any = None,
    dtype: Any = "float32",
    chunk_size: int | None = None,
    progress: bool = False,
    **options: Any,
) -> CalibratedScore:
    """Permutation-null calibrated score and p-value of ``metric(A, B)``.

    Args:
        features_a, features_b: ``N x D`` matrices (or NeighborIndex for neighbour metrics),
            or both layer stacks (``N x L x D`` or lists): the best layer pair is then
            tested with the search-corrected null.
        k: neighbours (neighbour metrics); ignored by cka, unbiased_cka and svcca.
        metric: one of :data:`~uaes_hf.alignment.METRICS` (or a Metric instance).
        n_permutations: number of random row permutations of B.
        alpha: the calibration level.
        seed: seed of the permutations.
        calibration: ``"quantile"`` (default) or ``"order-statistic"``.
        device, dtype, chunk_size: neighbour search settings.
        progress: progress bar over permutations.
        options: the metric's options (``kernel``, ``cca_dim``, ...).

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(200, 8))
        >>> permutation_test(x, x, k=10, n_permutations=99).p_value
        0.01
    """
    measure = get_metric(metric, k, **options)
    n_permutations = check_count(n_permutations, "n_permutations")
    check_alpha(alpha)
    stacked = check_kinds(features_a, features_b)
    prepared = prepare_layers(
        measure,
        as_layers(features_a, "A") if stacked else [features_a],
        as_layers(features_b, "B") if stacked else [features_b],
        device=device,
        dtype=dtype,
        chunk_size=chunk_size,
    )
    observed, layer_a, layer_b = select(prepared.scorer.scores())
    chance = measure.chance_level(prepared.states_a[layer_a], prepared.states_b[layer_b])
    return grid_null(
        prepared,
        observed,
        n_permutations=n_permutations,
        alpha=alpha,
        seed=seed,
        calibration=calibration,
        chance=chance,
        progress=progress,
    )


def bootstrap_ci(
    features_a: Any,
    features_b: Any,
    k: int = 10,
    *,
    metric: str | Metric = "mutual_knn",
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    device: Any = None,
    dtype: Any = "float32",
    chunk_size: int | None = None,
    **options: Any,
) -> ConfidenceInterval:
    """Bootstrap confidence interval of a per-sample metric's mean over samples.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> a = rng.normal(size=(200, 8))
        >>> ci = bootstrap_ci(a, a + 0.5 * rng.normal(size=a.shape), k=10)
        >>> ci.low <= ci.score <= ci.high
        True
    """
    measure = get_metric(metric, k, **options)
    state_a, state_b = measure.pair(
        features_a, features_b, device=device, dtype=dtype, chunk_size=chunk_size
    )
    per_sample = measure.per_sample_states(state_a, state_b)
    return bootstrap_mean_ci(per_sample, n_bootstrap=n_bootstrap, confidence=confidence, seed=seed)


__all__ = [
    "METRICS",
    "CalibratedScore",
    "ConfidenceInterval",
    "bootstrap_ci",
    "bootstrap_mean_ci",
    "calibrate",
    "chance_level",
    "permutation_test",
]
