"""Word and line counts, and the study's short/long split at the median.

A word is a whitespace-separated token (what ``text.split()`` gives), the unit the study's
length histograms use; a line is a non-empty line.

Example:
    >>> count_words("The cat\\n\\nsat  down"), count_lines("The cat\\n\\nsat  down")
    (4, 2)
    >>> split_at_median([3, 10, 5, 8])
    ['short', 'long', 'short', 'long']
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import median


def count_words(text: str) -> int:
    """Number of whitespace-separated tokens."""
    return len(text.split())


def count_lines(text: str) -> int:
    """Number of non-empty lines."""
    return sum(1 for line in text.split("\n") if line.strip())


def split_at_median(lengths: Sequence[float]) -> list[str]:
    """``short`` below the median, ``long`` at or above it (the study's definition)."""
    if len(lengths) == 0:
        raise ValueError("split_at_median needs at least one length")
    cut = median(lengths)
    return ["long" if value >= cut else "short" for value in lengths]
