"""One comparison of two representations: score, chance, calibration, CI, per-sample.

:func:`compare` is the one place where a score is composed with its statistics; the
evaluate modules, ``uaes align`` (and the Space) call it. Each input layer is prepared once
(one neighbour search per layer for the neighbour metrics) and the score, the per-sample
scores, the permutation null and the bootstrap all reuse those states.

**Layer stacks.** With ``N x L x D`` inputs (or lists of layers) every layer pair is scored
and one is selected (``layer_selection``, see :mod:`uaes_hf.alignment.layers`); the null
applies one permutation to every layer of B and selects again, so the calibrated score,
p-value and null mean are corrected for the search. ``layer_a``/``layer_b`` fix a layer.

**Per-sample scores** of the metrics that have them (mutual_knn, cycle_knn, lcs_knn,
edit_distance_knn), with ``per_sample_layers``:

- ``"best"`` (default): the per-sample scores of the selected pair (all N rows);
- ``"max"``: the study's per-sample scores, the element-wise max over all layer pairs.
  Inflated: the max over pairs of noise is far above chance. ``per_sample_chance`` is then
  the mean per-sample max under the permutation null with the same max (drawn with
  ``permutations`` or, when that is 0, :data:`SELECTION_PERMUTATIONS` permutations);
- ``"heldout"``: the pair is chosen on a random half of the rows (seeded) and the scores
  are reported on the other half (``per_sample_rows``); neighbour sets are those of all N.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=(200, 16))
    >>> b = a @ rng.normal(size=(16, 24)) + rng.normal(size=(200, 24))
    >>> result = compare(a, b, k=10, permutations=99, bootstrap=200)
    >>> result.score > result.chance_level, result.p_value, result.ci_low < result.score
    (True, 0.01, True)
    >>> compare(a, b, metric="cka").score > compare(a, b[::-1], metric="cka").score
    True
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from uaes_hf.alignment.base import Metric
from uaes_hf.alignment.layers import (
    as_layers,
    check_kinds,
    check_selection,
    prepare_layers,
    select,
)
from uaes_hf.alignment.outliers import check_quantile, remove_outliers
from uaes_hf.alignment.registry import get_metric
from uaes_hf.alignment.significance import (
    DEFAULT_CALIBRATION,
    bootstrap_mean_ci,
    calibrate,
    check_calibration,
    draw_null,
)
from uaes_hf.alignment.validation import check_alpha, check_count, is_neighbor_index

PER_SAMPLE_LAYERS = ("best", "max", "heldout")
# Permutations drawn for the chance level of per-sample "max" when none were requested.
SELECTION_PERMUTATIONS = 100


@dataclass(frozen=True, eq=False)
class Comparison:
    """The outcome of :func:`compare` (``None`` where a value was not requested or has no
    meaning for the metric).

    Attributes:
        metric, k, n: the metric's name, its k (neighbour metrics), the number of samples.
        score: the metric on the selected layer pair (the only pair for N x D inputs).
        chance_level: the closed-form expected score of one pair under the permutation
            null, where the metric has one (see each metric's module).
        calibrated_score, p_value, null_quantile, null_mean: the permutation null (with
            ``permutations > 0``), with the same layer selection as the score.
        ci_low, ci_high: bootstrap interval of the score (``bootstrap > 0``).
        per_sample, per_sample_rows: per-sample scores and the rows they belong to.
        per_sample_layers, per_sample_chance, per_sample_inflated: how per-sample layers
            were chosen, the chance level of their mean under the same choice, and whether
            that choice inflates them (``"max"`` over several pairs).
        layer_a, layer_b: the selected (or fixed) layers; ``n_layer_pairs``: pairs searched.
        selection: ``"single"``, ``"fixed"``, ``"best"`` or ``"reference"``.
        calibration: the calibration definition.
        grid: the ``L_A x L_B`` scores of the searched pairs.
        options: the metric's options; outlier_quantile/outlier_exact: the clamp applied.
    """

    metric: str
    k: int | None
    n: int
    score: float
    chance_level: float | None
    calibrated_score: float | None
    p_value: float | None
    ci_low: float | None
    ci_high: float | None
    per_sample: np.ndarray | None
    layer_a: int | None
    layer_b: int | None
    n_layer_pairs: int
    selection: str
    calibration: str
    null_quantile: float | None = None
    null_mean: float | None = None
    n_permutations: int = 0
    alpha: float = 0.05
    ci_level: float = 0.95
    n_bootstrap: int = 0
    max_score: float = 1.0
    per_sample_layers: str = "best"
    per_sample_rows: np.ndarray | None = None
    per_sample_chance: float | None = None
    per_sample_inflated: bool = False
    per_sample_layer_a: int | None = None
    per_sample_layer_b: int | None = None
    grid: np.ndarray | None = None
    options: dict[str, Any] = field(default_factory=dict)
    outlier_quantile: float | None = None
    outlier_exact: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (arrays as lists, NaN as ``None``)."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {key: _plain(v) for key, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _pick(layers: list[Any], index: Any, name: str) -> tuple[list[Any], int | None]:
    if index is None:
        return layers, None
    if isinstance(index, bool) or not isinstance(index, numbers.Integral):
        raise ValueError(f"layer_{name} must be an integer, got {index!r}")
    if not -len(layers) <= index < len(layers):
        raise ValueError(
            f"layer_{name}={index} is out of range: {name.upper()} has {len(layers)} layer(s)"
        )
    position = int(index) % len(layers)
    return [layers[position]], position


def _clamped(x: Any, quantile: float | None, exact: bool, name: str) -> Any:
    if quantile is None:
        return x
    items = x if isinstance(x, (list, tuple)) else [x]
    if any(is_neighbor_index(item) for item in items):
        raise ValueError(
            f"{name} is a NeighborIndex: the outlier clamp needs the features themselves"
        )
    return remove_outliers(x, quantile, exact)


def split_rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint sorted halves of ``range(n)`` (selection, report), seeded.

    Example:
        >>> [part.tolist() for part in split_rows(5, seed=0)]
        [[2, 4], [0, 1, 3]]
    """
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[: n // 2]), np.sort(order[n // 2 :])


def compare(
    a: Any,
    b: Any,
    *,
    metric: str | Metric = "mutual_knn",
    k: int = 10,
    permutations: int = 0,
    per_sample: bool = False,
    per_sample_layers: str = "best",
    alpha: float = 0.05,
    calibration: str = DEFAULT_CALIBRATION,
    bootstrap: int = 0,
    ci_level: float = 0.95,
    seed: int = 0,
    outlier_quantile: float | None = None,
    outlier_exact: bool = False,
    layer_a: int | None = None,
    layer_b: int | None = None,
    layer_selection: str = "best",
    device: Any = None,
    dtype: Any = "float32",
    chunk_size: int | None = None,
    progress: bool = False,
    **options: Any,
) -> Comparison:
    """Compare two representations of the same N samples (see the module docstring).

    Args:
        a, b: ``N x D`` matrices (numpy, list, torch; or NeighborIndex for neighbour
            metrics), or both layer stacks (``N x L x D`` or lists of ``N x D_l``).
        metric: one of :data:`~uaes_hf.alignment.METRICS` or a Metric instance.
        k: neighbours per sample (neighbour metrics; checked to be an int for all).
        permutations: permutations of B's rows for the calibrated score and p-value.
        per_sample: return per-sample scores (per-sample metrics only).
        per_sample_layers: ``"best"``, ``"max"`` (the study's, inflated) or ``"heldout"``.
        alpha: the calibration level.
        calibration: ``"quantile"`` (default) or ``"order-statistic"``.
        bootstrap: resamples of rows for the score's interval (per-sample metrics).
        ci_level: the interval's confidence.
        seed: seed of the permutations, the bootstrap and the held-out split.
        outlier_quantile: clamp each input (whole stack) with the study's
            :func:`~uaes_hf.alignment.remove_outliers` at this quantile (e.g. 0.95).
        outlier_exact: the clamp's exact whole-array order statistic.
        layer_a, layer_b: fix a layer of a stack (negative counts from the last).
        layer_selection: ``"best"`` or ``"reference"`` (the study's loop, see
            :mod:`uaes_hf.alignment.layers`).
        device, dtype, chunk_size: neighbour search settings.
        progress: progress bar over permutations.
        options: the metric's options (``kernel``, ``rbf_sigma``, ``cca_dim``, ``svd``,
            ``svd_seed``, ``normalize``).

    Returns:
        A :class:`Comparison`.
    """
    measure = get_metric(metric, k, **options)
    rule = check_selection(layer_selection)
    calibration = check_calibration(calibration)
    permutations = check_count(permutations, "permutations", minimum=0)
    bootstrap = check_count(bootstrap, "bootstrap", minimum=0)
    alpha = check_alpha(alpha)
    if not (isinstance(ci_level, numbers.Real) and 0.0 < float(ci_level) < 1.0):
        raise ValueError(f"ci_level must be a number in (0, 1), got {ci_level!r}")
    if per_sample_layers not in PER_SAMPLE_LAYERS:
        raise ValueError(
            f"unknown per_sample_layers {per_sample_layers!r}; choose one of "
            f"{', '.join(PER_SAMPLE_LAYERS)}"
        )
    if (per_sample or bootstrap) and not measure.has_per_sample:
        asked = "per-sample scores" if per_sample else "a bootstrap interval"
        raise ValueError(
            f"{asked} need a per-sample metric; {measure.name} has none (use mutual_knn, "
            f"cycle_knn, lcs_knn or edit_distance_knn, or permutations for {measure.name})"
        )
    if outlier_quantile is not None:
        outlier_quantile = check_quantile(outlier_quantile)
    elif outlier_exact:
        raise ValueError("outlier_exact=True needs an outlier_quantile (e.g. 0.95)")
    stacked = check_kinds(a, b)
    a = _clamped(a, outlier_quantile, outlier_exact, "A")
    b = _clamped(b, outlier_quantile, outlier_exact, "B")
    layers_a, fixed_a = _pick(as_layers(a, "A") if stacked else [a], layer_a, "a")
    layers_b, fixed_b = _pick(as_layers(b, "B") if stacked else [b], layer_b, "b")
    prepared = prepare_layers(
        measure, layers_a, layers_b, device=device, dtype=dtype, chunk_size=chunk_size
    )
    n = prepared.n
    grid = prepared.scorer.scores()
    score, pos_a, pos_b = select(grid, rule)
    pair = (pos_a, pos_b) if pos_a is not None else (0, 0)
    state_a, state_b = prepared.states_a[pair[0]], prepared.states_b[pair[1]]
    chance = measure.chance_level(state_a, state_b) if pos_a is not None else None
    searched = prepared.n_pairs > 1
    selection = rule if searched else ("fixed" if stacked else "single")

    # Per-sample scores (also the bootstrap's input) from the prepared states only.
    best_rows = measure.per_sample_states(state_a, state_b) if measure.has_per_sample else None
    values, rows, heldout_pair = best_rows, None, (None, None)
    sample_grid = None
    if per_sample and per_sample_layers != "best" and searched:
        sample_grid = prepared.scorer.per_sample()
        if per_sample_layers == "max":
            values = sample_grid.max(axis=(0, 1))
        else:
            chosen, report = split_rows(n, seed)
            _, ha, hb = select(sample_grid[:, :, chosen].mean(axis=2))
            values, rows, heldout_pair = sample_grid[ha, hb, report], report, (ha, hb)
    inflated = bool(per_sample and per_sample_layers == "max" and searched)

    # One permutation loop for the score's null and the per-sample selection's null.
    need_max = inflated
    need_heldout = per_sample and per_sample_layers == "heldout" and searched
    draws = permutations or (SELECTION_PERMUTATIONS if need_max else 0)
    null_stats = None
    if draws:
        fast = prepared.for_null()
        split = split_rows(n, seed) if need_heldout else None

        def statistic(perm: np.ndarray) -> list[float]:
            out = [select(fast.scorer.scores(perm), rule)[0]]
            if need_max or need_heldout:
                cells = fast.scorer.per_sample(perm)
                if need_max:
                    out.append(float(cells.max(axis=(0, 1)).mean()))
                if need_heldout:
                    _, ha, hb = select(cells[:, :, split[0]].mean(axis=2))
                    out.append(float(cells[ha, hb, split[1]].mean()))
            return out

        null_stats = draw_null(n, statistic, n_permutations=draws, seed=seed, progress=progress)

    calibrated = None
    if permutations:
        calibrated = calibrate(
            score,
            null_stats[:, 0],
            alpha=alpha,
            chance=chance,
            max_score=measure.max_score,
            method=calibration,
        )
    per_sample_chance = None
    if per_sample:
        if null_stats is not None and (need_max or need_heldout):
            per_sample_chance = float(null_stats[:, 1].mean())
        elif calibrated is not None:
            per_sample_chance = calibrated.null_mean
        else:
            per_sample_chance = chance
    ci = None
    if bootstrap:
        ci = bootstrap_mean_ci(best_rows, n_bootstrap=bootstrap, confidence=ci_level, seed=seed)

    def layer(position: int | None, fixed: int | None) -> int | None:
        return fixed if fixed is not None else position

    return Comparison(
        metric=measure.name,
        k=measure.k_or_none,
        n=n,
        score=score,
        chance_level=chance,
        calibrated_score=None if calibrated is None else calibrated.calibrated,
        p_value=None if calibrated is None else calibrated.p_value,
        ci_low=None if ci is None else ci.low,
        ci_high=None if ci is None else ci.high,
        per_sample=np.asarray(values, dtype=np.float64) if per_sample else None,
        layer_a=layer(pos_a, fixed_a),
        layer_b=layer(pos_b, fixed_b),
        n_layer_pairs=prepared.n_pairs,
        selection=selection,
        calibration=calibration,
        null_quantile=None if calibrated is None else calibrated.null_quantile,
        null_mean=None if calibrated is None else calibrated.null_mean,
        n_permutations=permutations,
        alpha=alpha,
        ci_level=float(ci_level),
        n_bootstrap=bootstrap,
        max_score=measure.max_score,
        per_sample_layers=per_sample_layers,
        per_sample_rows=(rows if rows is not None else np.arange(n)) if per_sample else None,
        per_sample_chance=per_sample_chance,
        per_sample_inflated=inflated,
        per_sample_layer_a=layer(heldout_pair[0], fixed_a) if need_heldout else None,
        per_sample_layer_b=layer(heldout_pair[1], fixed_b) if need_heldout else None,
        grid=grid,
        options=measure.options(),
        outlier_quantile=outlier_quantile,
        outlier_exact=bool(outlier_exact) if outlier_quantile is not None else False,
    )
