"""Per-sample alignment against a covariate (length, perplexity, aesthetic score), per pair.

The study took, for every sample, the max over layer pairs of its per-sample mutual kNN.
That max inflates chance several-fold and couples the score to anything that changes the
neighbour structure, so it is not the default. Three modes:

* ``heldout`` (default): the samples are split in two halves with a fixed seed; the layer
  pair of each model pair is chosen on the *selection* half (highest mean mutual kNN,
  neighbours searched inside that half), and per-sample scores are reported on the other,
  *report* half (neighbours searched inside it). Chance is ``k / (N_report - 1)``.
* ``fixed``: one given layer per model (e.g. the last); all samples are reported.
* ``max``: the study's, to reproduce it: every sample's max over all candidate layer
  pairs, all samples reported (:func:`uaes_hf.alignment.compare` with
  ``per_sample_layers="max"``). **Inflated**: the ``chance`` column is then the mean
  per-sample max under a permutation null that takes the same max (not ``k/(N-1)``).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> spaces = {m: [rng.normal(size=(200, 16))] for m in "ab"}
    >>> cov = {"length": rng.normal(size=200)}
    >>> res = per_sample_alignment(spaces, [("a", "b")], cov, k=5)
    >>> bool(abs(res.slopes["slope"].iloc[0]) < 0.05)
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class PerSampleResult:
    """Per-sample scores (long table), fitted slopes, and the layer pair used per pair."""

    scores: Any  # DataFrame: model_a, model_b, layer_a, layer_b, sample, score, <covariates>
    slopes: Any  # DataFrame: model_a, model_b, covariate, slope, slope_per_sd, r, p_value, ...
    layers: Any  # DataFrame: model_a, model_b, layer_a, layer_b, selection_score, mode
    mode: str
    n_report: int
    chance: float


def split_halves(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint sorted halves of ``range(n)`` (selection, report).

    Example:
        >>> a, b = split_halves(7, seed=1)
        >>> len(a) + len(b), len(set(a) & set(b))
        (7, 0)
    """
    order = np.random.default_rng(seed).permutation(n)
    half = n // 2
    return np.sort(order[:half]), np.sort(order[half:])


def _indices(layers: Sequence[Any], rows: np.ndarray, k: int) -> list[np.ndarray]:
    from uaes_hf.alignment.neighbors import nearest_neighbors

    return [nearest_neighbors(np.asarray(layer)[rows], k).indices for layer in layers]


def _mean_overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from uaes_hf.alignment.mutual_knn import overlap_counts

    return overlap_counts(a, b) / a.shape[1]


def fit_slope(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """OLS slope of ``y`` on ``x`` with Pearson r and its two-sided p-value.

    Example:
        >>> fit_slope(np.arange(5.0), 2 * np.arange(5.0) + 1)["slope"]
        2.0
    """
    from scipy import stats

    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size < 3 or np.ptp(x) == 0:
        return {
            "slope": float("nan"),
            "slope_per_sd": float("nan"),
            "intercept": float("nan"),
            "r": float("nan"),
            "p_value": float("nan"),
            "n": int(x.size),
        }
    if np.ptp(y) == 0:
        return {
            "slope": 0.0,
            "slope_per_sd": 0.0,
            "intercept": float(y[0]),
            "r": 0.0,
            "p_value": 1.0,
            "n": int(x.size),
        }
    fit = stats.linregress(x, y)
    return {
        "slope": float(fit.slope),
        "slope_per_sd": float(fit.slope * x.std(ddof=1)),
        "intercept": float(fit.intercept),
        "r": float(fit.rvalue),
        "p_value": float(fit.pvalue),
        "n": int(x.size),
    }


def per_sample_alignment(
    spaces: Mapping[str, Sequence[Any]],
    pairs: Sequence[tuple[str, str]],
    covariates: Mapping[str, Any],
    *,
    k: int = 10,
    mode: str = "heldout",
    fixed_layers: Mapping[str, int] | None = None,
    layer_ids: Mapping[str, Sequence[int]] | None = None,
    seed: int = 0,
    sample_ids: Sequence[Any] | None = None,
    n_permutations: int = 100,
) -> PerSampleResult:
    """Per-sample mutual kNN for every pair, and its slope against each covariate.

    Args:
        spaces: model -> candidate layers, each an ``N x D`` matrix over the same N samples.
        pairs: (model A, model B) pairs to score.
        covariates: name -> length-N values (e.g. ``n_words``, ``log_perplexity``, score).
        k: neighbours.
        mode: ``"heldout"``, ``"fixed"`` or ``"max"`` (see the module docstring).
        fixed_layers: model -> position in ``spaces[model]`` for ``mode="fixed"`` (default:
            the last candidate).
        layer_ids: model -> the real layer number of each candidate (for the tables).
        seed: the split seed.
        sample_ids: ids for the per-sample table (default: row numbers).
        n_permutations: ``max`` mode: permutations for its chance level (0: the library's
            default for a selection null).

    Returns:
        A :class:`PerSampleResult`.
    """
    import pandas as pd

    if mode not in ("heldout", "fixed", "max"):
        raise ValueError(f"mode must be 'heldout', 'fixed' or 'max', got {mode!r}")
    if not spaces:
        raise ValueError("spaces is empty")
    sizes = {name: int(np.asarray(layers[0]).shape[0]) for name, layers in spaces.items()}
    n = next(iter(sizes.values()))
    if any(size != n for size in sizes.values()):
        raise ValueError(f"every model must describe the same N samples, got {sizes}")
    for name, values in covariates.items():
        if len(values) != n:
            raise ValueError(f"covariate {name!r} has {len(values)} values for N={n} samples")
    for a, b in pairs:
        for m in (a, b):
            if m not in spaces:
                raise ValueError(f"pair ({a!r}, {b!r}) names model {m!r} that has no features")
    ids = np.asarray(sample_ids) if sample_ids is not None else np.arange(n)
    layer_ids = dict(layer_ids or {})

    def real_layer(model: str, position: int) -> int:
        known = layer_ids.get(model)
        return int(known[position]) if known is not None else int(position)

    if mode == "heldout":
        select_rows, report_rows = split_halves(n, seed)
    else:
        select_rows, report_rows = np.zeros(0, dtype=int), np.arange(n)
    if report_rows.size <= k + 1:
        raise ValueError(f"the report half has {report_rows.size} samples, too few for k={k}")
    if mode == "max":
        return _per_sample_max(spaces, pairs, covariates, k, real_layer, seed, ids, n_permutations)

    models = sorted({m for pair in pairs for m in pair})
    report_idx = {}
    select_idx = {}
    for model in models:
        layers = spaces[model]
        if mode == "heldout":
            select_idx[model] = _indices(layers, select_rows, k)
            report_idx[model] = _indices(layers, report_rows, k)
        else:
            position = (fixed_layers or {}).get(model, len(layers) - 1)
            if not -len(layers) <= position < len(layers):
                raise ValueError(f"fixed layer {position} out of range for {model!r}")
            report_idx[model] = {position: _indices([layers[position]], report_rows, k)[0]}

    score_rows, slope_rows, layer_rows = [], [], []
    for a, b in pairs:
        if mode == "heldout":
            grid = np.array(
                [[_mean_overlap(ia, ib).mean() for ib in select_idx[b]] for ia in select_idx[a]]
            )
            pa, pb = np.unravel_index(int(np.argmax(grid)), grid.shape)
            per_sample = _mean_overlap(report_idx[a][pa], report_idx[b][pb])
            selection_score = float(grid[pa, pb])
        else:
            (pa, ia), (pb, ib) = (
                next(iter(report_idx[a].items())),
                next(iter(report_idx[b].items())),
            )
            per_sample = _mean_overlap(ia, ib)
            selection_score = float("nan")
        la, lb = real_layer(a, int(pa)), real_layer(b, int(pb))
        layer_rows.append(
            {
                "model_a": a,
                "model_b": b,
                "layer_a": la,
                "layer_b": lb,
                "selection_score": selection_score,
                "mode": mode,
            }
        )
        frame = {
            "model_a": a,
            "model_b": b,
            "layer_a": la,
            "layer_b": lb,
            "sample": ids[report_rows],
            "score": per_sample,
        }
        for name, values in covariates.items():
            frame[name] = np.asarray(values, dtype=float)[report_rows]
        score_rows.append(pd.DataFrame(frame))
        for name, values in covariates.items():
            fit = fit_slope(np.asarray(values, dtype=float)[report_rows], per_sample)
            slope_rows.append(
                {
                    "model_a": a,
                    "model_b": b,
                    "layer_a": la,
                    "layer_b": lb,
                    "covariate": name,
                    "mean_score": float(per_sample.mean()),
                    "chance": k / (report_rows.size - 1),
                    "mode": mode,
                    **fit,
                }
            )
    return PerSampleResult(
        scores=pd.concat(score_rows, ignore_index=True) if score_rows else pd.DataFrame(),
        slopes=pd.DataFrame(slope_rows),
        layers=pd.DataFrame(layer_rows),
        mode=mode,
        n_report=int(report_rows.size),
        chance=k / (report_rows.size - 1),
    )


def _per_sample_max(
    spaces: Mapping[str, Sequence[Any]],
    pairs: Sequence[tuple[str, str]],
    covariates: Mapping[str, Any],
    k: int,
    real_layer: Any,
    seed: int,
    ids: np.ndarray,
    n_permutations: int,
) -> PerSampleResult:
    """The study's per-sample max over every candidate layer pair, with its chance level
    under the same max (one neighbour search per model and layer, reused by every pair)."""
    import pandas as pd

    from uaes_hf.alignment import compare, nearest_neighbors

    models = sorted({m for pair in pairs for m in pair})
    indices = {m: [nearest_neighbors(np.asarray(x), k) for x in spaces[m]] for m in models}
    n = indices[models[0]][0].n_samples
    score_rows, slope_rows, layer_rows = [], [], []
    for i, (a, b) in enumerate(pairs):
        result = compare(
            indices[a],
            indices[b],
            k=k,
            per_sample=True,
            per_sample_layers="max",
            permutations=n_permutations,
            seed=seed + i,
        )
        values = np.asarray(result.per_sample, dtype=float)
        chance = float(result.per_sample_chance)
        span = f"{real_layer(a, 0)}..{real_layer(a, len(spaces[a]) - 1)}"
        layer_rows.append(
            {
                "model_a": a,
                "model_b": b,
                "layer_a": -1,
                "layer_b": -1,
                "selection_score": float(values.mean()),
                "mode": "max",
                "n_layer_pairs": int(result.n_layer_pairs),
                "layers_a": span,
                "layers_b": f"{real_layer(b, 0)}..{real_layer(b, len(spaces[b]) - 1)}",
                "chance": chance,
            }
        )
        frame = {"model_a": a, "model_b": b, "layer_a": -1, "layer_b": -1}
        frame.update(sample=ids, score=values)
        for name, column in covariates.items():
            frame[name] = np.asarray(column, dtype=float)
        score_rows.append(pd.DataFrame(frame))
        for name, column in covariates.items():
            fit = fit_slope(np.asarray(column, dtype=float), values)
            slope_rows.append(
                {
                    "model_a": a,
                    "model_b": b,
                    "layer_a": -1,
                    "layer_b": -1,
                    "covariate": name,
                    "mean_score": float(values.mean()),
                    "chance": chance,
                    "chance_one_pair": k / (n - 1),
                    "mode": "max",
                    "inflated": bool(result.per_sample_inflated),
                    **fit,
                }
            )
    slopes = pd.DataFrame(slope_rows)
    return PerSampleResult(
        scores=pd.concat(score_rows, ignore_index=True) if score_rows else pd.DataFrame(),
        slopes=slopes,
        layers=pd.DataFrame(layer_rows),
        mode="max",
        n_report=int(n),
        chance=float(slopes["chance"].mean()) if len(slopes) else k / (n - 1),
    )


def mean_by_level(scores: Any, covariate: str) -> Any:
    """Mean per-sample score per value of a discrete covariate (e.g. image level), per pair.

    Returns:
        DataFrame: model_a, model_b, <covariate>, mean_score, n.
    """
    grouped = scores.groupby(["model_a", "model_b", covariate])["score"]
    return grouped.agg(mean_score="mean", n="size").reset_index()
