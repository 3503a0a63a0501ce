"""Figures of the retrieval report (matplotlib, Agg backend); each function writes one PNG.

Example:
    >>> import tempfile, pathlib
    >>> metrics = {"a": {"aesthetics": {"mean": 5, "ci_low": 4, "ci_high": 6},
    ...                  "relevance": {"mean": 0.3, "ci_low": 0.2, "ci_high": 0.4}}}
    >>> tradeoff_plot(metrics, pathlib.Path(tempfile.mkdtemp()) / "t.png", k=5).suffix
    '.png'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path, dpi: int = 110) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    _plt().close(fig)
    return path


def tradeoff_plot(metrics: Mapping[str, Any], path: str | Path, *, k: int) -> Path:
    """aesthetics@k (y) against relevance@k (x), one point per system with 95% CIs."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.0, 4.4))
    for system, values in metrics.items():
        rel, aes = values["relevance"], values["aesthetics"]
        ax.errorbar(
            rel["mean"],
            aes["mean"],
            xerr=[[rel["mean"] - rel["ci_low"]], [rel["ci_high"] - rel["mean"]]],
            yerr=[[aes["mean"] - aes["ci_low"]], [aes["ci_high"] - aes["mean"]]],
            fmt="o",
            capsize=4,
            label=system,
        )
        ax.annotate(system, (rel["mean"], aes["mean"]), textcoords="offset points", xytext=(6, 6))
    ax.set_xlabel(f"relevance@{k} (cosine to the original query)")
    ax.set_ylabel(f"aesthetics@{k} (aesthetic score)")
    ax.set_title("Aesthetics vs relevance of the top results")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def win_rate_plot(comparisons: Mapping[str, Any], path: str | Path, *, judge: str) -> Path:
    """Stacked win / similar / loss bars per comparison and aspect, win-rate CIs as ticks."""
    plt = _plt()
    labels, wins, similar, losses, lows, highs = [], [], [], [], [], []
    for name, comparison in comparisons.items():
        for aspect, rate in comparison["aspects"].items():
            labels.append(f"{name.replace('_vs_', ' vs ')}: {aspect}")
            wins.append(rate["win_rate"])
            similar.append(rate["similar_rate"])
            losses.append(rate["loss_rate"])
            lows.append(rate["ci_low"])
            highs.append(rate["ci_high"])
    y = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(7.5, 0.38 * len(labels) + 1.4))
    ax.barh(y, wins, color="#2a9d8f", label="win")
    ax.barh(y, similar, left=wins, color="#cccccc", label="similar")
    ax.barh(y, losses, left=np.add(wins, similar), color="#e76f51", label="loss")
    ax.errorbar(
        wins,
        y,
        xerr=[np.subtract(wins, lows), np.subtract(highs, wins)],
        fmt="none",
        ecolor="black",
        capsize=3,
    )
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of held-out queries")
    ax.set_title(f"Order-swapped pairwise judge: {judge}", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def training_plot(
    lit_history: Sequence[float], finetune_history: Sequence[Mapping[str, float]], path: str | Path
) -> Path:
    """LiT loss per epoch (left) and fine-tuning losses and pair accuracy per step (right)."""
    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    if lit_history:
        left.plot(np.arange(1, len(lit_history) + 1), lit_history, marker=".")
    left.set_title("LiT projections: symmetric InfoNCE")
    left.set_xlabel("epoch")
    left.set_ylabel("loss")
    steps = np.arange(1, len(finetune_history) + 1)
    for name in ("loss", "dpo", "contrastive"):
        values = [h.get(name, np.nan) for h in finetune_history]
        if values and not np.all(np.isnan(values)):
            right.plot(steps, values, label=name)
    right.set_xlabel("step")
    right.set_title("Preference fine-tuning")
    twin = right.twinx()
    twin.plot(
        steps,
        [h.get("pair_accuracy", np.nan) for h in finetune_history],
        color="grey",
        alpha=0.5,
        label="pair accuracy",
    )
    twin.set_ylim(0, 1)
    twin.set_ylabel("pair accuracy (grey)")
    right.legend(fontsize=8)
    return _save(fig, path)


def example_rows_plot(
    queries: Sequence[str],
    rows: Mapping[str, np.ndarray],
    image_paths: Sequence[str],
    aesthetic: np.ndarray,
    path: str | Path,
    *,
    thumb: int = 96,
) -> Path:
    """For each query, each system's top-k thumbnails with their aesthetic scores."""
    from uaes_hf.retrieval.corpus import load_image

    plt = _plt()
    systems = list(rows)
    k = next(iter(rows.values())).shape[1]
    n_rows = len(queries) * len(systems)
    fig, axes = plt.subplots(n_rows, k, figsize=(1.25 * k + 1.6, 1.25 * n_rows), squeeze=False)
    for qi, query in enumerate(queries):
        for si, system in enumerate(systems):
            r = qi * len(systems) + si
            for j, index in enumerate(rows[system][qi]):
                ax = axes[r][j]
                ax.imshow(load_image(image_paths[index], thumb))
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_xlabel(f"{aesthetic[index]:.1f}", fontsize=7, labelpad=1)
            axes[r][0].set_ylabel(
                f"{query}\n{system}", fontsize=7, rotation=0, ha="right", va="center"
            )
    fig.subplots_adjust(wspace=0.05, hspace=0.35)
    return _save(fig, path, dpi=90)
