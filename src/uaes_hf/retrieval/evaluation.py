"""Quality of retrieved sets: aesthetics@k, relevance@k and diversity@k, with bootstrap CIs.

For a query's top-k row: aesthetics@k is the mean aesthetic score of its images,
relevance@k the mean similarity of its images to the ORIGINAL query (whatever query the
system searched with), and diversity@k one minus the mean pairwise cosine of its images.
A system's value is the mean over queries, with a percentile-bootstrap interval over
queries.

Example:
    >>> import numpy as np
    >>> rows = np.array([[0, 1], [2, 3]])
    >>> m = row_metrics(rows, np.array([1.0, 3.0, 5.0, 7.0]), np.eye(2, 4), np.eye(4))
    >>> m["aesthetics"].tolist(), m["relevance"].tolist(), m["diversity"].tolist()
    ([2.0, 6.0], [0.5, 0.0], [1.0, 1.0])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from uaes_hf.alignment.calibration import bootstrap_mean_ci

METRICS: tuple[str, ...] = ("aesthetics", "relevance", "diversity")


def row_metrics(
    rows: Any, aesthetic: Any, relevance: Any, embeddings: Any
) -> dict[str, np.ndarray]:
    """Per-query aesthetics, relevance and diversity of ``Q x k`` rows of corpus indices.

    Args:
        rows: ``Q x k`` corpus indices (each query's retrieved images).
        aesthetic: ``N`` aesthetic scores.
        relevance: ``Q x N`` similarity of every image to each ORIGINAL query.
        embeddings: ``N x D`` image embeddings for diversity (any fixed model).
    """
    rows = np.asarray(rows, dtype=np.int64)
    aesthetic = np.asarray(aesthetic, dtype=np.float64)
    relevance = np.asarray(relevance, dtype=np.float64)
    emb = np.asarray(embeddings, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] < 1:
        raise ValueError(f"rows must be Q x k indices, got shape {rows.shape}")
    if relevance.shape != (rows.shape[0], aesthetic.size) or emb.shape[0] != aesthetic.size:
        raise ValueError(
            f"need relevance of shape (Q, N) = ({rows.shape[0]}, {aesthetic.size}) and N "
            f"embeddings; got {relevance.shape} and {emb.shape}"
        )
    if rows.min() < 0 or rows.max() >= aesthetic.size:
        raise ValueError("rows refer to images outside the corpus")
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True).clip(1e-12)
    k = rows.shape[1]
    diversity = np.zeros(rows.shape[0])
    if k > 1:
        for q, row in enumerate(rows):
            sims = emb[row] @ emb[row].T
            diversity[q] = 1.0 - (sims.sum() - np.trace(sims)) / (k * (k - 1))
    return {
        "aesthetics": aesthetic[rows].mean(axis=1),
        "relevance": np.take_along_axis(relevance, rows, axis=1).mean(axis=1),
        "diversity": diversity,
    }


def summarize(
    per_query: dict[str, np.ndarray], *, n_bootstrap: int = 2000, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Mean and 95% bootstrap CI of each per-query metric.

    Example:
        >>> import numpy as np
        >>> summarize({"aesthetics": np.array([1.0, 3.0])}, n_bootstrap=100)["aesthetics"]["mean"]
        2.0
    """
    out = {}
    for name, values in per_query.items():
        ci = bootstrap_mean_ci(np.asarray(values, float), n_bootstrap=n_bootstrap, seed=seed)
        out[name] = {"mean": ci.score, "ci_low": ci.low, "ci_high": ci.high}
    return out


def paired_difference(
    a: np.ndarray, b: np.ndarray, *, n_bootstrap: int = 2000, seed: int = 0
) -> dict[str, float]:
    """Mean of ``a - b`` over the same queries, with a bootstrap CI (paired by query).

    Example:
        >>> import numpy as np
        >>> paired_difference(np.array([2.0, 3.0]), np.array([1.0, 1.0]), n_bootstrap=50)["mean"]
        1.5
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape:
        raise ValueError(f"paired values must match, got {a.shape} and {b.shape}")
    ci = bootstrap_mean_ci(a - b, n_bootstrap=n_bootstrap, seed=seed)
    return {"mean": ci.score, "ci_low": ci.low, "ci_high": ci.high}
