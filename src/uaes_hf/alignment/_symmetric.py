"""Symmetric tiled top-k: each similarity tile pair is computed once and feeds both row tiles.

The rows are cut into fixed tiles of ``tile`` rows. For tiles ``I <= J`` the block
``keys[I] @ keys[J].T`` is computed once (GEMMs of fixed shapes: a diagonal block, then
``GEMM_TILES`` tiles of columns at a time). Its rows update the running top-k lists of the
rows of ``I``; its columns (the block transposed) those of ``J``. Two ways to do that, with
the same numbers and the same exact selection, chosen by the memory budget only:

- dense, when ``N x N`` fits: the blocks are mirrored into one matrix (the upper triangle
  of each diagonal block onto its lower one) and every row gets one top-k;
- tiled, otherwise: diagonal blocks first, so that every row starts with a list and hence
  a threshold (its last slot); then each panel of later tiles is reduced to maxima over
  groups of ``GROUP`` rows per column (one cheap pass), and only groups whose maximum
  reaches a column's threshold, or the lowest threshold of its rows, are read again. An
  entry below a row's threshold can never enter that row's list.

The arithmetic is self-consistent by construction: the number used for the pair ``{i, j}``
is exactly one GEMM entry (in the block of ``min(I, J), max(I, J)``, and in a diagonal block
its upper triangle), so ``sim[i, j]`` and ``sim[j, i]`` are the same number. Block shapes
depend on ``N``, the tile and the device only, so results are bit-for-bit independent of the
budget. Selection is exact for the total order (similarity desc, index asc): a row's top-K
under that order is the top-K of the union of any candidate sets that contain it; a dense
top-k is redone with a stable sort wherever a tie straddles its last slot, and merges order
by one integer key per entry, distinct for distinct indices.

Example:
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> keys = torch.nn.functional.normalize(torch.randn(10, 4, dtype=torch.float64), dim=1)
    >>> values, indices = symmetric_topk(keys, 3, tile=4, budget=16)  # 3 tiles, tiled
    >>> sims = (keys @ keys.T).fill_diagonal_(-torch.inf)
    >>> expected = sims.sort(dim=1, descending=True, stable=True).indices[:, :3]
    >>> bool((indices == expected).all())
    True
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# Index of an empty list slot (value -inf); larger than any row number.
EMPTY = 1 << 62
# Columns of one GEMM, in tiles: wide GEMMs are few parallel regions (each costs a
# scheduler quantum when the cores are shared) and keep BLAS near peak.
GEMM_TILES = 8
# Side of the squares copied at once when mirroring on CPU (fits the L1 cache).
MIRROR_BLOCK = 64
# Entries per group whose maximum is compared with a threshold (a divisor of the tile).
GROUP = 16
# Above this fraction of active groups a block is selected densely (a plain top-k).
DENSE_FRACTION = 0.25


def symmetric_topk(
    keys: Any,
    slots: int,
    *,
    tile: int,
    budget: int,
    column_scale: Any = None,
    diagonal: Any = None,
    host_bookkeeping: bool | None = None,
) -> tuple[Any, Any]:
    """Per-row top-``slots`` (similarity desc, index asc) of ``keys @ keys.T``, self excluded.

    Args:
        keys: ``N x D`` tensor; the similarity of rows ``i, j`` is ``keys[i] . keys[j]``
            (times ``column_scale[j]`` in row ``i``'s list when given).
        slots: list length per row.
        tile: rows per tile (fixes the GEMM shapes, hence the rounding).
        budget: similarities held at once. When ``N x N`` fits, the blocks are mirrored into
            one matrix and each row gets one top-k; else panels of about ``budget``
            entries are scanned against the running thresholds. Memory only: the values
            (the GEMMs) and the exact selection are the same either way.
        column_scale: optional length-``N`` tensor (the raw-product path: inverse norms).
        diagonal: optional length-``N`` tensor that receives ``keys[i] . keys[i]`` as
            computed in the diagonal blocks.
        host_bookkeeping: keep the lists in numpy (default on CPU) or as torch tensors on
            ``keys.device`` (default on CUDA).

    Returns:
        ``(values, indices)``: ``N x slots`` tensors on ``keys.device`` in rule order; empty
        slots hold ``-inf`` and :data:`EMPTY`.
    """
    import torch

    n, dev, dtype = int(keys.shape[0]), keys.device, keys.dtype
    if host_bookkeeping is None:
        host_bookkeeping = dev.type != "cuda"
    lists = _Lists(n, slots, dtype, dev, _NumpyOps if host_bookkeeping else _TorchOps)
    gemm_columns = GEMM_TILES * tile
    scale = None if column_scale is None else column_scale.reshape(-1)
    with torch.no_grad():
        if n * n <= budget:
            _dense(keys, lists, tile, gemm_columns, scale, diagonal)
        else:
            _tiled(keys, lists, tile, gemm_columns, budget, scale, diagonal)
    return torch.as_tensor(lists.values), torch.as_tensor(lists.indices)


def _diagonal_block(keys: Any, r0: int, r1: int, ops: Any, diagonal: Any) -> Any:
    """``keys[r0:r1] @ keys[r0:r1].T`` made exactly symmetric from its upper triangle."""
    block = _product(keys[r0:r1], keys[r0:r1])
    if diagonal is not None:
        diagonal[r0:r1] = block.diagonal()
    ops.mirror(block, 0, r1 - r0, diagonal_block=True)
    return block


def _dense(
    keys: Any, lists: _Lists, tile: int, gemm_columns: int, scale: Any, diagonal: Any
) -> None:
    """All of ``N x N`` at once: the upper blocks, mirrored, then one top-k per row."""
    import torch

    n = int(keys.shape[0])
    sims = torch.empty((n, n), dtype=keys.dtype, device=keys.device)
    for r0 in range(0, n, tile):
        r1 = min(r0 + tile, n)
        sims[r0:r1, r0:r1] = _diagonal_block(keys, r0, r1, lists.ops, diagonal)
        if r1 < n:
            _panel(keys, r0, r1, r1, n, gemm_columns, out=sims[r0:r1, r1:])
            lists.ops.mirror(sims, r0, r1)
    sims.fill_diagonal_(-torch.inf)
    if scale is not None:
        sims.mul_(scale)
    lists.merge_dense(0, n, *_topk_set(sims, lists.slots, 0))


def _tiled(
    keys: Any,
    lists: _Lists,
    tile: int,
    gemm_columns: int,
    budget: int,
    scale: Any,
    diagonal: Any,
) -> None:
    """Diagonal blocks first (dense), then panels of later tiles against thresholds."""
    import torch

    n = int(keys.shape[0])
    group = math.gcd(tile, GROUP)
    panel_columns = max(1, -(-budget // (tile * gemm_columns))) * gemm_columns
    for r0 in range(0, n, tile):
        r1 = min(r0 + tile, n)
        block = _diagonal_block(keys, r0, r1, lists.ops, diagonal)
        block.fill_diagonal_(-torch.inf)
        if scale is not None:
            block.mul_(scale[r0:r1])
        lists.merge_dense(r0, r1, *_topk_set(block, lists.slots, r0))
    for r0 in range(0, n - tile, tile):  # full row tiles against the later tiles
        r1 = r0 + tile
        for c0 in range(r1, n, panel_columns):
            c1 = min(c0 + panel_columns, n)
            width = -(-(c1 - c0) // tile) * tile  # whole tiles, so that groups divide it
            panel = torch.empty((tile, width), dtype=keys.dtype, device=keys.device)
            _panel(keys, r0, r1, c0, c1, gemm_columns, out=panel[:, : c1 - c0])
            panel[:, c1 - c0 :] = -torch.inf
            if scale is None:
                lists.scan(panel, r0, c0, c1, group, "rc")
            else:  # the two sides see differently scaled values
                lists.scan(panel * scale[r0:r1, None], r0, c0, c1, group, "c")
                panel[:, : c1 - c0].mul_(scale[c0:c1])
                lists.scan(panel, r0, c0, c1, group, "r")


def _panel(keys: Any, r0: int, r1: int, c0: int, c1: int, gemm_columns: int, out: Any) -> None:
    """``out = keys[r0:r1] @ keys[c0:c1].T``, one GEMM per ``gemm_columns`` columns.

    ``c0`` is ``r1`` plus a multiple of ``gemm_columns``: GEMM shapes depend on the tile,
    ``gemm_columns`` and ``N`` only, never on how many are computed at once.
    """
    rows = keys[r0:r1]
    for b0 in range(c0, c1, gemm_columns):
        b1 = min(b0 + gemm_columns, c1)
        _product(rows, keys[b0:b1], out=out[:, b0 - c0 : b1 - c0])


def _product(a: Any, b: Any, out: Any = None) -> Any:
    """``a @ b.T``: the only place similarities are computed (one GEMM)."""
    import torch

    return torch.matmul(a, b.T, out=out)


class _Lists:
    """The running top-``slots`` lists of all rows, in rule order.

    On CUDA they live on the device (torch). On CPU the bookkeeping (sparse extraction,
    merges) runs in numpy: single-threaded, no parallel region per small op, which costs a
    scheduler quantum each when the cores are shared; torch keeps the GEMMs and the scans.
    """

    def __init__(self, n: int, slots: int, dtype: Any, device: Any, ops: Any) -> None:
        import torch

        self.slots = slots
        self.ops = ops
        values = torch.full((n, slots), -torch.inf, dtype=dtype, device=device)
        indices = torch.full((n, slots), EMPTY, dtype=torch.long, device=device)
        self.values, self.indices = self.ops.host(values), self.ops.host(indices)

    def merge_dense(self, r0: int, r1: int, values: Any, indices: Any) -> None:
        """Merge one candidate list per row of ``r0:r1`` (torch tensors)."""
        self.values[r0:r1], self.indices[r0:r1] = self.ops.merge(
            self.values[r0:r1],
            self.indices[r0:r1],
            self.ops.host(values),
            self.ops.host(indices),
            self.slots,
        )

    def merge_sparse(self, rows: Any, values: Any, indices: Any) -> None:
        """Merge candidates given as (row, value, index) triples sorted by row."""
        ops = self.ops
        if len(rows) == 0:
            return
        targets, starts, counts = ops.runs(rows)
        owner = ops.repeat(ops.arange(len(targets), rows), counts)
        position = ops.arange(len(rows), rows) - starts[owner]
        width = int(counts.max())
        pad_v = ops.full((len(targets), width), -float("inf"), values)
        pad_i = ops.full((len(targets), width), EMPTY, indices)
        pad_v[owner, position] = values
        pad_i[owner, position] = indices
        self.values[targets], self.indices[targets] = ops.merge(
            self.values[targets], self.indices[targets], pad_v, pad_i, self.slots
        )

    def scan(self, panel: Any, r0: int, c0: int, c1: int, group: int, sides: str) -> None:
        """Feed the entries of ``panel`` (rows ``r0:r0+tile``, columns ``c0:c1``, padded) to
        the lists of its rows (``"r"`` in ``sides``) and of its columns (``"c"``).

        One pass takes the maximum over each group of ``group`` rows per column; a group is
        active for a column's list if that maximum reaches the column's threshold, and for
        its rows' lists if it reaches the lowest of their thresholds. Only active groups
        are read again; a side with too many is done densely instead.
        """
        ops, rows, width = self.ops, int(panel.shape[0]), int(panel.shape[1])
        grouped = panel.view(rows // group, group, width)
        maxima = ops.group_max(grouped)  # (rows/group, width)
        if "c" in sides:
            thr = self.values[c0:c1, self.slots - 1]
            active = maxima[:, : c1 - c0] >= thr[None, :]
            if _too_many(active):
                block = panel[:, : c1 - c0].T.contiguous()
                self.merge_dense(c0, c1, *_topk_set(block, self.slots, r0))
            else:
                col, grp = ops.nonzero(active.T)  # sorted by column
                values = ops.host(grouped)[grp, :, col]  # (A, group)
                a, e = ops.nonzero(values >= thr[col, None])
                self.merge_sparse(col[a] + c0, values[a, e], grp[a] * group + e + r0)
        if "r" in sides:
            thr = self.values[r0 : r0 + rows, self.slots - 1].reshape(-1, group)
            active = maxima >= ops.row_min(thr)[:, None]
            if _too_many(active):
                self.merge_dense(r0, r0 + rows, *_topk_set(panel, self.slots, c0))
            else:
                grp, col = ops.nonzero(active)
                values = ops.host(grouped)[grp, :, col]  # (A, group)
                a, e = ops.nonzero(values >= thr[grp])
                target = grp[a] * group + e
                order = ops.argsort(target)  # by row, then column (stable)
                self.merge_sparse(target[order] + r0, values[a, e][order], col[a][order] + c0)


class _TorchOps:
    """List bookkeeping on torch tensors (CUDA)."""

    @staticmethod
    def group_max(grouped: Any) -> Any:
        return grouped.amax(1)

    @staticmethod
    def mirror(sims: Any, r0: int, r1: int, diagonal_block: bool = False) -> None:
        """Copy the upper part onto the lower: the strip below rows ``r0:r1`` (or, for a
        diagonal block, its lower triangle)."""
        import torch

        if diagonal_block:
            upper = torch.ones_like(sims, dtype=torch.bool).triu_()
            sims.copy_(torch.where(upper, sims, sims.T.contiguous()))
        else:
            sims[r1:, r0:r1] = sims[r0:r1, r1:].T

    @staticmethod
    def host(*tensors: Any) -> Any:
        return tensors[0] if len(tensors) == 1 else tensors

    @staticmethod
    def nonzero(mask: Any) -> tuple[Any, ...]:
        import torch

        return torch.nonzero(mask, as_tuple=True)

    @staticmethod
    def runs(rows: Any) -> tuple[Any, Any, Any]:
        import torch

        targets, counts = torch.unique_consecutive(rows, return_counts=True)
        return targets, torch.cumsum(counts, 0) - counts, counts

    @staticmethod
    def row_min(values: Any) -> Any:
        return values.amin(1)

    @staticmethod
    def argsort(values: Any) -> Any:
        import torch

        return torch.argsort(values, stable=True)

    @staticmethod
    def repeat(values: Any, counts: Any) -> Any:
        import torch

        return torch.repeat_interleave(values, counts)

    @staticmethod
    def arange(n: int, like: Any) -> Any:
        import torch

        return torch.arange(n, device=like.device)

    @staticmethod
    def full(shape: tuple[int, int], fill: Any, like: Any) -> Any:
        return like.new_full(shape, fill)

    @staticmethod
    def merge(values: Any, indices: Any, new_v: Any, new_i: Any, slots: int) -> tuple[Any, Any]:
        """Top-``slots`` in rule order of two candidate lists per row (distinct indices)."""
        import torch

        vals = torch.cat([values, new_v], 1)
        idx = torch.cat([indices, new_i], 1)
        idx = torch.where(vals == -torch.inf, EMPTY, idx)  # masked or padded entries
        if vals.dtype == torch.float32:
            key = _order_key(vals.view(torch.int32).to(torch.int64), idx)
            order = torch.topk(key, slots, dim=1, largest=True, sorted=True).indices
            return vals.gather(1, order), idx.gather(1, order)
        idx, order = torch.sort(idx, dim=1)
        vals = vals.gather(1, order)
        vals, order = torch.sort(vals, dim=1, descending=True, stable=True)
        return vals[:, :slots], idx.gather(1, order[:, :slots])


class _NumpyOps:
    """List bookkeeping in numpy (CPU)."""

    @staticmethod
    def group_max(grouped: Any) -> Any:
        return grouped.numpy().max(1)

    @staticmethod
    def mirror(sims: Any, r0: int, r1: int, diagonal_block: bool = False) -> None:
        """Copy the upper part onto the lower: the strip below rows ``r0:r1`` (or, for a
        diagonal block, its lower triangle), in squares that stay in the L1 cache."""
        array, n, step = sims.numpy(), int(sims.shape[0]), MIRROR_BLOCK
        for a0 in range(r0, r1, step):
            a1 = min(a0 + step, r1)
            if diagonal_block:
                square = array[a0:a1, a0:a1]
                lower = np.tri(a1 - a0, k=-1, dtype=bool)
                square[lower] = square.T[lower]
            for b0 in range(a1 if diagonal_block else r1, n if not diagonal_block else r1, step):
                b1 = min(b0 + step, n)
                array[b0:b1, a0:a1] = array[a0:a1, b0:b1].T

    @staticmethod
    def host(*tensors: Any) -> Any:
        arrays = tuple(t.numpy() for t in tensors)
        return arrays[0] if len(arrays) == 1 else arrays

    @staticmethod
    def nonzero(mask: Any) -> tuple[Any, ...]:
        return np.nonzero(mask)

    @staticmethod
    def runs(rows: Any) -> tuple[Any, Any, Any]:
        starts = np.flatnonzero(np.concatenate([[True], rows[1:] != rows[:-1]]))
        counts = np.diff(np.append(starts, rows.size))
        return rows[starts], starts, counts

    @staticmethod
    def row_min(values: Any) -> Any:
        return values.min(1)

    @staticmethod
    def argsort(values: Any) -> Any:
        return np.argsort(values, kind="stable")

    @staticmethod
    def repeat(values: Any, counts: Any) -> Any:
        return np.repeat(values, counts)

    @staticmethod
    def arange(n: int, like: Any) -> Any:
        return np.arange(n)

    @staticmethod
    def full(shape: tuple[int, int], fill: Any, like: Any) -> Any:
        return np.full(shape, fill, dtype=like.dtype)

    @staticmethod
    def merge(values: Any, indices: Any, new_v: Any, new_i: Any, slots: int) -> tuple[Any, Any]:
        """Top-``slots`` in rule order of two candidate lists per row (distinct indices)."""
        vals = np.concatenate([values, new_v], 1)
        idx = np.concatenate([indices, new_i], 1)
        idx[vals == -np.inf] = EMPTY  # masked or padded entries
        if vals.dtype == np.float32:
            key = _order_key(vals.view(np.int32).astype(np.int64), idx)
            top = np.argpartition(key, key.shape[1] - slots, axis=1)[:, -slots:]
            by_key = np.argsort(-np.take_along_axis(key, top, 1), axis=1)
            order = np.take_along_axis(top, by_key, 1)
        else:
            order = np.lexsort((idx, -vals), axis=-1)[:, :slots]
        return np.take_along_axis(vals, order, 1), np.take_along_axis(idx, order, 1)


def _order_key(bits: Any, indices: Any) -> Any:
    """One int64 per float32 entry that orders by (value desc, index asc), as the largest.

    ``bits`` are the value's IEEE bits (sign-extended int32): mapped to an int32 that
    orders like the floats, then put above the complemented index. Keys are distinct, so a
    top-k over them is exact whatever its algorithm. -0.0 and 0.0 get one key (they tie).
    """
    ordered = bits ^ ((bits >> 31) & 0x7FFFFFFF)  # negatives: flip the magnitude bits
    ordered = ordered + (ordered == -1)  # -0.0 maps to -1: give it 0.0's key
    # EMPTY slots (all -inf) get the low part of index 0; their order does not matter
    return (ordered << 32) | (0xFFFFFFFF - (indices & 0xFFFFFFFF))


def _too_many(active: Any) -> bool:
    """Whether so many groups are active that a dense top-k is cheaper."""
    return int(active.sum()) > DENSE_FRACTION * math.prod(active.shape)


def _topk_set(block: Any, slots: int, first_index: int) -> tuple[Any, Any]:
    """The top-``slots`` entries of each row of ``block`` (any order within; lower column
    first among ties). Column ``c`` is row index ``first_index + c``.

    ``torch.topk`` picks an arbitrary member of a tie, which matters only where a tie
    straddles the last slot: those rows are redone with a stable sort.
    """
    import torch

    width = int(block.shape[1])
    take = min(slots + 1, width)
    values, position = torch.topk(block, take, dim=1, largest=True, sorted=True)
    if take > slots:
        straddle = (values[:, slots] == values[:, slots - 1]).nonzero().ravel()
        values, position = values[:, :slots], position[:, :slots]
        if straddle.numel():
            full_v, full_p = torch.sort(block[straddle], dim=1, descending=True, stable=True)
            values[straddle] = full_v[:, :slots]
            position[straddle] = full_p[:, :slots]
    return values, position + first_index
