"""Figures of the report (matplotlib, Agg backend): each function writes one PNG.

Every function takes plain arrays or tidy tables and a path, so the report can be re-drawn
from stored results alone (``uaes report``). The model x model heatmap has one
implementation, :func:`heatmap_figure`, which returns the figure: the report saves it
(:func:`heatmap`) and the Space shows it.

Example:
    >>> import numpy as np, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "h.png"
    >>> heatmap(np.eye(2), ["a", "b"], ["a", "b"], "t", path).is_file()
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (files only, no display; imported on first use)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path, dpi: int) -> Path:
    """Save ``fig`` to ``path`` (folders made), close it, return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    pyplot().close(fig)
    return path


def _draw_heatmap(
    ax: Any,
    values: np.ndarray,
    rows: Sequence[str],
    cols: Sequence[str],
    title: str,
    *,
    diverging: bool = False,
    fmt: str = "{:.3f}",
    calibrated: np.ndarray | None = None,
) -> Any:
    """Annotated heatmap; with ``calibrated``, each cell also shows ``cal +0.12``."""
    finite = values[np.isfinite(values)]
    if diverging:
        bound = float(np.max(np.abs(finite))) if finite.size else 1.0
        bound = bound or 1.0
        image = ax.imshow(values, cmap="RdBu_r", vmin=-bound, vmax=bound)
    else:
        image = ax.imshow(
            values,
            cmap="viridis",
            vmin=float(finite.min()) if finite.size else 0,
            vmax=float(finite.max()) if finite.size else 1,
        )
    ax.set_xticks(range(len(cols)), cols, rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_title(title, fontsize=10)
    mid = (float(finite.min()) + float(finite.max())) / 2 if finite.size else 0
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            v = values[i, j]
            if np.isfinite(v):
                light = diverging and abs(v) > 0.6 * (np.max(np.abs(finite)) or 1)
                dark_bg = (not diverging) and v < mid
                text = fmt.format(v)
                if calibrated is not None and np.isfinite(calibrated[i, j]):
                    text += f"\ncal {calibrated[i, j]:+.2f}"
                ax.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize=7 if calibrated is None else 6.5,
                    color="white" if (light or dark_bg) else "black",
                )
    return image


def heatmap_figure(
    values: np.ndarray,
    rows: Sequence[str],
    cols: Sequence[str],
    title: str,
    *,
    diverging: bool = False,
    colorbar_label: str = "mutual kNN",
    calibrated: np.ndarray | None = None,
    dpi: float | None = None,
) -> Any:
    r"""One annotated model x model heatmap as a matplotlib figure (NaN cells left blank);
    with ``calibrated``, each cell also shows its calibrated score. The caller saves or
    shows it (and closes it).

    Example:
        >>> import numpy as np
        >>> fig = heatmap_figure(np.array([[np.nan, 0.4], [0.4, np.nan]]), ["a", "b"],
        ...                      ["a", "b"], "mutual kNN", calibrated=np.full((2, 2), 0.2))
        >>> [t.get_text() for t in fig.axes[0].texts]
        ['0.400\ncal +0.20', '0.400\ncal +0.20']
    """
    plt = pyplot()
    values = np.asarray(values, dtype=float)
    size = (1.4 + 0.95 * len(cols), 1.0 + 0.75 * len(rows))
    fig, ax = plt.subplots(figsize=size) if dpi is None else plt.subplots(figsize=size, dpi=dpi)
    cal = None if calibrated is None else np.asarray(calibrated, dtype=float)
    image = _draw_heatmap(ax, values, rows, cols, title, diverging=diverging, calibrated=cal)
    fig.colorbar(image, ax=ax, shrink=0.8, label=colorbar_label)
    return fig


def heatmap(
    values: np.ndarray,
    rows: Sequence[str],
    cols: Sequence[str],
    title: str,
    path: str | Path,
    *,
    diverging: bool = False,
    dpi: int = 110,
    colorbar_label: str = "mutual kNN",
    calibrated: np.ndarray | None = None,
) -> Path:
    """:func:`heatmap_figure` saved as a PNG at ``path``."""
    fig = heatmap_figure(
        values, rows, cols, title, diverging=diverging, colorbar_label=colorbar_label,
        calibrated=calibrated,
    )  # fmt: skip
    return save_figure(fig, path, dpi)


def three_heatmaps(
    left: np.ndarray,
    right: np.ndarray,
    labels: Sequence[str],
    titles: tuple[str, str],
    path: str | Path,
    *,
    dpi: int = 110,
    calibrated: tuple[np.ndarray, np.ndarray] | None = None,
    chance: float | None = None,
) -> Path:
    """The study's layout: scores on A (left), A - B (middle, diverging), scores on B.

    With ``calibrated`` (A's and B's calibrated matrices) each side's cells also show their
    calibrated score; ``chance`` (k/(N-1), equal on both sides) goes into the side titles.
    """
    plt = pyplot()
    n = len(labels)
    fig, axes = plt.subplots(1, 3, figsize=(3 * (1.3 + 0.85 * n), 1.3 + 0.8 * n))
    cals = calibrated if calibrated is not None else (None, None)
    suffix = f"\n(chance {chance:.3f})" if chance is not None else ""
    for ax, values, title, cal in (
        (axes[0], left, titles[0], cals[0]),
        (axes[2], right, titles[1], cals[1]),
    ):
        image = _draw_heatmap(
            ax,
            np.asarray(values, float),
            labels,
            labels,
            title + suffix,
            calibrated=None if cal is None else np.asarray(cal, float),
        )
        fig.colorbar(image, ax=ax, shrink=0.7)
    diff = np.asarray(left, float) - np.asarray(right, float)
    image = _draw_heatmap(
        axes[1], diff, labels, labels, f"{titles[0]} - {titles[1]}", diverging=True, fmt="{:+.3f}"
    )
    fig.colorbar(image, ax=axes[1], shrink=0.7)
    fig.tight_layout()
    return save_figure(fig, path, dpi)


def capability_plot(
    table: Any,
    capability_column: str,
    path: str | Path,
    *,
    title: str,
    group_column: str | None = None,
    dpi: int = 110,
) -> Path:
    """Alignment with the reference model vs capability; circle area ~ parameters."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    groups = [(None, table)] if group_column is None else list(table.groupby(group_column))
    for name, part in groups:
        part = part.sort_values(capability_column)
        sizes = 30 + 300 * np.sqrt(part["params_millions"].fillna(100).to_numpy() / 1000.0)
        ax.scatter(
            part[capability_column],
            part["score"],
            s=sizes,
            alpha=0.6,
            label=None if name is None else str(name),
        )
        ax.plot(part[capability_column], part["score"], alpha=0.4)
        if "ci_low" in part:
            ax.vlines(part[capability_column], part["ci_low"], part["ci_high"], alpha=0.5)
        for row in part.itertuples():
            ax.annotate(
                str(row.model),
                (getattr(row, capability_column), row.score),
                fontsize=7,
                xytext=(4, 4),
                textcoords="offset points",
            )
    if "chance" in table:
        ax.axhline(float(table["chance"].mean()), ls="--", c="grey", lw=1, label="chance")
    ax.set_xlabel(capability_column)
    ax.set_ylabel("mutual kNN with the reference model")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return save_figure(fig, path, dpi)


def slope_grid(
    scores: Any,
    slopes: Any,
    models: Sequence[str],
    covariate: str,
    path: str | Path,
    *,
    title: str,
    k: int,
    log_x: bool = False,
    dpi: int = 110,
    seed: int = 0,
) -> Path:
    """Per-sample alignment vs a covariate for every pair: lower triangle scatter (jittered,
    with binned means), upper triangle the fitted line and its slope."""
    plt = pyplot()
    m = len(models)
    fig, axes = plt.subplots(m, m, figsize=(2.0 * m + 1, 2.0 * m + 0.5), squeeze=False)
    rng = np.random.default_rng(seed)
    for i, a in enumerate(models):
        for j, b in enumerate(models):
            ax = axes[i, j]
            ax.tick_params(labelsize=6)
            if i == j:
                ax.text(0.5, 0.5, a, ha="center", va="center", fontsize=8, transform=ax.transAxes)
                ax.set_xticks([])
                ax.set_yticks([])
                continue
            pa, pb = (a, b) if (a, b) in _pairs(scores) else (b, a)
            part = scores[(scores["model_a"] == pa) & (scores["model_b"] == pb)]
            fit = slopes[
                (slopes["model_a"] == pa)
                & (slopes["model_b"] == pb)
                & (slopes["covariate"] == covariate)
            ]
            if part.empty:
                ax.axis("off")
                continue
            x = part[covariate].to_numpy(float)
            y = part["score"].to_numpy(float)
            keep = np.isfinite(x) & np.isfinite(y)
            x, y = x[keep], y[keep]
            xs = np.log10(x) if log_x else x
            if i > j:
                ax.scatter(xs, y + rng.normal(0, 0.5 / k, y.size), s=3, alpha=0.35)
                if xs.size >= 8:
                    edges = np.unique(np.quantile(xs, np.linspace(0, 1, 6)))
                    centers, means = [], []
                    for lo, hi in zip(edges[:-1], edges[1:], strict=False):
                        sel = (xs >= lo) & (xs <= hi)
                        if sel.any():
                            centers.append(xs[sel].mean())
                            means.append(y[sel].mean())
                    ax.plot(centers, means, "o-", c="C3", ms=3)
            elif not fit.empty:
                row = fit.iloc[0]
                grid = np.linspace(np.nanmin(x), np.nanmax(x), 20)
                ax.plot(
                    np.log10(grid) if log_x else grid,
                    row["intercept"] + row["slope"] * grid,
                    c="C1",
                )
                colour = "C3" if row["p_value"] < 0.05 else "black"
                ax.set_title(
                    f"slope/SD {row['slope_per_sd']:+.3f}\np={row['p_value']:.2g}",
                    fontsize=7,
                    color=colour,
                )
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, dpi)


def _pairs(scores: Any) -> set[tuple[str, str]]:
    return set(zip(scores["model_a"], scores["model_b"], strict=False))


def scatter_map(coords: Any, path: str | Path, *, title: str, hue: str, dpi: int = 110) -> Path:
    """A 2-D map (t-SNE) coloured by a column (numeric -> colormap, else categories)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    values = coords[hue]
    from pandas.api.types import is_numeric_dtype

    if is_numeric_dtype(values) and values.nunique() > 6:
        points = ax.scatter(coords["x"], coords["y"], c=values, s=8, cmap="viridis")
        fig.colorbar(points, ax=ax, label=hue)
    else:
        for name, part in coords.groupby(hue):
            ax.scatter(part["x"], part["y"], s=8, alpha=0.7, label=f"{name} (n={len(part)})")
        ax.legend(fontsize=7, markerscale=2)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)
    return save_figure(fig, path, dpi)


def word_cloud(
    frequencies: Mapping[str, int], path: str | Path, *, title: str, dpi: int = 110, seed: int = 0
) -> Path:
    """A word cloud of content-word counts (wordcloud package)."""
    from wordcloud import WordCloud

    plt = pyplot()
    cloud = WordCloud(
        width=640, height=360, background_color="white", random_state=seed, prefer_horizontal=0.9
    ).generate_from_frequencies(dict(frequencies) or {"-": 1})
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    ax.imshow(cloud, interpolation="bilinear")
    ax.axis("off")
    ax.set_title(title, fontsize=10)
    return save_figure(fig, path, dpi)


def length_histograms(
    panels: Sequence[tuple[str, Mapping[str, np.ndarray]]], path: str | Path, *, dpi: int = 110
) -> Path:
    """One panel per (title, {label: word counts}), overlaid density histograms."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False)
    every = np.concatenate([np.asarray(v, float) for _, d in panels for v in d.values()])
    bins = np.linspace(0, float(np.percentile(every, 99)) + 1 if every.size else 1, 30)
    for ax, (title, series) in zip(axes[0], panels, strict=False):
        for label, values in series.items():
            values = np.asarray(values, float)
            if values.size:
                ax.hist(
                    values,
                    bins=bins,
                    alpha=0.5,
                    density=True,
                    label=f"{label} (n={values.size}, median {np.median(values):.0f})",
                )
        ax.set_xlabel("words")
        ax.set_ylabel("density")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path, dpi)


def boxplot(
    groups: Mapping[str, np.ndarray],
    path: str | Path,
    *,
    title: str,
    ylabel: str,
    log_y: bool = False,
    dpi: int = 110,
) -> Path:
    """Box plots of one quantity per group (e.g. perplexity of poems vs plain texts)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(1.8 + 1.4 * len(groups), 4))
    names = list(groups)
    ax.boxplot([np.asarray(groups[n], float) for n in names], showfliers=False)
    ax.set_xticks(
        range(1, len(names) + 1), [f"{n}\n(n={len(groups[n])})" for n in names], fontsize=8
    )
    if log_y:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    return save_figure(fig, path, dpi)


def jitter_scatter(
    x: np.ndarray,
    y: np.ndarray,
    path: str | Path,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    log_y: bool = False,
    dpi: int = 110,
    seed: int = 0,
) -> Path:
    """Scatter of a discrete x (jittered, e.g. aesthetic score) vs y with per-x means."""
    plt = pyplot()
    rng = np.random.default_rng(seed)
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.scatter(x + rng.normal(0, 0.08, x.size), y, s=8, alpha=0.5)
    levels = np.unique(x)
    ax.plot(levels, [y[x == v].mean() for v in levels], "o-", c="C3", label="mean")
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return save_figure(fig, path, dpi)


def bar_table(
    labels: Sequence[str],
    values: Sequence[float],
    path: str | Path,
    *,
    title: str,
    ylabel: str,
    dpi: int = 110,
) -> Path:
    """A bar chart with the values written on the bars."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(1.5 + 1.2 * len(labels), 3.6))
    bars = ax.bar(range(len(labels)), values, color="C0")
    for bar, value in zip(bars, values, strict=False):
        ax.text(
            bar.get_x() + bar.get_width() / 2,
            bar.get_height(),
            f"{value:.4f}",
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_xticks(range(len(labels)), labels, rotation=20, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    return save_figure(fig, path, dpi)


def level_lines(
    table: Any,
    path: str | Path,
    *,
    title: str,
    chance: float | None = None,
    level_column: str = "image_aesthetic_level",
    dpi: int = 110,
) -> Path:
    """Mean per-sample score per level: one thin line per model pair, the mean over pairs bold.

    ``table`` has ``model_a``, ``model_b``, ``level_column``, ``mean_score`` and ``n``.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    for _, part in table.groupby(["model_a", "model_b"]):
        part = part.sort_values(level_column)
        ax.plot(part[level_column], part["mean_score"], color="0.6", lw=0.8, alpha=0.6)
    mean = table.groupby(level_column)["mean_score"].mean().sort_index()
    ax.plot(mean.index, mean.to_numpy(), color="C3", lw=2.5, marker="o", label="mean over pairs")
    if chance is not None:
        ax.axhline(chance, color="k", ls="--", lw=1, label=f"chance {chance:.3f}")
    counts = table.groupby(level_column)["n"].first().sort_index()
    ax.set_xticks(
        counts.index, [f"{int(lvl)}\n(n={int(n)})" for lvl, n in counts.items()], fontsize=8
    )
    ax.set_xlabel("image aesthetic level")
    ax.set_ylabel("per-sample mutual kNN")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path, dpi)
