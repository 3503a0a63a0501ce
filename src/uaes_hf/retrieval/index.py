"""Exact top-k cosine search of queries against image embeddings.

It reuses the alignment package's search primitives (row normalisation, device and dtype
handling, and the deterministic top-k whose ties go to the lower row index), applied to a
query x gallery block instead of a matrix against itself; queries are processed in chunks so
memory stays ``O(chunk x N)``.

Example:
    >>> import numpy as np
    >>> index = ImageIndex(np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]]))
    >>> result = index.search(np.array([[1.0, 0.1]]), k=2)
    >>> result.indices.tolist()
    [[0, 2]]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from uaes_hf.alignment.neighbors import (
    DEFAULT_BLOCK_ELEMENTS,
    _topk_rows,
    normalized_tensor,
    resolve_device,
    resolve_dtype,
)
from uaes_hf.alignment.validation import check_matrix


@dataclass(frozen=True)
class SearchResult:
    """Top-k gallery rows per query: ``indices`` and cosine ``similarities`` (Q x k)."""

    indices: np.ndarray
    similarities: np.ndarray


class ImageIndex:
    """An exact cosine index over ``N x D`` image embeddings (rows are L2-normalised).

    Args:
        embeddings: ``N x D`` array or tensor.
        device: ``"cpu"``, ``"cuda"`` or ``None`` (the tensor's device, else CPU).
        dtype: ``"float32"`` or ``"float64"`` similarity arithmetic.
    """

    def __init__(self, embeddings: Any, *, device: Any = None, dtype: Any = "float32") -> None:
        checked = check_matrix(embeddings, "image embeddings")
        self.device = resolve_device(device, checked)
        self.dtype = resolve_dtype(dtype)
        self._keys = normalized_tensor(checked, device=self.device, dtype=self.dtype)

    def __len__(self) -> int:
        return int(self._keys.shape[0])

    @property
    def dim(self) -> int:
        return int(self._keys.shape[1])

    def search(self, queries: Any, k: int, *, chunk_size: int | None = None) -> SearchResult:
        """The ``k`` most similar gallery rows of each query row (ties: lower index first).

        Example:
            >>> import numpy as np
            >>> ImageIndex(np.eye(3)).search(np.eye(3)[:1], k=1).similarities.tolist()
            [[1.0]]
        """
        import torch

        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= len(self):
            raise ValueError(f"k must be an integer in [1, {len(self)}] (gallery size), got {k!r}")
        queries = check_matrix(queries, "queries")
        if int(queries.shape[1]) != self.dim:
            raise ValueError(
                f"queries have dimension {queries.shape[1]}, the index holds {self.dim}-d "
                "embeddings: encode queries with the same model"
            )
        q = normalized_tensor(queries, device=self.device, dtype=self.dtype)
        if chunk_size is None:
            chunk_size = max(1, DEFAULT_BLOCK_ELEMENTS // len(self))
        elif isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
        indices = np.empty((q.shape[0], int(k)), dtype=np.int64)
        sims = np.empty((q.shape[0], int(k)), dtype=np.float32)
        with torch.no_grad():
            for start in range(0, int(q.shape[0]), chunk_size):
                block = q[start : start + chunk_size] @ self._keys.T
                idx, values, _ = _topk_rows(block, int(k))
                indices[start : start + block.shape[0]] = idx.cpu().numpy()
                sims[start : start + block.shape[0]] = values.float().cpu().numpy()
        return SearchResult(indices, sims)

    def similarities(self, queries: Any) -> np.ndarray:
        """Full ``Q x N`` cosine similarities (for small Q, e.g. relevance of every image)."""
        queries = check_matrix(queries, "queries")
        q = normalized_tensor(queries, device=self.device, dtype=self.dtype)
        return (q @ self._keys.T).float().cpu().numpy()
