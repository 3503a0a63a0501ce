"""Representational alignment between models: mutual kNN, CKA variants, calibration.

numpy and torch only (torch is imported inside the functions that search neighbours, so
``import uaes_hf.alignment`` costs numpy alone). Inputs are ``N x D`` numpy arrays, nested
lists or torch tensors whose rows are the same N samples in the same order.

Public API:

- scores: :func:`mutual_knn`, :func:`mutual_knn_per_sample`, :func:`mutual_knn_matrix`
  (all pairs of M models), :func:`linear_cka`, :func:`unbiased_cka`, :func:`cknna`
- neighbours: :func:`nearest_neighbors` -> :class:`NeighborIndex` (reusable; pass it
  instead of features to any kNN metric), :class:`AmbiguousNeighborsWarning`
- layers: :func:`best_layer_pair` -> :class:`LayerSearchResult`
- meaning of a score: :func:`chance_level`, :func:`permutation_test` and :func:`calibrate`
  -> :class:`CalibratedScore`, :func:`bootstrap_ci` and :func:`bootstrap_mean_ci`
  -> :class:`ConfidenceInterval`
- :data:`METRICS`: metric names accepted by :func:`permutation_test` and :func:`score`
  (:func:`score` dispatches on such a name)

Example:
    >>> import numpy as np
    >>> from uaes_hf.alignment import mutual_knn, chance_level
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.normal(size=(500, 32)), rng.normal(size=(500, 64))
    >>> abs(mutual_knn(a, b, k=10) - chance_level(10, 500)) < 0.01
    True
"""

from __future__ import annotations

from typing import Any

from uaes_hf.alignment.calibration import (
    METRICS,
    CalibratedScore,
    ConfidenceInterval,
    bootstrap_ci,
    bootstrap_mean_ci,
    calibrate,
    chance_level,
    permutation_test,
)
from uaes_hf.alignment.cka import cknna, linear_cka, unbiased_cka
from uaes_hf.alignment.layers import LayerSearchResult, best_layer_pair
from uaes_hf.alignment.mutual_knn import mutual_knn, mutual_knn_matrix, mutual_knn_per_sample
from uaes_hf.alignment.neighbors import (
    AmbiguousNeighborsWarning,
    NeighborIndex,
    nearest_neighbors,
)


def score(
    features_a: Any, features_b: Any, metric: str = "mutual_knn", k: int = 10, **search: Any
) -> float:
    """Score two representations with the metric named ``metric`` (one of :data:`METRICS`).

    ``k`` is ignored by ``cka`` and ``unbiased_cka``; ``search`` holds device/dtype/chunk_size.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(40, 4))
        >>> score(x, x, "cka")
        1.0
    """
    if metric == "mutual_knn":
        return mutual_knn(features_a, features_b, k, **search)
    if metric == "cknna":
        return cknna(features_a, features_b, k, **search)
    if metric == "cka":
        return linear_cka(features_a, features_b)
    if metric == "unbiased_cka":
        return unbiased_cka(features_a, features_b)
    raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")


__all__ = [
    "METRICS",
    "AmbiguousNeighborsWarning",
    "CalibratedScore",
    "ConfidenceInterval",
    "LayerSearchResult",
    "NeighborIndex",
    "best_layer_pair",
    "bootstrap_ci",
    "bootstrap_mean_ci",
    "calibrate",
    "chance_level",
    "cknna",
    "linear_cka",
    "mutual_knn",
    "mutual_knn_matrix",
    "mutual_knn_per_sample",
    "nearest_neighbors",
    "permutation_test",
    "score",
    "unbiased_cka",
]
