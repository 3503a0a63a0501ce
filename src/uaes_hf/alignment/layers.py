"""Layer search: a metric over every (layer of A, layer of B) pair, and the best pair.

Each layer is prepared once (``L_A + L_B`` neighbour searches, not ``L_A * L_B``), then the
whole ``L_A x L_B`` grid is scored from the prepared states. The same grid scorer scores B's
rows under a permutation, which the layer-search permutation null needs: one permutation is
applied to every layer of B and the null statistic is the selected value of the grid, so
the calibrated score and p-value are corrected for the search.

**Selection rule.** ``"best"``: the maximum of the grid, at the first maximum in row-major
order (layers of A outer, of B inner), as ``numpy.argmax``. The study's loop
(``compute_score(A, B)`` of its fork of platonic-rep) keeps the first pair whose score is
strictly greater than the best so far, starting from 0, which is the same pair and score
whenever some score is above 0. ``"reference"`` reproduces it exactly, including its one
difference: when no score is above 0 it reports 0 and no layer pair.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=(80, 3, 16))
    >>> b = np.stack([rng.normal(size=(80, 16)), a[:, 1] @ rng.normal(size=(16, 16))], axis=1)
    >>> result = best_layer_pair(a, b, k=5)
    >>> (result.layer_a, result.layer_b), result.grid.shape
    ((1, 1), (3, 2))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from uaes_hf.alignment.base import Metric, sample_count
from uaes_hf.alignment.mutual_knn import GridCounter  # noqa: F401  (re-exported)
from uaes_hf.alignment.neighbors import NeighborIndex
from uaes_hf.alignment.registry import get_metric
from uaes_hf.alignment.significance import (
    DEFAULT_CALIBRATION,
    CalibratedScore,
    calibrate,
    draw_null,
)
from uaes_hf.alignment.validation import check_alpha, check_same_samples, split_layers

SELECTIONS = ("best", "reference")


@dataclass(frozen=True)
class LayerSearchResult:
    """Outcome of :func:`best_layer_pair`.

    Attributes:
        score: the selected (maximum) score over the grid.
        layer_a, layer_b: the layer pair that reaches it (first in row-major order on ties;
            ``None`` under ``selection="reference"`` when no score is above 0).
        grid: ``L_A x L_B`` scores of every pair.
        k: neighbours per row (``None`` for metrics without neighbours).
        calibration: permutation-null calibration of ``score``, corrected for the search
            (``None`` unless requested).
        metric: the metric's name.
    """

    score: float
    layer_a: int | None
    layer_b: int | None
    grid: np.ndarray
    k: int | None
    calibration: CalibratedScore | None = None
    metric: str = "mutual_knn"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (the grid as nested lists)."""
        return {
            "score": self.score,
            "layer_a": self.layer_a,
            "layer_b": self.layer_b,
            "grid": self.grid.tolist(),
            "k": self.k,
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
        }


@dataclass
class PreparedLayers:
    """Every layer of A and B prepared once for one metric, with the grid scorer."""

    metric: Metric
    states_a: list[Any]
    states_b: list[Any]
    n: int

    def __post_init__(self) -> None:
        self.scorer = self.metric.grid_scorer(self.states_a, self.states_b)

    @property
    def n_pairs(self) -> int:
        """``L_A * L_B``."""
        return len(self.states_a) * len(self.states_b)

    def for_null(self) -> PreparedLayers:
        """The same layers in the form that permutation nulls score fastest."""
        hook = getattr(self.metric, "null_state", None)
        if hook is None:
            return self
        return PreparedLayers(
            self.metric,
            [hook(s) for s in self.states_a],
            [hook(s) for s in self.states_b],
            self.n,
        )


def is_stack(x: Any) -> bool:
    """Whether ``x`` is a layer stack (``N x L x D`` or a list of matrices/indices)."""
    from uaes_hf.alignment.validation import feature_shape, is_neighbor_index

    if isinstance(x, (list, tuple)):
        # A list of layers holds matrices (or indices); a nested list of rows holds rows.
        if not x:
            return True
        first = x[0]
        if is_neighbor_index(first):
            return True
        try:
            return len(feature_shape(first, "features")) >= 2
        except ValueError:
            return False
    if isinstance(x, NeighborIndex):
        return False
    return len(feature_shape(x, "features")) == 3


def as_layers(x: Any, name: str) -> list[Any]:
    """A stack as its list of layers; a single matrix or index as a one-layer list."""
    return split_layers(x, name) if is_stack(x) else [x]


def check_kinds(features_a: Any, features_b: Any) -> bool:
    """Whether both inputs are stacks (True) or both single matrices (False)."""
    stacked = (is_stack(features_a), is_stack(features_b))
    if stacked[0] != stacked[1]:
        kinds = ["a layer stack" if flag else "an N x D matrix" for flag in stacked]
        raise ValueError(
            f"A is {kinds[0]} but B is {kinds[1]}: pass both as layer stacks (N x L x D "
            f"arrays or lists of N x D_l matrices) or both as N x D matrices"
        )
    return stacked[0]


def prepare_layers(
    metric: Metric, layers_a: list[Any], layers_b: list[Any], **search: Any
) -> PreparedLayers:
    """Validate the shared N and prepare every layer once."""
    n = check_same_samples(sample_count(layers_a[0]), sample_count(layers_b[0]))
    metric.check_samples(n)
    single = len(layers_a) == 1 and len(layers_b) == 1
    states_a = [
        metric.prepare(x, name="A" if single else f"A layer {i}", **search)
        for i, x in enumerate(layers_a)
    ]
    states_b = [
        metric.prepare(x, name="B" if single else f"B layer {i}", **search)
        for i, x in enumerate(layers_b)
    ]
    return PreparedLayers(metric, states_a, states_b, n)


def select(grid: np.ndarray, rule: str = "best") -> tuple[float, int | None, int | None]:
    """The selected value of a grid and its layer pair (see the module docstring).

    Example:
        >>> select(np.array([[0.1, 0.3], [0.3, 0.2]]))
        (0.3, 0, 1)
        >>> select(np.array([[-0.2, -0.1]]), "reference")
        (0.0, None, None)
    """
    position = int(np.argmax(grid))
    layer_a, layer_b = (int(i) for i in np.unravel_index(position, grid.shape))
    best = float(grid[layer_a, layer_b])
    if rule == "reference" and not best > 0:
        return 0.0, None, None
    return best, layer_a, layer_b


def check_selection(rule: Any) -> str:
    """Return ``rule`` after checking it names a selection rule."""
    if rule not in SELECTIONS:
        raise ValueError(f"unknown layer_selection {rule!r}; choose one of {', '.join(SELECTIONS)}")
    return str(rule)


def grid_null(
    prepared: PreparedLayers,
    observed: float,
    *,
    rule: str = "best",
    n_permutations: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    calibration: str = DEFAULT_CALIBRATION,
    chance: float | None = None,
    progress: bool = False,
) -> CalibratedScore:
    """Permutation test of the selected value of a layer grid (1 x 1: one pair)."""
    check_alpha(alpha)
    fast = prepared.for_null()
    null = draw_null(
        prepared.n,
        lambda perm: select(fast.scorer.scores(perm), rule)[0],
        n_permutations=n_permutations,
        seed=seed,
        progress=progress,
    )[:, 0]
    return calibrate(
        observed,
        null,
        alpha=alpha,
        chance=chance,
        max_score=prepared.metric.max_score,
        method=calibration,
    )


def best_layer_pair(
    stack_a: Any,
    stack_b: Any,
    k: int = 10,
    *,
    metric: str | Metric = "mutual_knn",
    permutations: int = 0,
    alpha: float = 0.05,
    seed: int = 0,
    calibration: str = DEFAULT_CALIBRATION,
    layer_selection: str = "best",
    device: Any = None,
    dtype: Any = "float32",
    chunk_size: int | None = None,
    progress: bool = False,
    **options: Any,
) -> LayerSearchResult:
    """``metric`` over every layer pair, and the best pair.

    Args:
        stack_a, stack_b: ``N x L x D`` arrays/tensors, or lists of ``N x D_l`` matrices
            (or of :class:`NeighborIndex` for neighbour metrics), same N samples.
        k: neighbours per row (neighbour metrics).
        metric: a name of :data:`~uaes_hf.alignment.METRICS` or a Metric instance.
        permutations: if > 0, calibrate the best score against a null that applies the same
            random row permutation to every layer of B and takes the max over the grid.
        alpha: the calibration level.
        seed: seed of the permutations.
        calibration: ``"quantile"`` or ``"order-statistic"`` (see
            :func:`~uaes_hf.alignment.calibrate`).
        layer_selection: ``"best"`` or ``"reference"`` (see the module docstring).
        device, dtype, chunk_size: passed to the neighbour search.
        progress: show a progress bar over permutations.
        options: the metric's options (e.g. ``kernel="rbf"``).

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(40, 2, 4))
        >>> best_layer_pair(x, x, k=3).score
        1.0
    """
    measure = get_metric(metric, k, **options)
    rule = check_selection(layer_selection)
    prepared = prepare_layers(
        measure,
        split_layers(stack_a, "A"),
        split_layers(stack_b, "B"),
        device=device,
        dtype=dtype,
        chunk_size=chunk_size,
    )
    grid = prepared.scorer.scores()
    score, layer_a, layer_b = select(grid, rule)
    result = None
    if permutations:
        chance = None
        if layer_a is not None:
            chance = measure.chance_level(prepared.states_a[layer_a], prepared.states_b[layer_b])
        result = grid_null(
            prepared,
            score,
            rule=rule,
            n_permutations=permutations,
            alpha=alpha,
            seed=seed,
            calibration=calibration,
            chance=chance,
            progress=progress,
        )
    return LayerSearchResult(
        score=score,
        layer_a=layer_a,
        layer_b=layer_b,
        grid=grid,
        k=measure.k_or_none,
        calibration=result,
        metric=measure.name,
    )
