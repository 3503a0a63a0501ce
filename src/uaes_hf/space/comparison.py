"""The "Your features" tab: one request -> the budget -> :func:`uaes_hf.alignment.compare`.

Nothing here composes a score with its statistics: :func:`compare_request` checks the
budget, calls the library's one comparison function and returns its
:class:`~uaes_hf.alignment.compare.Comparison`; :func:`summary_markdown`,
:func:`numbers_rows` and :func:`per_sample_figure` only present it.

Example:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(60, 8))
    >>> result = compare_request(x, 2 * x, CompareSettings(k=5, permutations=20))
    >>> result.score, dict(numbers_rows(result))["calibrated"]
    (1.0, 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from uaes_hf.space.budget import SpaceBudget

PER_SAMPLE_METRICS = ("mutual_knn", "cycle_knn", "lcs_knn", "edit_distance_knn")


@dataclass(frozen=True)
class CompareSettings:
    """What a visitor chose: metric, k, permutations and the outlier clamp."""

    metric: str = "mutual_knn"
    k: int = 10
    permutations: int = 200
    outlier_quantile: float | None = None
    outlier_exact: bool = False

    @classmethod
    def from_inputs(
        cls,
        metric: Any,
        k: Any,
        permutations: Any,
        clamp: Any = False,
        quantile: Any = None,
        exact: Any = False,
    ) -> CompareSettings:
        """From widget values (numbers may arrive as floats or None)."""
        if k is None or permutations is None:
            raise ValueError("k and permutations need a value")
        if clamp and quantile is None:
            raise ValueError("the outlier clamp needs a quantile (e.g. 0.95)")
        return cls(
            metric=str(metric or "mutual_knn"),
            k=_whole(k, "k"),
            permutations=_whole(permutations, "permutations"),
            outlier_quantile=float(quantile) if clamp else None,
            outlier_exact=bool(exact) if clamp else False,
        )


def _whole(value: Any, name: str) -> int:
    number = float(value)
    if not number.is_integer():
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return int(number)


def check_request(
    shape_a: tuple[int, ...],
    shape_b: tuple[int, ...],
    settings: CompareSettings,
    budget: SpaceBudget,
) -> None:
    """Everything that can be refused from the two shapes alone (before reading or
    computing anything): N mismatch and the budget.

    Example:
        >>> check_request((80, 4), (50, 4), CompareSettings(), SpaceBudget())
        Traceback (most recent call last):
        ValueError: features A has 80 rows but features B has 50: give two files with the same samples in the same order
    """
    if shape_a[0] != shape_b[0]:
        raise ValueError(
            f"features A has {shape_a[0]} rows but features B has {shape_b[0]}: give two "
            "files with the same samples in the same order"
        )
    budget.check_compare(
        settings.metric,
        n=int(shape_a[0]),
        dims=(int(shape_a[-1]), int(shape_b[-1])),
        k=settings.k,
        permutations=settings.permutations,
    )


def compare_request(
    features_a: Any,
    features_b: Any,
    settings: CompareSettings,
    budget: SpaceBudget | None = None,
) -> Any:
    """Check the request against the budget, then compare (one call of the library).

    Raises:
        BudgetError: over a limit (the message names it).
        ValueError: bad input (shapes, N mismatch, NaN, k >= N ...), from the library.
    """
    from uaes_hf.alignment import compare

    a, b = np.asarray(features_a), np.asarray(features_b)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"expected two 2-D arrays (N x D), got shapes {a.shape} and {b.shape}")
    check_request(a.shape, b.shape, settings, budget or SpaceBudget())
    return compare(
        a,
        b,
        metric=settings.metric,
        k=settings.k,
        permutations=settings.permutations,
        per_sample=settings.metric in PER_SAMPLE_METRICS,
        outlier_quantile=settings.outlier_quantile,
        outlier_exact=settings.outlier_exact,
    )


def _rounded(value: Any) -> Any:
    return None if value is None else round(float(value), 6)


def numbers_rows(result: Any) -> list[list[Any]]:
    """``[quantity, value]`` rows of a comparison (the metric's own name for the score)."""
    clamp = "none"
    if result.outlier_quantile is not None:
        clamp = f"q={result.outlier_quantile}" + (" exact" if result.outlier_exact else "")
    rows = [
        [result.metric, _rounded(result.score)],
        ["chance_level", _rounded(result.chance_level)],
        ["null_mean", _rounded(result.null_mean)],
        ["null_quantile_95", _rounded(result.null_quantile)],
        ["calibrated", _rounded(result.calibrated_score)],
        ["p_value", _rounded(result.p_value)],
        ["k", result.k],
        ["N", result.n],
        ["n_permutations", result.n_permutations],
        ["outlier_clamp", clamp],
    ]
    return [[name, "" if value is None else value] for name, value in rows]


def summary_markdown(result: Any) -> str:
    """One Markdown paragraph for people."""
    k_text = f"k={result.k}, " if result.k is not None else ""
    parts = [f"**{result.metric} = {result.score:.3f}** ({k_text}N={result.n})."]
    if result.chance_level is not None:
        parts.append(f"Chance level {result.chance_level:.3f}.")
    if result.calibrated_score is not None:
        parts.append(
            f"Permutation null: mean {result.null_mean:.3f}, 95% quantile "
            f"{result.null_quantile:.3f} ({result.n_permutations} shuffles of B's rows). "
            f"**Calibrated score = {result.calibrated_score:.3f}** (0 = null quantile, "
            f"1 = identical), p = {result.p_value:.3g}."
        )
    if result.outlier_quantile is not None:
        how = "exact" if result.outlier_exact else "per-row mean"
        parts.append(f"Features clamped at the {result.outlier_quantile} quantile ({how}).")
    return " ".join(parts)


def per_sample_histogram(per_sample: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Counts of samples sharing 0, 1, ..., k neighbours (x = shared / k).

    Example:
        >>> import numpy as np
        >>> per_sample_histogram(np.array([0.0, 0.5, 0.5, 1.0]), k=2)[1].tolist()
        [1, 2, 1]
    """
    shared = np.rint(np.asarray(per_sample, dtype=float) * k).astype(int)
    counts = np.bincount(np.clip(shared, 0, k), minlength=k + 1)[: k + 1]
    return np.arange(k + 1) / k, counts


def per_sample_figure(result: Any) -> Any:
    """Histogram of the per-sample scores, the mean and chance marked (None without them)."""
    if result.per_sample is None:
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.4), dpi=100)
    if result.metric == "mutual_knn":
        x, counts = per_sample_histogram(result.per_sample, result.k)
        ax.bar(x, counts, width=0.8 / result.k, color="#4c72b0")
        ax.set_xlabel(f"shared neighbours / k  (k = {result.k})")
    else:
        ax.hist(result.per_sample, bins=min(30, result.k + 1), color="#4c72b0")
        ax.set_xlabel(f"per-sample {result.metric}")
    ax.axvline(result.score, color="#c44e52", lw=2, label=f"mean = {result.score:.3f}")
    if result.chance_level is not None:
        ax.axvline(
            result.chance_level, color="grey", ls="--", label=f"chance = {result.chance_level:.3f}"
        )
    ax.set_ylabel("samples")
    ax.set_title(f"Per-sample {result.metric} (N = {result.n})")
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig
