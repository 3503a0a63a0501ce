"""Length-sorted batching, pooling over token masks, and out-of-memory back-off.

Pure functions (numpy/torch only) shared by text features and perplexity.

Example:
    >>> length_sorted_order([3, 9, 1])
    [1, 0, 2]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def length_sorted_order(lengths: Sequence[int]) -> list[int]:
    """Indices sorted by length, longest first (a stable sort, so ties keep their order).

    Longest first means an out-of-memory error, if any, happens on the first batch.
    """
    return sorted(range(len(lengths)), key=lambda index: (-lengths[index], index))


def padding_fraction(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> float:
    """Fraction of padded positions when each batch is padded to its longest member.

    Example:
        >>> padding_fraction([2, 4], [[0, 1]])
        0.25
    """
    total = sum(max(lengths[i] for i in batch) * len(batch) for batch in batches if batch)
    real = sum(lengths[i] for batch in batches for i in batch)
    return 0.0 if total == 0 else 1.0 - real / total


def is_out_of_memory(error: BaseException) -> bool:
    """True for a CUDA/accelerator out-of-memory error (and not for other failures)."""
    import torch

    if isinstance(error, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def run_with_oom_backoff(
    order: Sequence[int],
    batch_size: int,
    step: Callable[[list[int]], Any],
    on_backoff: Callable[[int], None] | None = None,
) -> int:
    """Call ``step(batch)`` over consecutive batches of ``order``; halve on out-of-memory.

    After an out-of-memory error the same items are retried with half the batch size, and
    the run continues with the smaller size. Returns the final batch size.

    Raises:
        MemoryError: if even a batch of one item does not fit.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    position = 0
    while position < len(order):
        batch = list(order[position : position + batch_size])
        try:
            step(batch)
        except Exception as error:
            if not is_out_of_memory(error):
                raise
            if batch_size == 1:
                raise MemoryError(
                    f"out of memory on a batch of one item (index {batch[0]}); "
                    "lower --max-length or use a smaller dtype"
                ) from error
            out_of_memory = True
        else:
            out_of_memory = False
        if out_of_memory:
            # Freed only here, after the except block: until then the traceback's frames
            # still hold the failed batch's tensors.
            _free_accelerator_memory()
            batch_size = max(1, batch_size // 2)
            if on_backoff is not None:
                on_backoff(batch_size)
            continue
        position += len(batch)
    return batch_size


def _free_accelerator_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def masked_mean(hidden: Any, mask: Any) -> Any:
    """Mean over positions where ``mask`` is 1: (B, T, D), (B, T) -> (B, D), in float32.

    Padded positions are excluded with ``where`` (not multiplied), so NaN or inf in a padded
    row cannot leak into the result.
    """
    import torch

    keep = mask.bool().unsqueeze(-1)
    summed = torch.where(keep, hidden.float(), 0.0).sum(dim=1)
    counts = keep.sum(dim=1).clamp(min=1).float()
    return summed / counts


def last_token(hidden: Any, mask: Any) -> Any:
    """The hidden state of each row's last real token: correct under left or right padding."""
    import torch

    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    last = torch.where(mask.bool(), positions, -1).max(dim=1).values.clamp(min=0)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last].float()


def positions_from_mask(mask: Any) -> Any:
    """Position ids that start at 0 on each row's first real token (left padding safe)."""
    return (mask.long().cumsum(dim=1) - 1).clamp(min=0)
