"""Figures of the report's statistics (matplotlib, Agg backend): each function writes one PNG.

The headline's interval per comparison (a forest plot), the headline beside its lexical
and embedding-layer variants, and alignment against both capability scores the study
used. Plain tables in, a path out, so ``uaes report`` can re-draw them from results.

Example:
    >>> import tempfile, pandas as pd
    >>> from pathlib import Path
    >>> t = pd.DataFrame({"comparison": ["a"], "observed": [0.1], "ci_low": [0.0],
    ...                   "ci_high": [0.2], "p_value": [0.04]})
    >>> forest_plot(t, Path(tempfile.mkdtemp()) / "f.png", title="t", dpi=40).suffix
    '.png'
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from uaes_hf.experiments.plots import pyplot, save_figure


def forest_plot(tests: Any, path: str | Path, *, title: str, dpi: int = 110) -> Path:
    """One row per comparison: the mean-over-pairs difference and its interval."""
    plt = pyplot()
    rows = tests.reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.4))
    y = np.arange(len(rows))[::-1]
    low = rows["ci_low"].to_numpy(float)
    high = rows["ci_high"].to_numpy(float)
    centre = rows["observed"].to_numpy(float)
    has = np.isfinite(low) & np.isfinite(high)
    ax.hlines(y[has], low[has], high[has], color="tab:blue", lw=2)
    ax.plot(centre, y, "o", color="tab:blue")
    ax.axvline(0.0, color="grey", ls="--", lw=1)
    labels = [
        f"{r.comparison} (p={float(r.p_value):.3g})" if np.isfinite(r.p_value) else r.comparison
        for r in rows.itertuples()
    ]
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel("mean over model pairs of (score on side A - side B)")
    ax.set_title(title, fontsize=10)
    return save_figure(fig, path, dpi)


def variant_bars(variants: Any, path: str | Path, *, title: str, dpi: int = 110) -> Path:
    """Grouped bars: each comparison's mean difference under every variant."""
    plt = pyplot()
    comparisons = list(dict.fromkeys(variants["comparison"]))
    names = list(dict.fromkeys(variants["variant"]))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(comparisons) + 2), 4.2))
    width = 0.8 / max(len(names), 1)
    x = np.arange(len(comparisons))
    for i, name in enumerate(names):
        part = variants[variants["variant"] == name].set_index("comparison")
        values = [float(part["mean_difference"].get(c, np.nan)) for c in comparisons]
        ax.bar(x + (i - (len(names) - 1) / 2) * width, values, width, label=name)
    ax.axhline(0.0, color="grey", lw=1)
    ax.set_xticks(x, comparisons, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("mean difference (side A - side B)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    return save_figure(fig, path, dpi)


def capability_panels(
    table: Any,
    columns: Sequence[str],
    path: str | Path,
    *,
    title: str,
    labels: Sequence[str] | None = None,
    dpi: int = 110,
) -> Path:
    """Alignment with the reference model against each capability column, side by side
    (circle area ~ parameters); a panel without scores says so."""
    plt = pyplot()
    labels = list(labels or columns)
    fig, axes = plt.subplots(1, len(columns), figsize=(5.2 * len(columns), 4.3), squeeze=False)
    for ax, column, label in zip(axes[0], columns, labels, strict=True):
        part = table[table[column].notna()] if column in table else table.iloc[:0]
        if part.empty:
            ax.text(0.5, 0.5, f"no {label} recorded\nfor these models", ha="center", va="center")
            ax.set_xticks([])
            ax.set_yticks([])
        for subset, group in part.groupby("subset", sort=False):
            group = group.sort_values(column)
            sizes = 30 + 300 * np.sqrt(group["params_millions"].fillna(100).to_numpy() / 1000.0)
            ax.scatter(group[column], group["score"], s=sizes, alpha=0.6, label=str(subset))
            ax.plot(group[column], group["score"], alpha=0.4)
            ax.vlines(group[column], group["ci_low"], group["ci_high"], alpha=0.5)
            for row in group.itertuples():
                ax.annotate(
                    str(row.model),
                    (getattr(row, column), row.score),
                    fontsize=7,
                    xytext=(4, 4),
                    textcoords="offset points",
                )
        if not part.empty:
            ax.axhline(float(part["chance"].mean()), ls="--", c="grey", lw=1, label="chance")
            ax.legend(fontsize=7)
        ax.set_xlabel(label)
        ax.set_ylabel("mutual kNN with the reference model")
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path, dpi)
