"""Tiled top-k cosine neighbour search and the reusable :class:`NeighborIndex`.

Semantics (Platonic Representation Hypothesis code): rows are L2-normalised, similarity is
the cosine, a row is never its own neighbour, and ``kNN(i)`` holds the ``k`` most similar
other rows. Unlike the reference, the ``N x N`` similarity matrix is never materialised
beyond a memory budget: the search is symmetric and tiled (each tile pair of the Gram
matrix is computed once and feeds the lists of both row tiles, see
:mod:`uaes_hf.alignment._symmetric`), so it costs half a Gram product and ``O(N*k)`` memory
plus one panel; the same torch code runs on CPU and CUDA.

Ties are broken deterministically: neighbours are ordered by similarity (descending), then
by row index (ascending), so the lower index wins a tie at the k-th place. Duplicate rows or
ties at the k-th place make a neighbour set depend on that rule, and trigger an
:class:`AmbiguousNeighborsWarning`.

Floating point. The similarity of a pair is one number: it is one entry of one GEMM, used
for both rows' lists, so ``sim[i, j]`` and ``sim[j, i]`` are equal. GEMM shapes depend on
``N``, ``D``, the device and the tile size only, so results are bit-for-bit independent of
``chunk_size`` (and, for a given BLAS and thread count, deterministic). The row-panel search
it replaces (``_search(..., symmetric=False)``, kept as the reference in tests) computes
``keys[tile] @ keys.T``; the two give identical similarities wherever the BLAS rounds an
entry of a tile block like the same entry of a row panel (MKL on CPU does for the default
tiles when it does not split the sum over threads, e.g. D <= 4 x tile). Elsewhere the two
sum a dot product in different orders, so a similarity may differ by at most
``2 * gamma_D * sum_k |x_ik x_jk| <= 2 * gamma_D`` for unit rows (``gamma_D = D u / (1 - D u)``,
``u = 2**-24`` in float32, ``2**-53`` in float64): a few ulps in practice. A neighbour index
can then differ only where two candidates of a row have similarities within that bound of
each other: exact ties (duplicate rows, exactly representable data) are the same number in
both and are settled identically by the index rule; only near ties closer than the
rounding error itself can order differently. The tests check both.

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

from uaes_hf.alignment._symmetric import EMPTY, symmetric_topk
from uaes_hf.alignment.validation import _is_torch_tensor, check_k, check_matrix

# Upper bound on the elements of one chunk x N similarity block (128 MiB in float32).
DEFAULT_BLOCK_ELEMENTS = 1 << 25
# The row-panel (reference) search computes one fixed tile of query rows at a time, always
# as the same matmul keys[tile] @ keys.T: a row's values then depend on its tile and N
# only, so results are bit-for-bit independent of chunk_size (BLAS may round a row
# differently inside a matmul of another shape).
ROW_TILE = {"cpu": 1024, "cuda": 2048}
# Tiles of the symmetric search, (largest N, rows per tile): small N needs small tiles to
# have tile pairs to skip; large tiles keep BLAS near peak and the per-tile work low.
SYMMETRIC_TILE = {
    "cpu": ((2048, 256), (12288, 1024), (1 << 62, 2048)),
    "cuda": ((16384, 1024), (1 << 62, 8192)),
}


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
    """Top-``k`` cosine neighbours of every row (self excluded), computed in tiles.

    Each tile pair of the (symmetric) similarity matrix is computed once and updates the
    running top-k of both row tiles, so the arithmetic is half a full Gram product; memory
    is ``O(N*k)`` plus one panel. The module docstring says why results are bit-for-bit
    independent of ``chunk_size`` and how they relate to a full Gram product's rounding.

    Args:
        features: ``N x D`` numpy array, nested list or torch tensor.
        k: neighbours per row (``1 <= k < N``).
        device: ``"cpu"``, ``"cuda"`` or ``None`` (the tensor's device, else CPU).
        dtype: ``"float32"`` (default) or ``"float64"`` for the similarity arithmetic.
        chunk_size: bounds memory to about ``chunk_size x N`` similarities at once
            (default: about 2**25, 128 MiB in float32); when ``N x N`` fits, the whole
            matrix is filled from the tile blocks. It changes memory, never results.
        name: how error messages refer to ``features``.

    Returns:
        A :class:`NeighborIndex` (numpy arrays on the CPU).

    Example:
        >>> import numpy as np
        >>> x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
        >>> nearest_neighbors(x, k=1).indices.ravel().tolist()
        [1, 0, 3, 2]
    """
    return _search(features, k, device=device, dtype=dtype, chunk_size=chunk_size, name=name)


def _search(
    features: Any,
    k: int,
    *,
    device: Any = None,
    dtype: Any = "float32",
    chunk_size: int | None = None,
    name: str = "features",
    symmetric: bool = True,
    tile: int | None = None,
) -> NeighborIndex:
    """:func:`nearest_neighbors` with internal switches.

    ``symmetric=False`` runs the row-panel search (every row tile against all rows, the
    full Gram product), kept as the reference the symmetric search is tested against.
    ``tile`` overrides the symmetric search's tile (tests use small tiles to get many).
    """
    import torch

    features = check_matrix(features, name, dtype=dtype)
    n = int(features.shape[0])
    k = check_k(k, n)
    dev = resolve_device(device, features)
    tdtype = resolve_dtype(dtype)
    if chunk_size is None:
        chunk_size = max(1, DEFAULT_BLOCK_ELEMENTS // n)
    elif isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")

    tensor = torch.as_tensor(features).detach().to(device=dev, dtype=tdtype)
    # F.normalize's denominator: rows / denom is exactly F.normalize(rows).
    denom = tensor.norm(2.0, 1, keepdim=True).clamp_min(1e-12)
    if _scale_after_product(tensor, denom):
        # N <= D: scaling the similarities costs less than normalising the N x D rows. The
        # columns are scaled before the top-k (1/|x_j|) and the k values of row i after it
        # (1/|x_i|, which does not change row i's order): the same cosines up to rounding.
        inverse_norms = 1.0 / denom
        unique_keys, representative = tensor, torch.arange(n, device=dev)
        scale, row_scale = inverse_norms.T, inverse_norms
    else:
        # Rows that are equal after normalisation (duplicates, positive multiples) are
        # searched once and their similarity columns copied, so they tie exactly and the
        # lower index wins (BLAS may otherwise round two identical columns differently).
        unique_keys, representative = _deduplicate(tensor / denom)
        scale = row_scale = None
    duplicates = n - int(unique_keys.shape[0])
    if symmetric:
        idx, values, tied_rows = _symmetric_search(
            unique_keys, k, representative if duplicates else None, scale, chunk_size, tile
        )
    else:
        idx, values, tied_rows = _panel_search(
            unique_keys, k, representative, duplicates, scale, chunk_size
        )
    if row_scale is not None:
        values = values * row_scale
    out_idx = idx.cpu().numpy()
    out_sim = values.cpu().numpy()
    if duplicates:
        warnings.warn(
            f"{name} has {duplicates} duplicate row(s) (equal after L2 normalisation): "
            f"neighbour sets that include them are ambiguous; ties are broken by the lower "
            f"row index",
            AmbiguousNeighborsWarning,
            stacklevel=3,
        )
    elif tied_rows:
        warnings.warn(
            f"{tied_rows} row(s) of {name} have ties at the k-th neighbour (k={k}); ties are "
            f"broken by the lower row index",
            AmbiguousNeighborsWarning,
            stacklevel=3,
        )
    return NeighborIndex(out_idx, out_sim)


def symmetric_tile(device: Any, n: int) -> int:
    """Rows per tile of the symmetric search on ``device`` for ``n`` (unique) rows.

    Small ``N`` needs small tiles to have tile pairs to skip; large tiles keep BLAS near
    peak and the per-tile overhead low. Depends on ``N`` and the device only, so results
    do too (never on ``chunk_size``).
    """
    sizes = SYMMETRIC_TILE.get(device.type, SYMMETRIC_TILE["cpu"])
    return next(rows for limit, rows in sizes if n <= limit)


def _symmetric_search(
    keys: Any,
    k: int,
    representative: Any,
    scale: Any,
    chunk_size: int,
    tile: int | None,
) -> tuple[Any, Any, int]:
    """Neighbour lists of every row from :func:`symmetric_topk` over the unique ``keys``."""

    n_unique = int(keys.shape[0])
    tile = tile or symmetric_tile(keys.device, n_unique)
    n = n_unique if representative is None else int(representative.numel())
    diagonal = None if representative is None else keys.new_empty(n_unique)
    # One slot more than k shows a tie at the k-th place.
    values, indices = symmetric_topk(
        keys, k + 1, tile=tile, budget=chunk_size * n, column_scale=scale, diagonal=diagonal
    )
    if representative is not None:
        values, indices = _expand_duplicates(values, indices, diagonal, representative, k + 1)
    tied = int((values[:, k] == values[:, k - 1]).sum())
    return indices[:, :k], values[:, :k], tied


def _expand_duplicates(
    values: Any, indices: Any, diagonal: Any, representative: Any, slots: int
) -> tuple[Any, Any]:
    """Lists of the original rows from the lists of the unique rows.

    Unique rows are numbered in order of first occurrence, so the unique-level order
    (value desc, unique index asc) ranks a unique row by its lowest member: every original
    row in the top ``slots`` of row ``o`` (self excluded) is then a member of ``o``'s own
    unique row (value: the diagonal entry) or of one of that row's top ``slots`` unique
    neighbours. Each contributes its ``slots + 1`` lowest members at most.
    """
    import torch

    dev = values.device
    n, n_unique = int(representative.numel()), int(values.shape[0])
    width = slots + 1
    by_unique = torch.argsort(representative, stable=True)  # originals ascending per unique
    counts = torch.bincount(representative, minlength=n_unique)
    rank = (
        torch.arange(n, device=dev) - (torch.cumsum(counts, 0) - counts)[representative[by_unique]]
    )
    members = torch.full((n_unique + 1, width), EMPTY, dtype=torch.long, device=dev)
    keep = rank < width
    members[representative[by_unique][keep], rank[keep]] = by_unique[keep]
    out_v = values.new_empty((n, slots))
    out_i = torch.empty((n, slots), dtype=torch.long, device=dev)
    step = max(1, (1 << 22) // (width * width))
    for start in range(0, n, step):
        rows = torch.arange(start, min(start + step, n), device=dev)
        unique = representative[rows]
        groups = torch.cat([unique[:, None], indices[unique]], 1)
        groups = torch.where(groups == EMPTY, n_unique, groups)
        group_v = torch.cat([diagonal[unique][:, None], values[unique]], 1)
        cand_i = members[groups].flatten(1)
        cand_v = group_v[:, :, None].expand(-1, -1, width).flatten(1)
        absent = (cand_i == rows[:, None]) | (cand_i == EMPTY)
        cand_v = cand_v.masked_fill(absent, -torch.inf)
        cand_i = cand_i.masked_fill(absent, EMPTY)
        cand_i, order = torch.sort(cand_i, dim=1)
        cand_v, by_value = torch.sort(cand_v.gather(1, order), dim=1, descending=True, stable=True)
        out_v[rows] = cand_v[:, :slots]
        out_i[rows] = cand_i.gather(1, by_value[:, :slots])
    return out_v, out_i


def _panel_search(
    keys: Any,
    k: int,
    representative: Any,
    duplicates: int,
    scale: Any,
    chunk_size: int,
) -> tuple[Any, Any, int]:
    """The reference search: row panels ``keys[tile] @ keys.T``, each row's top-k."""
    import torch

    dev = keys.device
    n = int(representative.numel())
    tile = row_tile(dev)
    chunk_size = -(-chunk_size // tile) * tile
    out_idx = torch.empty((n, k), dtype=torch.long, device=dev)
    out_sim = torch.empty((n, k), dtype=keys.dtype, device=dev)
    tied_rows = 0
    with torch.no_grad():
        for start in range(0, int(keys.shape[0]), chunk_size):
            stop = min(start + chunk_size, int(keys.shape[0]))
            sim = _similarity_rows(keys, start, stop, scale)
            if duplicates:
                rows = ((representative >= start) & (representative < stop)).nonzero().ravel()
                sim = sim[representative[rows] - start][:, representative]
            else:
                rows = torch.arange(start, stop, device=dev)
            sim[torch.arange(rows.numel(), device=dev), rows] = -torch.inf  # never itself
            idx, values, n_tied = _topk_rows(sim, k)
            out_idx[rows] = idx
            out_sim[rows] = values
            tied_rows += n_tied
    return out_idx, out_sim, tied_rows


def _similarity_rows(keys: Any, start: int, stop: int, scale: Any = None) -> Any:
    """Similarities of rows ``start:stop`` (whole tiles) against all rows.

    ``keys`` are normalised rows (cosines directly), or raw rows with ``scale`` the
    ``1 x N`` inverse norms that multiply each column (the rows' own norms, which do not
    change their order, are applied by the caller to the k values kept).
    """
    import torch

    tile = row_tile(keys.device)
    sim = torch.empty((stop - start, keys.shape[0]), dtype=keys.dtype, device=keys.device)
    for r0 in range(start, stop, tile):
        r1 = min(r0 + tile, stop)
        block = sim[r0 - start : r1 - start]
        torch.matmul(keys[r0:r1], keys.T, out=block)
        if scale is not None:
            block.mul_(scale)
    return sim


def _scale_after_product(tensor: Any, denom: Any) -> bool:
    """Whether to skip normalising rows and scale the similarities instead.

    Only when N <= D (cheaper), no two rows can be equal after normalisation (their first
    columns, normalised, all differ; duplicates need the normalised path's exact ties), and
    norms are moderate (a raw product of huge rows could overflow, of tiny ones underflow).
    """
    n, d = tensor.shape
    if n > d or not bool(((denom > 1e-15) & (denom < 1e15)).all()):
        return False
    prefix = np.ascontiguousarray((tensor[:, :4] / denom).cpu().numpy())
    return int(np.unique(_as_bytes(prefix)).size) == n


def _deduplicate(keys: Any) -> tuple[Any, Any]:
    """Unique rows (first occurrences, in order) and each row's position among them."""
    import torch

    n = int(keys.shape[0])
    # Equal rows have equal bytes. A few leading columns first: rows that differ there
    # cannot be duplicates, so the full-row comparison runs only when some prefix repeats.
    prefix = np.ascontiguousarray(keys[:, :4].cpu().numpy())
    if np.unique(_as_bytes(prefix)).size == n:
        return keys, torch.arange(n, device=keys.device)
    host = np.ascontiguousarray(keys.cpu().numpy())
    # Sorting rows as opaque byte strings finds the duplicates in O(N log N) comparisons.
    _, first, inverse = np.unique(_as_bytes(host), return_index=True, return_inverse=True)
    if first.size == n:
        return keys, torch.arange(n, device=keys.device)
    order = np.argsort(first, kind="stable")  # unique rows in order of first occurrence
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    representative = rank[inverse.ravel()]
    index = torch.as_tensor(first[order], device=keys.device)
    return keys[index], torch.as_tensor(representative, device=keys.device)


def _as_bytes(rows: np.ndarray) -> np.ndarray:
    """View each row of a C-contiguous 2-D array as one opaque byte string."""
    return rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()


def _topk_rows(sim: Any, k: int) -> tuple[Any, Any, int]:
    """Deterministic row-wise top-k of a similarity block; returns (idx, values, #tied)."""
    import torch

    # One more than needed: a row's set is ambiguous exactly when its (k+1)-th value
    # equals its k-th (a tie at the k-th place that spills beyond the k slots).
    extra = min(k + 1, sim.shape[1])
    values, indices = torch.topk(sim, extra, dim=1, largest=True, sorted=True)
    if extra > k:
        tied = (values[:, k] == values[:, k - 1]).nonzero().ravel()
        values, indices = values[:, :k], indices[:, :k]
    else:
        tied = torch.zeros(0, dtype=torch.long, device=sim.device)
    # topk's order among equal values is unspecified: order by (similarity desc, index asc).
    indices, by_index = torch.sort(indices, dim=1)
    values = values.gather(1, by_index)
    values, by_value = torch.sort(values, dim=1, descending=True, stable=True)
    indices = indices.gather(1, by_value)
    # Redo ambiguous rows with a full stable sort so that the lower index wins.
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
