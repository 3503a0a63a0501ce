"""Representational alignment between models: the platonic-rep metric family, calibrated.

numpy and torch only (torch is imported inside the functions that search neighbours, so
``import uaes_hf.alignment`` costs numpy alone). Inputs are ``N x D`` numpy arrays, nested
lists or torch tensors whose rows are the same N samples in the same order.

Public API:

- :func:`compare` -> :class:`Comparison`: one pair (or the best layer pair of two stacks)
  with its chance level, calibrated score, p-value, CI and per-sample scores.
- the eight metrics of platonic-rep, one module each, by name (:data:`METRICS`,
  :func:`get_metric`, :func:`score`): :func:`mutual_knn`, :func:`cycle_knn`,
  :func:`lcs_knn`, :func:`edit_distance_knn`, :func:`cknna`, :func:`cka` (linear or RBF;
  :func:`linear_cka`), :func:`unbiased_cka`, :func:`svcca`; plus
  :func:`mutual_knn_per_sample` and :func:`mutual_knn_matrix` (all pairs of M models)
- neighbours: :func:`nearest_neighbors` -> :class:`NeighborIndex` (reusable; pass it
  instead of features to any neighbour metric), :class:`AmbiguousNeighborsWarning`
- layers: :func:`best_layer_pair` -> :class:`LayerSearchResult`
- meaning of a score: :func:`chance_level`, :func:`permutation_test` and :func:`calibrate`
  -> :class:`CalibratedScore`, :func:`bootstrap_ci` and :func:`bootstrap_mean_ci`
  -> :class:`ConfidenceInterval`
- the study's outlier clamp: :func:`remove_outliers`

Where a new metric goes: a module with a :class:`~uaes_hf.alignment.base.Metric` subclass
and a functional form, registered in :mod:`uaes_hf.alignment.registry`.

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

from uaes_hf.alignment.base import Metric
from uaes_hf.alignment.calibration import bootstrap_ci, permutation_test
from uaes_hf.alignment.cka import cka, linear_cka
from uaes_hf.alignment.cknna import cknna
from uaes_hf.alignment.compare import Comparison, compare
from uaes_hf.alignment.cycle_knn import cycle_knn
from uaes_hf.alignment.edit_distance_knn import edit_distance_knn
from uaes_hf.alignment.layers import LayerSearchResult, best_layer_pair
from uaes_hf.alignment.lcs_knn import lcs_knn
from uaes_hf.alignment.mutual_knn import mutual_knn, mutual_knn_matrix, mutual_knn_per_sample
from uaes_hf.alignment.neighbors import (
    AmbiguousNeighborsWarning,
    NeighborIndex,
    nearest_neighbors,
)
from uaes_hf.alignment.outliers import remove_outliers
from uaes_hf.alignment.registry import METRICS, get_metric
from uaes_hf.alignment.significance import (
    CalibratedScore,
    ConfidenceInterval,
    bootstrap_mean_ci,
    calibrate,
    chance_level,
)
from uaes_hf.alignment.svcca import svcca
from uaes_hf.alignment.unbiased_cka import unbiased_cka


def score(
    features_a: Any,
    features_b: Any,
    metric: str = "mutual_knn",
    k: int = 10,
    *,
    device: Any = None,
    dtype: Any = "float32",
    chunk_size: int | None = None,
    **options: Any,
) -> float:
    """Score two representations with the metric named ``metric`` (one of :data:`METRICS`).

    ``k`` is used by the neighbour metrics; ``options`` are the metric's (``kernel``,
    ``cca_dim``, ...).

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(40, 4))
        >>> score(x, x, "cka"), score(x, x, "lcs_knn", k=3)
        (1.0, 3.0)
    """
    measure = get_metric(metric, k, **options)
    return measure.score(features_a, features_b, device=device, dtype=dtype, chunk_size=chunk_size)


__all__ = [
    "METRICS",
    "AmbiguousNeighborsWarning",
    "CalibratedScore",
    "Comparison",
    "ConfidenceInterval",
    "LayerSearchResult",
    "Metric",
    "NeighborIndex",
    "best_layer_pair",
    "bootstrap_ci",
    "bootstrap_mean_ci",
    "calibrate",
    "chance_level",
    "cka",
    "cknna",
    "compare",
    "cycle_knn",
    "edit_distance_knn",
    "get_metric",
    "lcs_knn",
    "linear_cka",
    "mutual_knn",
    "mutual_knn_matrix",
    "mutual_knn_per_sample",
    "nearest_neighbors",
    "permutation_test",
    "remove_outliers",
    "score",
    "svcca",
    "unbiased_cka",
]
