"""The Convergence tab's views of the main job's tidy convergence table.

The heatmap is the report's own (:func:`uaes_hf.experiments.plots.heatmap_figure`), its
matrix the report's own (:func:`uaes_hf.experiments.convergence.matrix`); this module only
picks the rows of one subset, k and metric.

Example:
    >>> import pandas as pd
    >>> table = pd.DataFrame({"subset": "poems", "k": 10, "metric": "mutual_knn",
    ...     "model_a": ["a", "a", "b"], "model_b": ["b", "c", "c"], "score": [0.5, 0.3, 0.2],
    ...     "chance": 0.1, "calibrated": 0.4})
    >>> rows, cols, values, calibrated = convergence_matrices(
    ...     convergence_cells(table, subset="poems", k=10, metric="mutual_knn"))
    >>> rows, values.tolist()
    (['a', 'b', 'c'], [[nan, 0.5, 0.3], [0.5, nan, 0.2], [0.3, 0.2, nan]])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# Columns of a heatmap's values table, besides the two models (when the results have them).
VALUE_COLUMNS = ("score", "chance", "calibrated", "p_value", "ci_low", "ci_high")
EXTRA_COLUMNS = ("layer_a", "layer_b", "n")


def convergence_choices(table: Any) -> dict[str, list[Any]]:
    """The subsets, k values and metrics present in a tidy convergence table.

    Example:
        >>> import pandas as pd
        >>> t = pd.DataFrame({"subset": ["poems", "plain"], "k": [10, 10],
        ...                   "metric": ["mutual_knn"] * 2})
        >>> convergence_choices(t)["subset"]
        ['plain', 'poems']
    """
    return {
        "subset": sorted(map(str, table["subset"].unique())),
        "k": sorted(int(v) for v in table["k"].unique()),
        "metric": sorted(map(str, table["metric"].unique())),
    }


def default_subset(subsets: Sequence[str]) -> str | None:
    """The subset shown first: the study's headline (all poems) when present.

    Example:
        >>> default_subset(["clusters/poems", "poems_vs_plain/poems", "poems_vs_plain/plain"])
        'poems_vs_plain/poems'
    """
    for wanted in ("poems_vs_plain/poems", "poems"):
        if wanted in subsets:
            return wanted
    return next(iter(subsets), None)


def convergence_cells(table: Any, *, subset: str, k: int, metric: str) -> Any:
    """The rows of one heatmap: one per model pair, the table's own values (not recomputed),
    with ``subset`` kept for :func:`convergence_matrices`."""
    picked = table[
        (table["subset"].astype(str) == str(subset))
        & (table["k"].astype(int) == int(k))
        & (table["metric"].astype(str) == str(metric))
    ]
    if picked.empty:
        choices = convergence_choices(table)
        raise ValueError(
            f"no results for subset={subset!r}, k={k}, metric={metric!r}; available: "
            f"subsets {choices['subset']}, k {choices['k']}, metrics {choices['metric']}"
        )
    # one cell per model pair (a table may repeat a pair, e.g. from several comparisons)
    picked = picked.drop_duplicates(subset=["model_a", "model_b"])
    keep = ["subset", "model_a", "model_b"]
    keep += [c for c in VALUE_COLUMNS + EXTRA_COLUMNS if c in picked.columns]
    return picked[keep].reset_index(drop=True)


def values_table(cells: Any) -> Any:
    """What the values table shows: six decimals (the report's CSV keeps full precision)."""
    return cells.drop(columns=["subset"]).round(6)


def convergence_matrices(cells: Any) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """``(rows, columns, scores, calibrated)`` of one heatmap.

    Within one model family (A and B models overlap) the matrix is square and symmetric
    with NaN on the diagonal; across families (LLMs x vision models) rows are the A models
    and columns the B models.
    """
    from uaes_hf.experiments.convergence import matrix

    models_a = list(dict.fromkeys(map(str, cells["model_a"])))
    models_b = list(dict.fromkeys(map(str, cells["model_b"])))
    subset = str(cells["subset"].iloc[0])
    if set(models_a) & set(models_b):
        models = sorted(set(models_a) | set(models_b))
        return (
            models,
            models,
            matrix(cells, subset, models),
            matrix(cells, subset, models, value="calibrated"),
        )
    return (
        models_a,
        models_b,
        matrix(cells, subset, models_a, models_b=models_b),
        matrix(cells, subset, models_a, value="calibrated", models_b=models_b),
    )


def heatmap_title(cells: Any, *, subset: str, k: int, metric: str) -> str:
    """``subset · metric · k=10 (chance 0.170)`` (the chance range when it varies)."""
    chance = cells["chance"].astype(float)
    if chance.isna().all():
        text = ""
    elif np.isclose(chance.min(), chance.max()):
        text = f" (chance {chance.min():.3f})"
    else:
        text = f" (chance {chance.min():.3f}-{chance.max():.3f})"
    return f"{subset} · {metric} · k={int(k)}{text}"


def convergence_figure(cells: Any, *, subset: str, k: int, metric: str) -> Any:
    """The model x model heatmap of one subset, k and metric (the report's heatmap)."""
    from uaes_hf.experiments import plots

    rows, columns, values, calibrated = convergence_matrices(cells)
    title = heatmap_title(cells, subset=subset, k=k, metric=metric)
    figure = plots.heatmap_figure(
        values, rows, columns, title, colorbar_label=metric, calibrated=calibrated, dpi=100
    )
    figure.tight_layout()  # the report saves with a tight box; the Space shows the figure
    return figure
