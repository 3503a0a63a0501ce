"""Chunked top-k cosine neighbour search and the reusable :class:`NeighborIndex`.

Semantics (Platonic Representation Hypothesis code): rows are L2-normalised, similarity is
the cosine, a row is never its own neighbour, and ``kNN(i)`` holds the ``k`` most similar
other rows. Unlike the reference, the ``N x N`` similarity matrix is never materialised:
query rows are processed in chunks, so peak memory is ``O(N*k + chunk*N)``; the same torch
code runs on CPU and CUDA.

Ties are broken deterministically: neighbours are ordered by similarity (descending), then
by row index (ascending), so the lower index wins a tie at the k-th place. Duplicate rows or
ties at the k-th place make a neighbour set depend on that rule, and trigger an
:class:`AmbiguousNeighborsWarning`.

Example:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(100, 16))
    >>> index = nearest_neighbors(x, k=5)
    >>> index.indices.shape
    (100, 5)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from uaes_hf.alignment.validation import _is_torch_tensor, check_k, check_matrix

# Upper bound on the elements of one chunk x N similarity block (128 MiB in float32).
DEFAULT_BLOCK_ELEMENTS = 1 << 25
# Similarities are computed in fixed tile x tile blocks: block (t, u) with t <= u is always
# the same matmul keys[t] @ keys[u].T, and block (u, t) is its transpose. Two reasons: the
# result is bit-for-bit independent of chunk_size (BLAS may round a row differently inside
# a matmul of another shape), and within a chunk each off-diagonal block is computed once,
# which nearly halves the work when the whole problem fits in one chunk.
# Smaller tiles run far below peak on CPU BLAS; GPUs want bigger ones.
ROW_TILE = {"cpu": 512, "cuda": 2048}


def row_tile(device: Any) -> int:
    """Rows per similarity tile on ``device`` (fixed per device, so results are too)."""
    return ROW_TILE.get(device.type, ROW_TILE["cpu"])


class AmbiguousNeighborsWarning(UserWarning):
    """Neighbour sets depend on tie-breaking (duplicate rows or ties at the k-th place)."""


@dataclass(frozen=True, eq=False)
class NeighborIndex:
    """The k nearest neighbours (cosine, self excluded) of every row of one feature matrix.

    Build it once per (model, layer) and reuse it for every pair, k' <= k and the
    permutation null, which all need only these indices.

    Attributes:
        indices: ``N x k`` int64 neighbour row indices, most similar first (ties: lower
            index first).
        similarities: ``N x k`` cosine similarities matching ``indices``.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(50, 8))
        >>> NeighborIndex.from_features(x, k=4).truncate(2).k
        2
    """

    indices: np.ndarray
    similarities: np.ndarray

    def __post_init__(self) -> None:
        idx = np.asarray(self.indices)
        if idx.ndim != 2 or idx.shape[1] < 1 or idx.shape[0] <= idx.shape[1]:
            raise ValueError(
                f"NeighborIndex.indices must be an N x k integer array with 1 <= k < N, got "
                f"shape {idx.shape}"
            )
        if not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"NeighborIndex.indices must be integers, got dtype {idx.dtype}")
        if idx.min() < 0 or idx.max() >= idx.shape[0]:
            raise ValueError("NeighborIndex.indices hold row numbers outside [0, N)")
        sims = np.asarray(self.similarities)
        if sims.shape != idx.shape:
            raise ValueError(
                f"NeighborIndex.similarities has shape {sims.shape}, expected {idx.shape}"
            )
        object.__setattr__(self, "indices", idx.astype(np.int64, copy=False))
        object.__setattr__(self, "similarities", sims)

    @property
    def k(self) -> int:
        """Number of neighbours per row."""
        return int(self.indices.shape[1])

    @property
    def n_samples(self) -> int:
        """Number of rows N."""
        return int(self.indices.shape[0])

    def truncate(self, k: int) -> NeighborIndex:
        """The index at a smaller ``k`` (identical to a fresh search at that ``k``)."""
        k = check_k(k, self.n_samples)
        if k > self.k:
            raise ValueError(f"this NeighborIndex was built with k={self.k}; cannot give k={k}")
        if k == self.k:
            return self
        return NeighborIndex(self.indices[:, :k], self.similarities[:, :k])

    @classmethod
    def from_features(cls, features: Any, k: int = 10, **search: Any) -> NeighborIndex:
        """Same as :func:`nearest_neighbors`."""
        return nearest_neighbors(features, k, **search)


def resolve_device(device: Any, features: Any = None) -> Any:
    """Return a ``torch.device``; ``None`` means the input tensor's device, else CPU."""
    import torch

    if device is None:
        return features.device if _is_torch_tensor(features) else torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {device!r}; use 'cpu' or 'cuda'") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available here")
    return dev


def resolve_dtype(dtype: Any) -> Any:
    """Map ``"float32"``/``"float64"`` (or numpy/torch float dtypes) to a torch dtype."""
    import torch

    name = str(dtype).replace("torch.", "")
    table = {"float32": torch.float32, "float64": torch.float64, "double": torch.float64}
    if name not in table:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return table[name]


def normalized_tensor(features: Any, *, device: Any, dtype: Any) -> Any:
    """Validated features as an L2-row-normalised torch tensor (zero rows stay zero)."""
    import torch

    tensor = torch.as_tensor(features).to(device=device, dtype=dtype)
    return torch.nn.functional.normalize(tensor, p=2.0, dim=1)


def nearest_neighbors(
    features: Any,
    k: int = 10,
    *,
    device: Any = None,
    dtype: Any = "float32",
    chunk_size: int | None = None,
    name: str = "features",
) -> NeighborIndex:
    """Top-``k`` cosine neighbours of every row (self excluded), in row chunks.

    Args:
        features: ``N x D`` numpy array, nested list or torch tensor.
        k: neighbours per row (``1 <= k < N``).
        device: ``"cpu"``, ``"cuda"`` or ``None`` (the tensor's device, else CPU).
        dtype: ``"float32"`` (default) or ``"float64"`` for the similarity arithmetic.
        chunk_size: query rows per block (rounded up to a multiple of
            :func:`row_tile`);
            default keeps a block under 2**25 elements. It changes memory, never results.
        name: how error messages refer to ``features``.

    Returns:
        A :class:`NeighborIndex` (numpy arrays on the CPU).

    Example:
        >>> import numpy as np
        >>> x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
        >>> nearest_neighbors(x, k=1).indices.ravel().tolist()
        [1, 0, 3, 2]
    """
    import torch

    features = check_matrix(features, name)
    n = int(features.shape[0])
    k = check_k(k, n)
    dev = resolve_device(device, features)
    tdtype = resolve_dtype(dtype)
    if chunk_size is None:
        chunk_size = max(1, DEFAULT_BLOCK_ELEMENTS // n)
    elif isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    tile = row_tile(dev)
    chunk_size = -(-chunk_size // tile) * tile

    keys = normalized_tensor(features, device=dev, dtype=tdtype)
    # Rows that are equal after normalisation (duplicates, positive multiples) are searched
    # once and their similarity columns copied, so they tie exactly and the lower index wins
    # (BLAS may otherwise round two identical columns differently).
    unique_keys, representative = _deduplicate(keys)
    duplicates = n - int(unique_keys.shape[0])
    out_idx = np.empty((n, k), dtype=np.int64)
    out_sim = np.empty((n, k), dtype=np.float64 if tdtype == torch.float64 else np.float32)
    tied_rows = 0
    with torch.no_grad():
        for start in range(0, int(unique_keys.shape[0]), chunk_size):
            stop = min(start + chunk_size, int(unique_keys.shape[0]))
            sim = _similarity_rows(unique_keys, start, stop)
            if duplicates:
                rows = ((representative >= start) & (representative < stop)).nonzero().ravel()
                sim = sim[representative[rows] - start][:, representative]
            else:
                rows = torch.arange(start, stop, device=dev)
            sim[torch.arange(rows.numel(), device=dev), rows] = -torch.inf  # never itself
            idx, values, n_tied = _topk_rows(sim, k)
            rows_np = rows.cpu().numpy()
            out_idx[rows_np] = idx.cpu().numpy()
            out_sim[rows_np] = values.cpu().numpy()
            tied_rows += n_tied
    if duplicates:
        warnings.warn(
            f"{name} has {duplicates} duplicate row(s) (equal after L2 normalisation): "
            f"neighbour sets that include them are ambiguous; ties are broken by the lower "
            f"row index",
            AmbiguousNeighborsWarning,
            stacklevel=2,
        )
    elif tied_rows:
        warnings.warn(
            f"{tied_rows} row(s) of {name} have ties at the k-th neighbour (k={k}); ties are "
            f"broken by the lower row index",
            AmbiguousNeighborsWarning,
            stacklevel=2,
        )
    return NeighborIndex(out_idx, out_sim)


def _similarity_rows(keys: Any, start: int, stop: int) -> Any:
    """Cosine similarities of rows ``start:stop`` (whole tiles) against all rows."""
    import torch

    n = keys.shape[0]
    tile = row_tile(keys.device)
    tiles = [(lo, min(lo + tile, n)) for lo in range(0, n, tile)]
    sim = torch.empty((stop - start, n), dtype=keys.dtype, device=keys.device)
    for r0, r1 in tiles:
        if not start <= r0 < stop:
            continue
        for c0, c1 in tiles:
            if c0 >= r0:
                block = keys[r0:r1] @ keys[c0:c1].T
            elif c0 >= start:  # computed earlier in this chunk as block (c, r)
                block = sim[c0 - start : c1 - start, r0:r1].T
            else:
                block = (keys[c0:c1] @ keys[r0:r1].T).T
            sim[r0 - start : r1 - start, c0:c1] = block
    return sim


def _deduplicate(keys: Any) -> tuple[Any, Any]:
    """Unique rows (first occurrences, in order) and each row's position among them."""
    import torch

    host = keys.cpu().numpy() if keys.device.type != "cpu" else keys.numpy()
    first: dict[bytes, int] = {}
    representative = np.empty(host.shape[0], dtype=np.int64)
    for i, row in enumerate(np.ascontiguousarray(host)):
        representative[i] = first.setdefault(row.tobytes(), len(first))
    if len(first) == host.shape[0]:
        return keys, torch.arange(host.shape[0], device=keys.device)
    firsts = np.unique(representative, return_index=True)[1]
    index = torch.as_tensor(firsts, device=keys.device)
    return keys[index], torch.as_tensor(representative, device=keys.device)


def _topk_rows(sim: Any, k: int) -> tuple[Any, Any, int]:
    """Deterministic row-wise top-k of a similarity block; returns (idx, values, #tied)."""
    import torch

    values, indices = torch.topk(sim, k, dim=1, largest=True, sorted=True)
    # topk's order among equal values is unspecified: order by (similarity desc, index asc).
    indices, by_index = torch.sort(indices, dim=1)
    values = values.gather(1, by_index)
    values, by_value = torch.sort(values, dim=1, descending=True, stable=True)
    indices = indices.gather(1, by_value)
    # A row whose k-th value is shared beyond the k slots has an ambiguous set: redo it
    # with a full stable sort so that the lower index wins.
    tied = ((sim >= values[:, -1:]).sum(dim=1) > k).nonzero().ravel()
    if tied.numel():
        full_values, full_indices = torch.sort(sim[tied], dim=1, descending=True, stable=True)
        values[tied] = full_values[:, :k]
        indices[tied] = full_indices[:, :k]
    return indices, values, int(tied.numel())


def as_neighbor_index(
    features_or_index: Any,
    k: int,
    name: str,
    **search: Any,
) -> NeighborIndex:
    """Pass a :class:`NeighborIndex` through (truncated to ``k``) or build one."""
    if isinstance(features_or_index, NeighborIndex):
        k = check_k(k, features_or_index.n_samples)
        if k > features_or_index.k:
            raise ValueError(
                f"{name} is a NeighborIndex built with k={features_or_index.k}; it cannot "
                f"give k={k}. Pass k<={features_or_index.k} or rebuild the index"
            )
        return features_or_index.truncate(k)
    return nearest_neighbors(features_or_index, k, name=name, **search)
