"""The eight alignment metrics by name (platonic-rep's names) and their options.

| name | module | options | per-sample | chance level in closed form |
|---|---|---|---|---|
| ``mutual_knn`` | :mod:`~uaes_hf.alignment.mutual_knn` | k | yes | ``k / (N - 1)`` |
| ``cycle_knn`` | :mod:`~uaes_hf.alignment.cycle_knn` | k | yes | from A's kNN in-degrees |
| ``lcs_knn`` | :mod:`~uaes_hf.alignment.lcs_knn` | k, normalize | yes | no (null mean) |
| ``edit_distance_knn`` | :mod:`~uaes_hf.alignment.edit_distance_knn` | k | yes | no |
| ``cknna`` | :mod:`~uaes_hf.alignment.cknna` | k | no | no |
| ``cka`` | :mod:`~uaes_hf.alignment.cka` | kernel, rbf_sigma | no | ``tr(K̃)tr(L̃)/((N-1)·norm)`` |
| ``unbiased_cka`` | :mod:`~uaes_hf.alignment.unbiased_cka` | kernel, rbf_sigma | no | 0 |
| ``svcca`` | :mod:`~uaes_hf.alignment.svcca` | cca_dim, svd, svd_seed | no | no |

Example:
    >>> get_metric("cka", kernel="rbf", rbf_sigma=0.5)
    CKA(kernel='rbf', rbf_sigma=0.5)
    >>> get_metric("lcs_knn", k=5, normalize=True).max_score
    1.0
"""

from __future__ import annotations

from typing import Any

from uaes_hf.alignment.base import Metric
from uaes_hf.alignment.cka import CKA
from uaes_hf.alignment.cknna import CKNNA
from uaes_hf.alignment.cycle_knn import CycleKNN
from uaes_hf.alignment.edit_distance_knn import EditDistanceKNN
from uaes_hf.alignment.lcs_knn import LcsKNN
from uaes_hf.alignment.mutual_knn import MutualKNN
from uaes_hf.alignment.svcca import SVCCA
from uaes_hf.alignment.unbiased_cka import UnbiasedCKA

# In platonic-rep's order (AlignmentMetrics.SUPPORTED_METRICS).
METRIC_CLASSES: dict[str, type[Metric]] = {
    "cycle_knn": CycleKNN,
    "mutual_knn": MutualKNN,
    "lcs_knn": LcsKNN,
    "cka": CKA,
    "unbiased_cka": UnbiasedCKA,
    "cknna": CKNNA,
    "svcca": SVCCA,
    "edit_distance_knn": EditDistanceKNN,
}
METRICS: tuple[str, ...] = tuple(METRIC_CLASSES)
# Options each metric accepts besides k (k is accepted by all and used by neighbour metrics).
METRIC_OPTIONS: dict[str, tuple[str, ...]] = {
    "cycle_knn": (),
    "mutual_knn": (),
    "lcs_knn": ("normalize",),
    "cka": ("kernel", "rbf_sigma"),
    "unbiased_cka": ("kernel", "rbf_sigma"),
    "cknna": (),
    "svcca": ("cca_dim", "svd", "svd_seed"),
    "edit_distance_knn": (),
}


def get_metric(metric: str | Metric, k: Any = 10, **options: Any) -> Metric:
    """The :class:`~uaes_hf.alignment.base.Metric` named ``metric`` with its options.

    ``k`` is checked to be an integer and used by the neighbour metrics (ignored by the
    CKAs and SVCCA, as in the reference); an option a metric does not take is an error. A
    ``Metric`` instance passes through (then ``options`` must be empty).

    Example:
        >>> get_metric("mutual_knn", k=5)
        MutualKNN(k=5)
    """
    if isinstance(metric, Metric):
        if options:
            raise ValueError(
                f"options {sorted(options)} cannot be given with a Metric instance; set "
                f"them on the instance"
            )
        return metric
    if metric not in METRIC_CLASSES:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    accepted = METRIC_OPTIONS[metric]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"{metric} does not take option(s) {', '.join(unknown)}; it accepts "
            f"{', '.join(('k', *accepted)) if accepted else 'k only'}"
        )
    cls = METRIC_CLASSES[metric]
    if cls.uses_neighbors:
        return cls(k, **options)
    from uaes_hf.alignment.base import check_k_type

    if k is not None:
        check_k_type(k)  # k="10" is a clear error even where k is not used
    return cls(**options)
