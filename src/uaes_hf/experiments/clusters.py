"""Semantic clusters of the poems and the mean cosine-similarity table.

The study embeds every text with all-MiniLM-L6-v2 (a model used nowhere else, to avoid
bias), splits the poems with KMeans (K = 2) and compares the mean pairwise cosine
similarity of plain texts, poems and each cluster. Cluster 1 is the tighter (more similar)
cluster, as in the study's table.

Example:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(20, 8))
    >>> 0.0 <= abs(mean_pairwise_cosine(x)) < 0.2
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np


def mean_pairwise_cosine(embeddings: Any) -> float:
    """Mean cosine similarity over all pairs of distinct rows.

    Example:
        >>> mean_pairwise_cosine(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
        0.3333333333333333
    """
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need an N x D matrix with N >= 2, got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / np.where(norms == 0, 1.0, norms)
    total = x.sum(axis=0)
    # sum over i != j of <x_i, x_j> = |sum x|^2 - sum |x_i|^2, without an N x N matrix
    off_diagonal = float(total @ total - np.einsum("ij,ij->", x, x))
    n = x.shape[0]
    return off_diagonal / (n * (n - 1))


def semantic_clusters(embeddings: Any, n_clusters: int = 2, seed: int = 0) -> np.ndarray:
    """KMeans labels (0..K-1) on L2-normalised embeddings, ordered by tightness.

    Label 0 is the cluster with the highest mean pairwise cosine similarity.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = np.vstack([rng.normal(5, 0.1, (10, 4)), rng.normal(-5, 3, (10, 4))])
        >>> semantic_clusters(x, 2).tolist()[:3]
        [0, 0, 0]
    """
    from sklearn.cluster import KMeans

    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < n_clusters:
        raise ValueError(f"need at least n_clusters={n_clusters} rows, got shape {x.shape}")
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    labels = KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit_predict(x)
    tightness = [
        mean_pairwise_cosine(x[labels == c]) if np.sum(labels == c) > 1 else -np.inf
        for c in range(n_clusters)
    ]
    order = np.argsort(tightness)[::-1]
    remap = np.empty(n_clusters, dtype=int)
    remap[order] = np.arange(n_clusters)
    return remap[labels]


def cosine_similarity_table(plain_embeddings: Any, poem_embeddings: Any, labels: np.ndarray) -> Any:
    """The study's table: mean cosine similarity of plain texts, poems, each poem cluster.

    Returns:
        DataFrame with ``dataset``, ``n``, ``mean_cosine``.
    """
    import pandas as pd

    rows = [
        {
            "dataset": "Plain texts",
            "n": len(plain_embeddings),
            "mean_cosine": mean_pairwise_cosine(plain_embeddings),
        },
        {
            "dataset": "Poems",
            "n": len(poem_embeddings),
            "mean_cosine": mean_pairwise_cosine(poem_embeddings),
        },
    ]
    poem_embeddings = np.asarray(poem_embeddings)
    for label in range(int(labels.max()) + 1):
        members = poem_embeddings[labels == label]
        rows.append(
            {
                "dataset": f"Poems cluster {label + 1}",
                "n": int(members.shape[0]),
                "mean_cosine": mean_pairwise_cosine(members)
                if members.shape[0] > 1
                else float("nan"),
            }
        )
    return pd.DataFrame(rows)


_STOPWORDS_EXTRA = {"thee", "thou", "thy", "thine", "hath", "doth", "o", "shall", "upon", "yet"}


def word_frequencies(texts: list[str], top: int = 150) -> dict[str, int]:
    """Content-word counts (lowercase, stopwords and 1-2 letter words removed), top ``top``.

    Example:
        >>> word_frequencies(["The rose, the rose!", "A red rose"])["rose"]
        3
    """
    import re
    from collections import Counter

    from wordcloud import STOPWORDS

    stop = {w.lower() for w in STOPWORDS} | _STOPWORDS_EXTRA
    counts: Counter[str] = Counter()
    for text in texts:
        # curly apostrophes too, so that Milton's "heav’n" stays one word
        for word in re.findall(r"[a-zA-Z']+", text.lower().replace("\u2019", "'")):
            word = word.strip("'")
            if len(word) > 2 and word not in stop:
                counts[word] += 1
    return dict(counts.most_common(top))
